"""Batched per-run detail requests: many runs' first pages in one GraphQL document.

A first sync of a project with many small runs would otherwise cost five requests a run
(history, events, files, input and output artifacts). Here each run becomes one aliased
``run(name:)`` block holding the first window of each, and runs are packed into one request
while their expected history rows fit in a page. Whatever does not fit in a first page is
paged afterwards by the worker.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..remote.queries import ARTIFACT_FIELDS

__all__ = ["MAX_RUNS_PER_REQUEST", "RunPlan", "batches", "details_document"]

MAX_RUNS_PER_REQUEST = 25

_FILE_FIELDS = "id name url directUrl sizeBytes mimetype updatedAt md5"
_PAGE = "pageInfo { endCursor hasNextPage }"


@dataclass
class RunPlan:
    """What to fetch for one run in a details batch."""

    run_id: str
    run_pk: int
    history: tuple[int, int] | None = None  # (minStep, maxStep exclusive) of the first window
    history_last: int | None = None  # upstream lastStep
    events_samples: int | None = None
    events_expected: int = 0  # new event rows expected (for packing)
    files: bool = False
    artifacts: bool = False

    @property
    def weight(self) -> int:
        """Rows this run's block may return (for packing requests)."""
        rows = (self.history[1] - self.history[0]) if self.history else 0
        return rows + self.events_expected + 1

    @property
    def empty(self) -> bool:
        return not (self.history or self.events_samples or self.files or self.artifacts)


def batches(plans: Sequence[RunPlan], budget: int) -> Iterator[list[RunPlan]]:
    """Pack plans in order into batches of total weight <= budget (a heavy plan goes alone)."""
    batch: list[RunPlan] = []
    weight = 0
    for plan in plans:
        if plan.empty:
            continue
        if batch and (weight + plan.weight > budget or len(batch) >= MAX_RUNS_PER_REQUEST):
            yield batch
            batch, weight = [], 0
        batch.append(plan)
        weight += plan.weight
    if batch:
        yield batch


def details_document(plans: Sequence[RunPlan]) -> tuple[str, dict[str, Any]]:
    """The document and variables fetching every plan's first pages (aliases ``r0``, ``r1``...)."""
    decls = ["$entity: String!", "$project: String!"]
    blocks = []
    variables: dict[str, Any] = {}
    for i, plan in enumerate(plans):
        decls.append(f"$n{i}: String!")
        variables[f"n{i}"] = plan.run_id
        fields = []
        if plan.history:
            decls += [f"$lo{i}: Int64!", f"$hi{i}: Int64!", f"$s{i}: Int!"]
            lo, hi = plan.history
            variables.update({f"lo{i}": lo, f"hi{i}": hi, f"s{i}": hi - lo})
            fields.append(f"history(minStep: $lo{i}, maxStep: $hi{i}, samples: $s{i})")
        if plan.events_samples:
            decls.append(f"$e{i}: Int!")
            variables[f"e{i}"] = plan.events_samples
            fields.append(f"events(samples: $e{i})")
        if plan.files:
            fields.append(f"files(first: 100) {{ edges {{ cursor node {{ {_FILE_FIELDS} }} }} "
                          f"{_PAGE} }}")
        if plan.artifacts:
            for name in ("inputArtifacts", "outputArtifacts"):
                fields.append(f"{name}(first: 100) {{ edges {{ cursor node {{ {ARTIFACT_FIELDS} }} }}"
                              f" {_PAGE} }}")
        blocks.append(f"r{i}: run(name: $n{i}) {{ name {' '.join(fields)} }}")
    query = (f"query MirrorRunDetails({', '.join(decls)}) {{\n"
             f"  project(name: $project, entityName: $entity) {{\n    "
             + "\n    ".join(blocks) + "\n  }\n}")
    return query, variables
