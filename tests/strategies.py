"""Hypothesis strategies shared by the tests."""

from __future__ import annotations

import string

from hypothesis import strategies as st


def login_names(max_length: int) -> st.SearchStrategy[str]:
    """Names matching [a-z][a-z0-9_-]{0,max_length-1}, built from characters: drawing them
    with from_regex cost hypothesis several times as long (≈3 s of the unit suite)."""
    return st.builds(str.__add__, st.sampled_from(string.ascii_lowercase),
                     st.text(string.ascii_lowercase + string.digits + "_-",
                             max_size=max_length - 1))
