"""Encoding replies: JSON, with stored JSON fragments spliced in as they are.

Why: a ``JSON``-typed field such as ``Run.historyKeys`` is stored as JSON text. Parsing it into
Python objects only to encode them again cost ~60 µs a run (a quarter of a cold ``Runs`` page).
A resolver may instead return :class:`RawJSON`; :func:`encode_reply` writes its text verbatim.

Only text the store wrote itself may be wrapped (it is valid JSON by construction:
``store.values.dumps`` or text checked when it was stored); anything else must be parsed.
"""
from __future__ import annotations

import json
import re
import secrets
from typing import Any

from ..store.values import loads

__all__ = ["RawJSON", "encode_reply", "encode_text", "escape", "float_text"]


class RawJSON:
    """A JSON value kept as its text; compares by text, :meth:`value` parses it."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def value(self) -> Any:
        return loads(self.text)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RawJSON) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"RawJSON({self.text[:60]!r}{'...' if len(self.text) > 60 else ''})"


# A placeholder no client data can produce: NUL plus a per-process random token.
_NONCE = secrets.token_hex(12)
_MARK = re.compile(r'"\\u0000' + _NONCE + r':(\d+)"')


escape = json.encoder.encode_basestring_ascii
"""A string's JSON text (``ensure_ascii``), exactly as :func:`encode_reply` writes it."""


def float_text(value: float) -> str:
    """A float's JSON text as :func:`encode_reply` writes it (``NaN``/``Infinity`` tokens)."""
    if value != value:
        return "NaN"
    if value in (_INF, -_INF):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


_INF = float("inf")


def encode_reply(body: Any) -> bytes:
    """UTF-8 JSON of ``body``; ``NaN``/``Infinity`` as the tokens W&B sends; RawJSON spliced."""
    return encode_text(body).encode("utf-8")


def encode_text(body: Any) -> str:
    """:func:`encode_reply` as text (ASCII: non-ASCII characters are escaped)."""
    if type(body) is RawJSON:
        return body.text
    raws: list[str] = []

    def default(obj: Any) -> str:
        if isinstance(obj, RawJSON):
            raws.append(obj.text)
            return f"\x00{_NONCE}:{len(raws) - 1}"
        raise TypeError(f"cannot encode {type(obj).__name__} in a reply")

    text = json.JSONEncoder(allow_nan=True, separators=(",", ":"), check_circular=False,
                            default=default).encode(body)
    if raws:
        text = _MARK.sub(lambda m: raws[int(m.group(1))], text)
    return text
