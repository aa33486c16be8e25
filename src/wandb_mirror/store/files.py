"""Run files (metadata in their GraphQL ``File`` shape) and the content cache of file bytes.

``upsert_files`` takes ``RunFiles`` nodes exactly as upstream sends them
(``{id name url directUrl sizeBytes mimetype updatedAt md5}``) and ``file_node`` gives that
shape back; the URLs kept are upstream's, a server hands out its own. File bytes live once per
content in ``file_contents``, keyed by the base64 MD5 W&B reports; ``put_content`` refuses
bytes that do not match the MD5 they are stored under.
"""
from __future__ import annotations

import base64
import hashlib
import mimetypes
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from ..errors import StoreError
from .models import FileContent, Run, RunFile
from .runs import now_iso

__all__ = [
    "count_files", "delete_files", "file_node", "files_by_id", "get_content", "get_file",
    "has_content", "list_files", "md5_b64", "put_content", "put_contents", "store_file",
    "upsert_files",
]

# GraphQL File field -> RunFile attribute.
_FIELDS = {
    "id": "upstream_id",
    "url": "url",
    "directUrl": "direct_url",
    "sizeBytes": "size_bytes",
    "mimetype": "mimetype",
    "updatedAt": "updated_at",
    "md5": "md5",
}


def md5_b64(data: bytes) -> str:
    """The base64 MD5 of ``data``, as W&B reports file digests."""
    return base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


def upsert_files(session: Session, run: Run, nodes: Iterable[Mapping[str, Any]]) -> list[RunFile]:
    """Insert or update a run's files from GraphQL ``File`` nodes (keyed by ``name``).

    Fields absent from a node are left as they are. Returns the rows in input order.
    """
    existing = {f.name: f for f in session.scalars(select(RunFile).where(RunFile.run_pk == run.pk))}
    out: list[RunFile] = []
    for node in nodes:
        name = node["name"]
        row = existing.get(name)
        if row is None:
            row = RunFile(run_pk=run.pk, name=name)
            session.add(row)
            existing[name] = row
        for field, attr in _FIELDS.items():
            if field in node:
                value = node[field]
                if field == "sizeBytes" and value is not None:
                    value = int(value)
                setattr(row, attr, value)
        out.append(row)
    session.flush()
    return out


def store_file(session: Session, run: Run, name: str, data: bytes, *,
               fields: Mapping[str, Any] | None = None) -> RunFile:
    """Store a file written to a run (an upload): its bytes in the content cache and its
    metadata row (``md5``, ``sizeBytes``, ``updatedAt`` from the bytes and the clock,
    ``mimetype`` guessed from the name, then the GraphQL ``File`` ``fields`` given, e.g.
    ``id``, ``url``)."""
    md5 = md5_b64(data)
    put_content(session, md5, data)
    node: dict[str, Any] = {
        "name": name, "md5": md5, "sizeBytes": len(data), "updatedAt": now_iso(),
        "mimetype": mimetypes.guess_type(name)[0] or "application/octet-stream",
        **(fields or {})}
    (row,) = upsert_files(session, run, [node])
    return row


def delete_files(session: Session, run_pk: int, names: Iterable[str]) -> int:
    """Remove a run's files by name (deleted upstream); cached bytes stay, shared by content.
    Returns how many rows were removed."""
    wanted = list(names)
    if not wanted:
        return 0
    result = session.execute(delete(RunFile).where(RunFile.run_pk == run_pk,
                                                   RunFile.name.in_(wanted)))
    session.flush()
    return int(result.rowcount or 0)


def file_node(row: RunFile, *, url: str | None = None, direct_url: str | None = None) -> dict[str, Any]:
    """The file as a GraphQL ``File`` node; ``url``/``direct_url`` override the stored ones."""
    return {
        "id": row.upstream_id,
        "name": row.name,
        "url": url if url is not None else row.url,
        "directUrl": direct_url if direct_url is not None else row.direct_url,
        "sizeBytes": row.size_bytes,
        "mimetype": row.mimetype,
        "updatedAt": row.updated_at,
        "md5": row.md5,
    }


def list_files(
    session: Session,
    run_pk: int,
    *,
    names: Sequence[str] | None = None,
    pattern: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[RunFile]:
    """A run's files ordered by name; ``names`` selects exact names, ``pattern`` is SQL LIKE."""
    stmt = select(RunFile).where(RunFile.run_pk == run_pk)
    if names:
        stmt = stmt.where(RunFile.name.in_(list(names)))
    if pattern:
        stmt = stmt.where(RunFile.name.like(pattern))
    stmt = stmt.order_by(RunFile.name).offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def count_files(session: Session, run_pk: int, *, names: Sequence[str] | None = None,
                pattern: str | None = None) -> int:
    """Number of a run's files matching the same selection as :func:`list_files`."""
    stmt = select(func.count()).select_from(RunFile).where(RunFile.run_pk == run_pk)
    if names:
        stmt = stmt.where(RunFile.name.in_(list(names)))
    if pattern:
        stmt = stmt.where(RunFile.name.like(pattern))
    return int(session.scalar(stmt) or 0)


def get_file(session: Session, run_pk: int, name: str) -> RunFile | None:
    """One run file by name."""
    return session.scalar(select(RunFile).where(RunFile.run_pk == run_pk, RunFile.name == name))


def files_by_id(session: Session, upstream_id: str) -> list[RunFile]:
    """Run files by their upstream (GraphQL) id."""
    return list(session.scalars(select(RunFile).where(RunFile.upstream_id == upstream_id)))


def put_content(session: Session, md5: str, data: bytes, *, fetched_at: str | None = None) -> None:
    """Cache ``data`` under its base64 MD5.

    Raises:
        StoreError: ``data`` does not hash to ``md5`` (a truncated or corrupted download).
    """
    actual = md5_b64(data)
    if actual != md5:
        raise StoreError(
            f"file content does not match its md5: expected {md5}, got {actual} "
            f"({len(data)} bytes); the download was probably truncated, fetch it again"
        )
    row = session.get(FileContent, md5)
    if row is None:
        session.add(FileContent(md5=md5, size_bytes=len(data), data=data,
                                fetched_at=fetched_at or now_iso()))
        session.flush()


def put_contents(session: Session, contents: Mapping[str, bytes], *,
                 fetched_at: str | None = None) -> int:
    """Cache many ``{md5: bytes}`` at once (each verified); returns how many were new.

    Raises:
        StoreError: some bytes do not hash to their md5.
    """
    for md5, data in contents.items():
        if md5_b64(data) != md5:
            put_content(session, md5, data)  # raises with the details
    if not contents:
        return 0
    have: set[str] = set()
    keys = list(contents)
    for i in range(0, len(keys), 500):
        have.update(session.scalars(select(FileContent.md5).where(FileContent.md5.in_(keys[i:i + 500]))))
    stamp = fetched_at or now_iso()
    new = [{"md5": k, "size_bytes": len(contents[k]), "data": contents[k], "fetched_at": stamp}
           for k in keys if k not in have]
    if new:
        session.execute(insert(FileContent.__table__), new)
    return len(new)


def get_content(session: Session, md5: str | None) -> bytes | None:
    """Cached bytes for a base64 MD5, or None when never fetched."""
    if not md5:
        return None
    row = session.get(FileContent, md5)
    return None if row is None else bytes(row.data)


def has_content(session: Session, md5: str | None) -> bool:
    """Whether bytes for this MD5 are cached (without loading them)."""
    if not md5:
        return False
    return session.scalar(select(func.count()).select_from(FileContent)
                          .where(FileContent.md5 == md5)) == 1
