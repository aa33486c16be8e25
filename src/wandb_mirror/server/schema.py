"""The executable schema: SDL from ``schema.graphql`` plus the resolvers, and request execution.

Parsing and validating a document is the expensive part of a GraphQL request and clients send
the same few documents over and over (every page of a listing), so validated documents are
cached by their text.

Two schemas: the read-only one (the default: no ``Mutation`` type, so a mutation fails
validation as it always did) and the writable one (``ServeOptions.writable``), which adds
``mutations.graphql`` and the resolvers of :mod:`.mutations`.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from threading import Lock
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    build_schema,
    execute,
    parse,
    validate,
)

from . import resolvers, resolvers_objects
from .executor import Fallback, execute_fast

__all__ = ["GraphQLResult", "PreparedDocument", "execute_request", "load_sdl", "mirror_schema",
           "prepare"]


def load_sdl(writable: bool = False) -> str:
    """The SDL text of the served schema subset (``writable``: with the mutations)."""
    here = resources.files("wandb_mirror.server")
    sdl = here.joinpath("schema.graphql").read_text("utf-8")
    if writable:
        sdl += "\n" + here.joinpath("mutations.graphql").read_text("utf-8")
    return sdl


@lru_cache(maxsize=2)
def mirror_schema(writable: bool = False) -> GraphQLSchema:
    """The schema with every resolver attached (built once per process and mode)."""
    schema = build_schema(load_sdl(writable))
    tables = [resolvers.RESOLVERS, resolvers_objects.RESOLVERS]
    if writable:
        from . import mutations

        tables.append(mutations.RESOLVERS)
    for table in tables:
        for type_name, fields in table.items():
            gtype = schema.type_map[type_name]
            for field_name, fn in fields.items():
                gtype.fields[field_name].resolve = fn  # type: ignore[attr-defined]
    return schema


@dataclass(frozen=True)
class PreparedDocument:
    """A parsed document, its operation names, and its validation errors (if any)."""

    document: DocumentNode | None
    operation_names: tuple[str | None, ...]
    errors: tuple[GraphQLError, ...]
    writable: bool = False  # validated against the writable schema
    mutation: bool = False  # holds a mutation operation (its reply is never cached)

    @property
    def operation_name(self) -> str | None:
        """The name of the (first) operation, used for counters and fault targeting."""
        return self.operation_names[0] if self.operation_names else None


_CACHE: OrderedDict[tuple[bool, str], PreparedDocument] = OrderedDict()
_CACHE_LOCK = Lock()
_CACHE_SIZE = 256


def prepare(query: str, *, writable: bool = False) -> PreparedDocument:
    """Parse and validate a document against the schema (``writable``: the one with the
    mutations), cached by its text."""
    key = (writable, query)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit
    try:
        document = parse(query)
    except GraphQLError as exc:
        prepared = PreparedDocument(None, (), (exc,), writable)
    else:
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        names = tuple(d.name.value if d.name else None for d in operations)
        prepared = PreparedDocument(document, names,
                                    tuple(validate(mirror_schema(writable), document)),
                                    writable,
                                    any(d.operation.value == "mutation" for d in operations))
    with _CACHE_LOCK:
        _CACHE[key] = prepared
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return prepared


@dataclass
class GraphQLResult:
    """The JSON-able reply body and the operation it answered."""

    body: dict[str, Any]
    operation_name: str | None


def _error(exc: GraphQLError) -> dict[str, Any]:
    return exc.formatted  # type: ignore[return-value]


def execute_request(prepared: PreparedDocument, variables: Any, operation_name: Any,
                    context: Any) -> GraphQLResult:
    """Run one prepared document.

    ``operationName`` ``""`` (what the wandb client always sends) counts as absent, as do
    names the document does not define when it holds a single operation; variables the
    operation does not declare are ignored.
    """
    if prepared.errors or prepared.document is None:
        return GraphQLResult({"errors": [_error(e) for e in prepared.errors], "data": None},
                             prepared.operation_name)
    name = operation_name if isinstance(operation_name, str) and operation_name else None
    if name is not None and name not in prepared.operation_names and len(prepared.operation_names) == 1:
        name = None
    if not isinstance(variables, dict):
        variables = {}
    schema = mirror_schema(prepared.writable)
    try:
        return GraphQLResult({"data": execute_fast(schema, prepared.document, name,
                                                   variables, context)},
                             name or prepared.operation_name)
    except Fallback:
        pass  # graphql-core answers exactly, errors with paths included (and mutations)
    result = execute(schema, prepared.document, context_value=context,
                     variable_values=variables, operation_name=name)
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [_error(e) for e in result.errors]
    return GraphQLResult(body, name or prepared.operation_name)
