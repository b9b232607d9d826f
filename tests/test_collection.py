"""The suite's collection rule (tests/marked_dirs.py): a marked directory is left unimported only
when `-m` could select none of its tests, whatever other markers they carry. And its scheduling
rule (tests/group_order.py): groups go out to xdist workers longest first."""

from __future__ import annotations

import pytest
from group_order import longest_first
from marked_dirs import MARKED_DIRS, left_out, never_selected


@pytest.mark.parametrize("markexpr, marker", [
    ("not integration and not e2e", "integration"),
    ("not integration and not e2e", "e2e"),
    ("not integration", "integration"),
    ("needs and not integration", "integration"),
])
def test_directory_left_out_when_no_test_of_it_can_match(markexpr: str, marker: str) -> None:
    assert never_selected(markexpr, marker)


@pytest.mark.parametrize("markexpr, marker", [
    ("not e2e", "integration"),
    ("e2e", "integration"),  # an integration test might carry e2e too: collected, to be safe
    ("integration", "integration"),
    ("integration or needs", "integration"),
    ("not integration or needs", "integration"),  # an integration test that also needs a tool
    ("not (integration and needs)", "integration"),
    ("not integration and not e2e or slow", "e2e"),
])
def test_directory_collected_when_one_of_its_tests_could_match(markexpr: str,
                                                                marker: str) -> None:
    assert not never_selected(markexpr, marker)


def test_only_the_marked_directories_are_left_out() -> None:
    unit = "not integration and not e2e"
    assert all(left_out(directory, unit) for directory in MARKED_DIRS.values())
    assert not left_out(MARKED_DIRS["integration"].parent, unit)
    assert not left_out(MARKED_DIRS["integration"] / "images", unit)
    assert not any(left_out(directory, "") for directory in MARKED_DIRS.values())


def test_groups_go_out_longest_first_and_untimed_ones_before_them() -> None:
    sizes = {"one_slow_test.py": 1, "jupyterhub": 40, "many_quick.py": 12, "new.py": 3,
             "newer.py": 9}
    seconds = {"one_slow_test.py": 2.0, "jupyterhub": 9.5, "many_quick.py": 0.4}
    assert longest_first(sizes, seconds) == ["newer.py", "new.py", "jupyterhub",
                                             "one_slow_test.py", "many_quick.py"]
    assert longest_first(sizes, {}) == ["jupyterhub", "many_quick.py", "newer.py", "new.py",
                                        "one_slow_test.py"]
