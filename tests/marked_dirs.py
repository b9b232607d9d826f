"""Which marked test directory `-m` can leave unimported (used by tests/conftest.py).

Every item under tests/integration and tests/e2e carries that directory's marker (their
conftest.py adds it), so when `-m` can select no item with that marker (`make unit`: "not
integration and not e2e") the directory is not collected at all: each xdist worker would
otherwise import its Docker, LDAP and browser helpers only to deselect every test.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

from _pytest.mark.expression import Expression  # what `-m` itself evaluates

HERE = Path(__file__).resolve().parent
MARKED_DIRS = {"integration": HERE / "integration", "e2e": HERE / "e2e"}


def never_selected(markexpr: str, marker: str) -> bool:
    """True when no item carrying `marker` matches `-m markexpr`, whatever its other markers."""
    expression = Expression.compile(markexpr)
    others = sorted(set(re.findall(r"[^\s(),=]+", markexpr)) - {"and", "or", "not", marker})
    if len(others) > 8:
        return False  # not worth enumerating: collect as usual
    for values in itertools.product((False, True), repeat=len(others)):
        markers = {marker, *(name for name, on in zip(others, values, strict=True) if on)}
        if expression.evaluate(lambda name, markers=markers, **_: name in markers):
            return False
    return True


def left_out(path: Path, markexpr: str) -> bool:
    """True for a marked directory none of whose tests `-m markexpr` could select."""
    return bool(markexpr) and any(path == directory and never_selected(markexpr, marker)
                                  for marker, directory in MARKED_DIRS.items())
