"""SQLAlchemy 2.x typed models of the store.

What upstream sent is kept losslessly as text (``*_raw`` columns hold the JSON strings exactly
as received: config with its ``{"value": ...}`` wrappers, summary, system metrics, history keys,
manifests, report specs, sweep YAML). Everything else is derived for querying: typed columns,
parsed timestamps (``*_ts``, Unix seconds, UTC) and the ``run_values`` index that the filter
compiler reads (see :mod:`wandb_mirror.store.values`). History is stored column-chunked, see
:mod:`wandb_mirror.store.history` and ``docs/history-layout.md``.
"""
from __future__ import annotations

from typing import Optional

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .types import ScalarNumber

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _fk(target: str, *, nullable: bool = False, index: bool = True) -> Mapped:  # type: ignore[type-arg]
    return mapped_column(
        Integer, ForeignKey(target, ondelete="CASCADE"), nullable=nullable, index=index
    )


class User(Base):
    """A W&B user as seen on runs, reports and projects."""

    __tablename__ = "users"
    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String, unique=True)
    name: Mapped[Optional[str]] = mapped_column(String)
    email: Mapped[Optional[str]] = mapped_column(String)
    upstream_id: Mapped[Optional[str]] = mapped_column(String)
    photo_url: Mapped[Optional[str]] = mapped_column(String)


class Project(Base):
    """A W&B project (GraphQL ``Project``, historically ``models``)."""

    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("entity", "name"),)
    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    entity: Mapped[str] = mapped_column(String)
    name: Mapped[str] = mapped_column(String)
    upstream_id: Mapped[Optional[str]] = mapped_column(String)
    internal_id: Mapped[Optional[str]] = mapped_column(String)
    created_at: Mapped[Optional[str]] = mapped_column(String)
    is_benchmark: Mapped[bool] = mapped_column(Boolean, default=False)
    read_only: Mapped[Optional[bool]] = mapped_column(Boolean)
    description: Mapped[Optional[str]] = mapped_column(Text)
    owner_pk: Mapped[Optional[int]] = mapped_column(
        Integer, ForeignKey("users.pk", ondelete="SET NULL"), index=True
    )
    extra_raw: Mapped[Optional[str]] = mapped_column(Text)


class Run(Base):
    """A run: every field of the W&B run fragment, raw JSON kept, derived columns for queries."""

    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint("project_pk", "run_id"),
        Index("ix_runs_project_pk_created_ts", "project_pk", "created_ts"),
        Index("ix_runs_project_pk_state", "project_pk", "state"),
        Index("ix_runs_project_pk_sweep_name", "project_pk", "sweep_name"),
    )
    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_pk: Mapped[int] = _fk("projects.pk", index=False)
    run_id: Mapped[str] = mapped_column(String)  # GraphQL `name`
    storage_id: Mapped[Optional[str]] = mapped_column(String)  # GraphQL `id`
    project_internal_id: Mapped[Optional[str]] = mapped_column(String)  # GraphQL `projectId`
    display_name: Mapped[Optional[str]] = mapped_column(String)
    state: Mapped[Optional[str]] = mapped_column(String)
    tags_raw: Mapped[Optional[str]] = mapped_column(Text)  # JSON list as received
    group: Mapped[Optional[str]] = mapped_column("group_name", String)
    job_type: Mapped[Optional[str]] = mapped_column(String)
    commit: Mapped[Optional[str]] = mapped_column(String)
    description: Mapped[Optional[str]] = mapped_column(Text)
    notes: Mapped[Optional[str]] = mapped_column(Text)
    host: Mapped[Optional[str]] = mapped_column(String)
    sweep_name: Mapped[Optional[str]] = mapped_column(String)
    read_only: Mapped[Optional[bool]] = mapped_column(Boolean)
    created_at: Mapped[Optional[str]] = mapped_column(String)
    heartbeat_at: Mapped[Optional[str]] = mapped_column(String)
    updated_at: Mapped[Optional[str]] = mapped_column(String)
    created_ts: Mapped[Optional[float]] = mapped_column(Float)
    heartbeat_ts: Mapped[Optional[float]] = mapped_column(Float)
    updated_ts: Mapped[Optional[float]] = mapped_column(Float)
    history_line_count: Mapped[Optional[int]] = mapped_column(BigInteger)
    events_line_count: Mapped[Optional[int]] = mapped_column(BigInteger)
    user_pk: Mapped[Optional[int]] = mapped_column(
        Integer, ForeignKey("users.pk", ondelete="SET NULL"), index=True
    )
    config_raw: Mapped[Optional[str]] = mapped_column(Text)
    summary_raw: Mapped[Optional[str]] = mapped_column(Text)
    system_metrics_raw: Mapped[Optional[str]] = mapped_column(Text)
    history_keys_raw: Mapped[Optional[str]] = mapped_column(Text)
    extra_raw: Mapped[Optional[str]] = mapped_column(Text)  # fragment fields with no column
    deleted_at: Mapped[Optional[str]] = mapped_column(String)  # set when gone upstream
    synced_at: Mapped[Optional[str]] = mapped_column(String)


class RunValue(Base):
    """Derived index of every filterable value of a run (see :mod:`.values`).

    One row per (root, dotted path) for the value itself (``elem = 0``) and one per element
    when the value is an array (``elem = 1``). ``kind`` is the Mongo type class; ``num`` holds
    numbers (NULL for NaN, with ``nan = 1``), booleans as 0/1 and timestamps as Unix seconds;
    ``txt`` holds strings, canonical JSON of objects/arrays, and exact digits of integers.
    """

    __tablename__ = "run_values"
    # Covering indexes (measured in bench/query_bench.py): a filter leaf reads only the first,
    # an order lookup only the third.
    __table_args__ = (
        Index("ix_run_values_root_path_kind_num_run_pk", "root", "path", "kind", "num", "run_pk"),
        Index("ix_run_values_root_path_kind_txt", "root", "path", "kind", "txt"),
        Index("ix_run_values_run_pk_root_path_elem_kind_num_txt",
              "run_pk", "root", "path", "elem", "kind", "num", "txt"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_pk: Mapped[int] = _fk("runs.pk", index=False)
    root: Mapped[int] = mapped_column(SmallInteger)
    path: Mapped[str] = mapped_column(String)
    elem: Mapped[int] = mapped_column(SmallInteger)
    kind: Mapped[int] = mapped_column(SmallInteger)
    num: Mapped[Optional[float]] = mapped_column(ScalarNumber)  # INTEGER or REAL, no affinity
    nan: Mapped[bool] = mapped_column(Boolean, default=False)
    txt: Mapped[Optional[str]] = mapped_column(Text)
    size: Mapped[Optional[int]] = mapped_column(Integer)  # array length for kind=array


class HistoryChunk(Base):
    """One chunk of consecutive history rows of one run and stream (default or system events)."""

    __tablename__ = "history_chunks"
    run_pk: Mapped[int] = mapped_column(
        Integer, ForeignKey("runs.pk", ondelete="CASCADE"), primary_key=True
    )
    stream: Mapped[str] = mapped_column(String, primary_key=True)
    chunk_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    min_step: Mapped[int] = mapped_column(BigInteger)
    max_step: Mapped[int] = mapped_column(BigInteger)
    n_rows: Mapped[int] = mapped_column(Integer)


class HistoryColumn(Base):
    """One key's values over one chunk, as an Arrow IPC-encoded array (see ``store.history``)."""

    __tablename__ = "history_columns"
    __table_args__ = (
        Index("ix_history_columns_run_pk_stream_key", "run_pk", "stream", "key"),
    )
    run_pk: Mapped[int] = mapped_column(
        Integer, ForeignKey("runs.pk", ondelete="CASCADE"), primary_key=True
    )
    stream: Mapped[str] = mapped_column(String, primary_key=True)
    chunk_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String, primary_key=True)
    encoding: Mapped[str] = mapped_column(String)  # int64 | float64 | bool | string | json
    n_present: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class RunFile(Base):
    """A run file's metadata; its bytes live in ``file_contents`` by md5 once fetched."""

    __tablename__ = "run_files"
    __table_args__ = (UniqueConstraint("run_pk", "name"),)
    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_pk: Mapped[int] = _fk("runs.pk", index=False)
    name: Mapped[str] = mapped_column(String)
    upstream_id: Mapped[Optional[str]] = mapped_column(String)
    url: Mapped[Optional[str]] = mapped_column(Text)
    direct_url: Mapped[Optional[str]] = mapped_column(Text)
    size_bytes: Mapped[Optional[int]] = mapped_column(BigInteger)
    mimetype: Mapped[Optional[str]] = mapped_column(String)
    updated_at: Mapped[Optional[str]] = mapped_column(String)
    md5: Mapped[Optional[str]] = mapped_column(String, index=True)


class FileContent(Base):
    """Content-addressed cache of file bytes, keyed by the base64 MD5 W&B reports."""

    __tablename__ = "file_contents"
    md5: Mapped[str] = mapped_column(String, primary_key=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    fetched_at: Mapped[Optional[str]] = mapped_column(String)


class Sweep(Base):
    """A sweep; ``config_raw`` is the YAML string upstream returns."""

    __tablename__ = "sweeps"
    __table_args__ = (UniqueConstraint("project_pk", "name"),)
    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_pk: Mapped[int] = _fk("projects.pk", index=False)
    name: Mapped[str] = mapped_column(String)  # short sweep id used in paths
    upstream_id: Mapped[Optional[str]] = mapped_column(String)
    display_name: Mapped[Optional[str]] = mapped_column(String)
    method: Mapped[Optional[str]] = mapped_column(String)
    state: Mapped[Optional[str]] = mapped_column(String)
    description: Mapped[Optional[str]] = mapped_column(Text)
    best_loss: Mapped[Optional[float]] = mapped_column(Float)
    config_raw: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[Optional[str]] = mapped_column(String)
    updated_at: Mapped[Optional[str]] = mapped_column(String)
    run_count: Mapped[Optional[int]] = mapped_column(Integer)
    run_count_expected: Mapped[Optional[int]] = mapped_column(Integer)
    deleted_at: Mapped[Optional[str]] = mapped_column(String)


class Report(Base):
    """A report (GraphQL ``View`` of type runs); ``spec_raw`` is the JSON spec string."""

    __tablename__ = "reports"
    __table_args__ = (UniqueConstraint("project_pk", "upstream_id"),)
    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_pk: Mapped[int] = _fk("projects.pk", index=False)
    upstream_id: Mapped[str] = mapped_column(String)
    name: Mapped[Optional[str]] = mapped_column(String)
    display_name: Mapped[Optional[str]] = mapped_column(String)
    description: Mapped[Optional[str]] = mapped_column(Text)
    spec_raw: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[Optional[str]] = mapped_column(String)
    updated_at: Mapped[Optional[str]] = mapped_column(String)
    user_pk: Mapped[Optional[int]] = mapped_column(
        Integer, ForeignKey("users.pk", ondelete="SET NULL"), index=True
    )
    deleted_at: Mapped[Optional[str]] = mapped_column(String)


class ArtifactType(Base):
    __tablename__ = "artifact_types"
    __table_args__ = (UniqueConstraint("project_pk", "name"),)
    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_pk: Mapped[int] = _fk("projects.pk", index=False)
    name: Mapped[str] = mapped_column(String)
    upstream_id: Mapped[Optional[str]] = mapped_column(String)
    description: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[Optional[str]] = mapped_column(String)


class ArtifactCollection(Base):
    """An artifact collection (``ArtifactSequence``, or ``ArtifactPortfolio`` for links)."""

    __tablename__ = "artifact_collections"
    __table_args__ = (UniqueConstraint("project_pk", "name"),)
    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_pk: Mapped[int] = _fk("projects.pk", index=False)
    type_pk: Mapped[int] = _fk("artifact_types.pk")
    name: Mapped[str] = mapped_column(String)
    upstream_id: Mapped[Optional[str]] = mapped_column(String)
    kind: Mapped[str] = mapped_column(String, default="ArtifactSequence")
    description: Mapped[Optional[str]] = mapped_column(Text)
    tags_raw: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[Optional[str]] = mapped_column(String)
    updated_at: Mapped[Optional[str]] = mapped_column(String)
    deleted_at: Mapped[Optional[str]] = mapped_column(String)  # set when gone upstream


class ArtifactVersion(Base):
    """One version of an artifact; ``manifest_raw`` is the manifest JSON as downloaded."""

    __tablename__ = "artifact_versions"
    __table_args__ = (UniqueConstraint("collection_pk", "version_index"),)
    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_pk: Mapped[int] = _fk("artifact_collections.pk", index=False)
    upstream_id: Mapped[str] = mapped_column(String, unique=True)
    version_index: Mapped[int] = mapped_column(Integer)
    digest: Mapped[Optional[str]] = mapped_column(String)
    size: Mapped[Optional[int]] = mapped_column(BigInteger)
    file_count: Mapped[Optional[int]] = mapped_column(Integer)
    state: Mapped[Optional[str]] = mapped_column(String)
    description: Mapped[Optional[str]] = mapped_column(Text)
    metadata_raw: Mapped[Optional[str]] = mapped_column(Text)
    tags_raw: Mapped[Optional[str]] = mapped_column(Text)
    commit_hash: Mapped[Optional[str]] = mapped_column(String)
    history_step: Mapped[Optional[int]] = mapped_column(BigInteger)
    ttl_duration_seconds: Mapped[Optional[int]] = mapped_column(BigInteger)
    ttl_is_inherited: Mapped[Optional[bool]] = mapped_column(Boolean)
    created_at: Mapped[Optional[str]] = mapped_column(String)
    updated_at: Mapped[Optional[str]] = mapped_column(String)
    manifest_raw: Mapped[Optional[str]] = mapped_column(Text)
    deleted_at: Mapped[Optional[str]] = mapped_column(String)  # set when gone upstream


class ArtifactAlias(Base):
    __tablename__ = "artifact_aliases"
    __table_args__ = (UniqueConstraint("collection_pk", "alias"),)
    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_pk: Mapped[int] = _fk("artifact_collections.pk", index=False)
    version_pk: Mapped[int] = _fk("artifact_versions.pk")
    alias: Mapped[str] = mapped_column(String)
    upstream_id: Mapped[Optional[str]] = mapped_column(String)


class ManifestEntry(Base):
    """One entry of an artifact manifest (``contents[path]``)."""

    __tablename__ = "manifest_entries"
    version_pk: Mapped[int] = mapped_column(
        Integer, ForeignKey("artifact_versions.pk", ondelete="CASCADE"), primary_key=True
    )
    path: Mapped[str] = mapped_column(String, primary_key=True)
    digest: Mapped[str] = mapped_column(String, index=True)
    size: Mapped[Optional[int]] = mapped_column(BigInteger)
    ref: Mapped[Optional[str]] = mapped_column(Text)
    birth_artifact_id: Mapped[Optional[str]] = mapped_column(String)
    extra_raw: Mapped[Optional[str]] = mapped_column(Text)


class RunArtifact(Base):
    """A run's use (``input``) or production (``output``) of an artifact version."""

    __tablename__ = "run_artifacts"
    run_pk: Mapped[int] = mapped_column(
        Integer, ForeignKey("runs.pk", ondelete="CASCADE"), primary_key=True
    )
    version_pk: Mapped[int] = mapped_column(
        Integer, ForeignKey("artifact_versions.pk", ondelete="CASCADE"), primary_key=True, index=True
    )
    direction: Mapped[str] = mapped_column(String, primary_key=True)  # input | output


class ProjectSync(Base):
    """Sync state of one project: watermarks, last success, last error."""

    __tablename__ = "project_sync"
    project_pk: Mapped[int] = mapped_column(
        Integer, ForeignKey("projects.pk", ondelete="CASCADE"), primary_key=True
    )
    runs_created_watermark: Mapped[Optional[str]] = mapped_column(String)
    last_sync_at: Mapped[Optional[str]] = mapped_column(String)
    last_full_sync_at: Mapped[Optional[str]] = mapped_column(String)
    last_attempt_at: Mapped[Optional[str]] = mapped_column(String)
    last_error: Mapped[Optional[str]] = mapped_column(Text)
    last_error_at: Mapped[Optional[str]] = mapped_column(String)


class RunSync(Base):
    """Sync state of one run: what was seen upstream and what has been ingested."""

    __tablename__ = "run_sync"
    run_pk: Mapped[int] = mapped_column(
        Integer, ForeignKey("runs.pk", ondelete="CASCADE"), primary_key=True
    )
    history_last_step: Mapped[Optional[int]] = mapped_column(BigInteger)
    events_rows: Mapped[Optional[int]] = mapped_column(BigInteger)
    seen_state: Mapped[Optional[str]] = mapped_column(String)
    seen_heartbeat_at: Mapped[Optional[str]] = mapped_column(String)
    seen_history_line_count: Mapped[Optional[int]] = mapped_column(BigInteger)
    files_synced_at: Mapped[Optional[str]] = mapped_column(String)
    last_sync_at: Mapped[Optional[str]] = mapped_column(String)
    last_error: Mapped[Optional[str]] = mapped_column(Text)
    last_error_at: Mapped[Optional[str]] = mapped_column(String)
