"""Mutations of real frames for the decoder fuzz tests."""

from __future__ import annotations

from hypothesis import strategies as st


def mutations() -> st.SearchStrategy:
    junk = st.one_of(
        st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=True), st.text(max_size=8),
        st.just({}), st.just([]), st.just("abc"), st.just("+50"), st.just("0"), st.just("-0.5"),
    )
    return st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 10_000), junk), max_size=6)


def mutate(value: object, path: tuple[int, int], junk: object) -> object:
    """Replace one node of the JSON tree (chosen by the two indices) with junk."""
    if isinstance(value, dict) and value:
        keys = list(value)
        key = keys[path[0] % len(keys)]
        out = dict(value)
        out[key] = junk if path[1] % 3 == 0 else mutate(value[key], (path[1], path[0] // 3), junk)
        return out
    if isinstance(value, list) and value:
        out_l = list(value)
        i = path[0] % len(value)
        out_l[i] = mutate(value[i], (path[1], path[0] // 3), junk)
        return out_l
    return junk
