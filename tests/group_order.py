"""The order in which xdist hands out the test groups: longest first, by the seconds each group
took in the last run (tests/conftest.py keeps them in pytest's cache).

Why: `--dist loadgroup` gives a free worker the next whole group, by default in order of test
count. Count is not cost here: a one-test file that starts a fresh Python (tests/test_aws_sdk.py,
≈2 s) came last and the other worker sat idle meanwhile. Longest first leaves the short groups to
even out the end. A group not timed yet (a fresh clone, a new file) goes first, by test count.
"""

from __future__ import annotations

from collections.abc import Mapping

CACHE_KEY = "jupyterhub-cloud/group-seconds"


def longest_first(sizes: Mapping[str, int], seconds: Mapping[str, float]) -> list[str]:
    """The group names in the order to hand them out. sizes: tests per group; seconds: what
    each group took last time (a group may be missing)."""
    return sorted(sizes, key=lambda g: (g in seconds, -seconds.get(g, 0.0), -sizes[g]))
