"""Hypothesis strategies of the odd values W&B data holds, and an exact comparison for them."""
from __future__ import annotations

import math
from typing import Any

from hypothesis import strategies as st

ODD_FLOATS = st.sampled_from([float("nan"), float("inf"), float("-inf"), -0.0, 1e308, 5e-324])
BIG_INTS = st.sampled_from([2**63 - 1, 2**63, 2**64 + 1, -(2**63), -(2**63) - 1, 10**30])
KEYS = st.one_of(
    st.sampled_from(["lr", "opt.lr", "a.b.c", "ünï", "emoji🚀", "_wandb", "value", "$x", ""]),
    st.text(min_size=1, max_size=8),
)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), BIG_INTS, st.floats(allow_nan=True), ODD_FLOATS,
    st.text(max_size=20),
)
MEDIA = st.fixed_dictionaries(
    {"_type": st.just("histogram"), "values": st.lists(st.integers(0, 9), max_size=5),
     "bins": st.lists(st.floats(allow_nan=False), max_size=6)}
)
JSON_VALUES = st.recursive(
    st.one_of(SCALARS, MEDIA),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(KEYS, children, max_size=4)),
    max_leaves=20,
)


def same(a: Any, b: Any) -> bool:
    """Exact equality: NaN equals NaN, bool is not int, int is not float, -0.0 is not 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b
