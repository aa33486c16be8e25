"""The reply encoder: stored JSON fragments spliced verbatim, everything else plain JSON."""
from __future__ import annotations

import json
import math

import pytest

from wandb_mirror.server.encode import RawJSON, encode_reply


def test_raw_fragments_are_spliced_as_json_values():
    body = {"data": {"a": RawJSON('{"keys":{"loss":{"count":3}},"lastStep":9}'),
                     "b": [RawJSON("[1,2]"), RawJSON("null"), "text"]}}
    assert json.loads(encode_reply(body)) == {
        "data": {"a": {"keys": {"loss": {"count": 3}}, "lastStep": 9}, "b": [[1, 2], None, "text"]}}


def test_strings_that_look_like_placeholders_stay_strings():
    tricky = ["\x00", "\x00abc:0", '"\\u0000', "\u00e9\u2603", 'quote " and \\ slash']
    body = {"s": tricky, "r": RawJSON('"\u00e9"')}
    assert json.loads(encode_reply(body)) == {"s": tricky, "r": "\u00e9"}


def test_non_finite_numbers_use_the_wandb_tokens_and_unicode_is_utf8():
    out = encode_reply({"x": float("nan"), "y": float("inf"), "r": RawJSON('{"z":-Infinity}'),
                        "u": RawJSON('"\u2603"')})
    assert b"NaN" in out and b"Infinity" in out and "\u2603".encode() in out
    back = json.loads(out)
    assert math.isnan(back["x"]) and back["y"] == math.inf and back["r"] == {"z": -math.inf}


def test_unknown_objects_are_an_error():
    with pytest.raises(TypeError, match="cannot encode object"):
        encode_reply({"x": object()})


def test_raw_json_compares_and_parses_by_text():
    assert RawJSON("[1]") == RawJSON("[1]") and RawJSON("[1]") != RawJSON("[1.0]")
    assert RawJSON('{"a": NaN}').value()["a"] != RawJSON('{"a": NaN}').value()["a"]  # NaN
