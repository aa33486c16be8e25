"""A fast executor for the served schema, with graphql-core's executor as the exact fallback.

Why: graphql-core's general executor spends ~40 µs per field; a full-fragment ``Runs`` page of
50 runs has ~1,250 fields, so it alone would cap ``serve`` near 30 pages/s. Our schema is
simple (resolvers return plain dicts, every field is nullable, no async, no subscriptions), so
this executor walks the validated document directly: fields are collected once per
(selection set, runtime type) and reused for every object of a list, leaf values go through
the scalar's serializer only when they are not already of the right Python type, and the
answer is written as JSON text as it is walked (no dicts built, then encoded).

Anything unusual (an exception in a resolver, a value a serializer rejects, introspection,
``@defer``/``@stream``) raises :class:`Fallback`, and the caller re-runs the request with
graphql-core, which produces the standard ``errors`` with paths. So the fast path never changes
what a client sees, only how fast it sees it. Resolvers must only use ``info.context`` (the
fast path passes a minimal info object).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from threading import Lock
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLBoolean,
    GraphQLFloat,
    GraphQLID,
    GraphQLIncludeDirective,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLSkipDirective,
    GraphQLString,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    is_abstract_type,
    is_leaf_type,
    type_from_ast,
)
from graphql.execution.values import get_argument_values, get_directive_values, get_variable_values

from .encode import RawJSON, encode_text
from .encode import escape as _escape
from .encode import float_text as _float_text

__all__ = ["Fallback", "execute_fast"]


class Fallback(Exception):
    """The fast path cannot answer this request exactly; use graphql-core."""


class _Info:
    """What resolvers may read from ``info`` on the fast path."""

    __slots__ = ("context",)

    def __init__(self, context: Any) -> None:
        self.context = context


_IDENTITY = object()
"""Marker: the scalar's serializer is the identity (our custom scalars), copy values as-is."""
_DEFAULT_SERIALIZE = GraphQLScalarType.serialize
_FAST_LEAF: dict[str, Any] = {
    GraphQLString.name: str,
    GraphQLID.name: str,
    GraphQLBoolean.name: bool,
    GraphQLInt.name: int,
    GraphQLFloat.name: float,
}
_TEXT: dict[Any, Any] = {str: _escape, bool: lambda v: "true" if v else "false",
                         int: int.__repr__, float: _float_text}
"""JSON text of a value of exactly this type, as the reply encoder would write it."""


_SHARED: OrderedDict[int, tuple[Any, dict[Any, Any], dict[Any, Any]]] = OrderedDict()
_SHARED_MAX = 64
_SHARED_LOCK = Lock()


def _shared_plans(document: Any) -> tuple[Any, dict[Any, Any], dict[Any, Any]] | None:
    """Field plans shared by every request of ``document``, when they cannot depend on the
    variables: no ``@`` anywhere in its text, so no ``@skip``/``@include``. (Planning a
    ``Runs`` document cost ~0.5 ms of every page.) None: plan per request."""
    loc = document.loc
    if loc is None or "@" in loc.source.body:
        return None
    with _SHARED_LOCK:
        hit = _SHARED.get(id(document))
        if hit is None or hit[0] is not document:  # the entry keeps its document alive
            hit = _SHARED[id(document)] = (document, {}, {})
            if len(_SHARED) > _SHARED_MAX:
                _SHARED.popitem(last=False)
        else:
            _SHARED.move_to_end(id(document))
        return hit


class _Executor:
    def __init__(self, schema: GraphQLSchema, document: Any, operation: OperationDefinitionNode,
                 variables: Any, context: Any) -> None:
        self.schema = schema
        self.variables = variables
        self.info = _Info(context)
        self.fragments = {d.name.value: d for d in document.definitions
                          if isinstance(d, FragmentDefinitionNode)}
        shared = _shared_plans(document)
        self.collected: dict[tuple[tuple[int, ...], str], Any] = shared[1] if shared else {}
        self.sub_plans: dict[tuple[int, str], Any] = shared[2] if shared else {}
        self.args: dict[int, dict[str, Any]] = {}

    # ------------------------------------------------------------------ field collection
    def _included(self, node: Any) -> bool:
        if not node.directives:
            return True
        skip = get_directive_values(GraphQLSkipDirective, node, self.variables)
        if skip and skip.get("if") is True:
            return False
        include = get_directive_values(GraphQLIncludeDirective, node, self.variables)
        return not (include is not None and include.get("if") is False)

    def _matches(self, fragment: Any, type_: GraphQLObjectType) -> bool:
        cond = fragment.type_condition
        if cond is None:
            return True
        ctype = type_from_ast(self.schema, cond)
        if ctype is type_:
            return True
        return bool(is_abstract_type(ctype) and self.schema.is_sub_type(ctype, type_))

    def _collect(self, selection_sets: Iterable[SelectionSetNode], type_: GraphQLObjectType
                 ) -> list[tuple[str, list[FieldNode]]]:
        key = (tuple(id(s) for s in selection_sets), type_.name)
        hit = self.collected.get(key)
        if hit is not None:
            return hit
        fields: dict[str, list[FieldNode]] = {}
        visited: set[str] = set()

        def walk(sel_set: SelectionSetNode) -> None:
            for sel in sel_set.selections:
                if isinstance(sel, FieldNode):
                    if self._included(sel):
                        name = sel.alias.value if sel.alias else sel.name.value
                        fields.setdefault(name, []).append(sel)
                elif isinstance(sel, InlineFragmentNode):
                    if self._included(sel) and self._matches(sel, type_):
                        walk(sel.selection_set)
                elif isinstance(sel, FragmentSpreadNode):
                    name = sel.name.value
                    if name in visited or not self._included(sel):
                        continue
                    visited.add(name)
                    frag = self.fragments.get(name)
                    if frag is not None and self._matches(frag, type_):
                        walk(frag.selection_set)
                else:
                    raise Fallback(f"unsupported selection {type(sel).__name__}")

        for s in selection_sets:
            walk(s)
        out = list(fields.items())
        self.collected[key] = out
        return out

    # ------------------------------------------------------------------ values
    def _plan(self, type_: GraphQLObjectType, selection_sets: list[SelectionSetNode]) -> list[tuple]:
        """Per response key: (``"key":`` as JSON text, after a comma but for the first, name, nodes, field, leaf fast type or
        None, its text encoder, sub-selection sets).

        Cached per (selection sets, type): every object of a list shares one plan.
        """
        key = (tuple(id(s) for s in selection_sets), "plan:" + type_.name)
        hit = self.collected.get(key)
        if hit is not None:
            return hit  # type: ignore[return-value]
        plan = []
        for response_key, nodes in self._collect(selection_sets, type_):
            prefix = ("," if plan else "") + _escape(response_key) + ":"
            name = nodes[0].name.value
            if name == "__typename":
                plan.append((prefix, name, nodes, None, None, _escape(type_.name), None))
                continue
            field = type_.fields.get(name)
            if field is None:
                raise Fallback(f"unknown field {type_.name}.{name}")
            named = field.type
            if isinstance(named, GraphQLNonNull):
                named = named.of_type
            leaf = named if is_leaf_type(named) else None
            fast = _FAST_LEAF.get(leaf.name, _IDENTITY) if leaf is not None else None
            if leaf is not None and leaf.serialize is not _DEFAULT_SERIALIZE and fast is _IDENTITY:
                fast = None  # a custom scalar with its own serializer
            sets = [n.selection_set for n in nodes if n.selection_set]
            plan.append((prefix, name, nodes, field, fast, _TEXT.get(fast), sets))
        self.collected[key] = plan  # type: ignore[assignment]
        return plan

    def _sub_plan(self, type_: GraphQLObjectType, sets: list[SelectionSetNode]) -> list[tuple]:
        """:meth:`_plan` for the sub-selections of a planned field (``sets`` from its plan)."""
        key = (id(sets), type_.name)
        hit = self.sub_plans.get(key)
        if hit is None or hit[0] is not sets:  # (an id reused after a racing plan was dropped)
            hit = self.sub_plans[key] = (sets, self._plan(type_, sets))
        return hit[1]  # type: ignore[no-any-return]

    def _arguments(self, field: Any, node: FieldNode) -> dict[str, Any]:
        """A field's coerced arguments; the same for every object of a request (one document,
        one set of variables), so computed once per field node."""
        args = self.args.get(id(node))
        if args is None:
            args = self.args[id(node)] = get_argument_values(field, node, self.variables)
        return args

    def object(self, type_: GraphQLObjectType, source: Any,
               selection_sets: list[SelectionSetNode], out: list[str],
               plan: list[tuple] | None = None) -> None:
        """Append the JSON text of one object to ``out`` (written directly, into one list
        joined once per reply: building dicts and encoding them, or joining strings per
        level, cost a cold ``Runs`` page a quarter more)."""
        is_map = isinstance(source, Mapping)
        if plan is None:
            plan = self._plan(type_, selection_sets)
        append = out.append
        append("{")
        for prefix, name, nodes, field, fast, text, sets in plan:
            if field is None:  # __typename: ``text`` is the type's name as JSON
                append(prefix + text)
                continue
            if field.resolve is not None:
                args = self._arguments(field, nodes[0]) if field.args else {}
                try:
                    value = field.resolve(source, self.info, **args)
                except Exception as exc:  # errors are reported by graphql-core's run
                    raise Fallback(str(exc)) from exc
            elif is_map:
                value = source.get(name)
            else:
                value = getattr(source, name, None)
            if value is None:
                append(prefix + "null")
            elif text is not None and type(value) is fast:
                append(prefix + text(value))
            elif fast is _IDENTITY:
                append(prefix + _any_text(value))
            else:
                append(prefix)
                self.complete(field.type, value, sets, out)
        append("}")

    def complete(self, type_: Any, value: Any, sets: list[SelectionSetNode],
                 out: list[str]) -> None:
        """Append the JSON text of ``value`` completed as ``type_`` to ``out``."""
        if isinstance(type_, GraphQLNonNull):
            if value is None:
                raise Fallback("null in a non-null position")
            type_ = type_.of_type
        if value is None:
            out.append("null")
            return
        if isinstance(type_, GraphQLList):
            if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
                raise Fallback("list expected")
            item_type = type_.of_type
            if isinstance(item_type, GraphQLNonNull):
                item_type = item_type.of_type
            out.append("[")
            if isinstance(item_type, GraphQLObjectType):  # one plan for every item
                plan = self._sub_plan(item_type, sets)
                for i, v in enumerate(value):
                    if i:
                        out.append(",")
                    if v is None:
                        out.append("null")
                    else:
                        self.object(item_type, v, sets, out, plan)
            else:
                fast = _FAST_LEAF.get(getattr(item_type, "name", ""))
                text = _TEXT.get(fast)
                for i, v in enumerate(value):
                    if i:
                        out.append(",")
                    if text is not None and type(v) is fast:
                        out.append(text(v))
                    else:
                        self.complete(item_type, v, sets, out)
            out.append("]")
            return
        if is_leaf_type(type_):
            fast = _FAST_LEAF.get(type_.name)
            if fast is not None and type(value) is fast:
                out.append(_TEXT[fast](value))
                return
            try:
                out.append(_any_text(type_.serialize(value)))
            except Fallback:
                raise
            except Exception as exc:
                raise Fallback(str(exc)) from exc
            return
        if is_abstract_type(type_):
            typename = value.get("__typename") if isinstance(value, Mapping) else None
            runtime = self.schema.type_map.get(typename) if typename else None
            if not isinstance(runtime, GraphQLObjectType) or not self.schema.is_sub_type(type_, runtime):
                raise Fallback(f"cannot resolve the runtime type of {type_.name}")
            type_ = runtime
        self.object(type_, value, sets, out, self._sub_plan(type_, sets))


def _any_text(value: Any) -> str:
    """JSON text of a serialized leaf (any JSON-able value, RawJSON included)."""
    text = _TEXT.get(type(value))
    if text is not None:
        return text(value)  # type: ignore[no-any-return]
    try:
        return encode_text(value)
    except (TypeError, ValueError) as exc:
        raise Fallback(f"cannot encode {type(value).__name__}") from exc


def execute_fast(schema: GraphQLSchema, document: Any, operation_name: str | None,
                 raw_variables: dict[str, Any], context: Any) -> RawJSON:
    """The ``data`` of a query as JSON text (:func:`.encode.encode_reply` splices it), or
    raise :class:`Fallback`.

    The document must already be valid for ``schema``.
    """
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1 or operations[0].operation.value != "query":
        raise Fallback("not exactly one query operation")
    operation = operations[0]
    for sel in operation.selection_set.selections:
        if isinstance(sel, FieldNode) and sel.name.value.startswith("__") \
                and sel.name.value != "__typename":
            raise Fallback("introspection")
    variables = get_variable_values(schema, operation.variable_definitions or (), raw_variables)
    if isinstance(variables, list):
        raise Fallback("variable errors")
    executor = _Executor(schema, document, operation, variables, context)
    root = schema.query_type
    assert root is not None
    out: list[str] = []
    executor.object(root, None, [operation.selection_set], out)
    return RawJSON("".join(out))
