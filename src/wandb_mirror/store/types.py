"""Column types shared by the models and the migrations (keep them stable: migrations import them)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Float
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine, UserDefinedType


class _SqliteUntyped(UserDefinedType):  # type: ignore[type-arg]
    """A column with no SQLite type affinity: INTEGER stays exact, REAL stays REAL."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "BLOB"


class ScalarNumber(TypeDecorator):  # type: ignore[type-arg]
    """A number stored without conversion: exact int64 integers and IEEE doubles side by side.

    SQLite's REAL affinity would turn 2**62 + 1 into a double and lose it; a column with no
    affinity keeps each value's storage class, and SQLite compares INTEGER with REAL exactly.
    Other dialects get a double column.
    """

    impl = Float
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(_SqliteUntyped())
        return dialect.type_descriptor(Float())
