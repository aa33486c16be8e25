"""``Files`` and ``File``: a run's files, bytes from the content cache (fetched when online)."""
from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING, Any

from ..errors import OfflineError
from ..paths import sync_command
from ..store import files as store_files
from ..store.engine import session_scope
from ..store.models import RunFile
from .base import Attrs, Paginator

if TYPE_CHECKING:
    from .runs import Run

__all__ = ["File", "Files", "safe_join"]


def safe_join(root: str, name: str) -> str:
    """``root/name``, refusing names that escape ``root`` (absolute or ``..``).

    Raises:
        ValueError: the name would leave ``root``.
    """
    parts = name.replace("\\", "/").split("/")
    if os.path.isabs(name) or ".." in parts:
        raise ValueError(f"file name {name!r} would be written outside {root!r}")
    return os.path.join(root, name)


class File(Attrs):
    """A file saved by a run.

    Attributes:
        id, name, url, direct_url, md5, mimetype, updated_at: the GraphQL fields.
        size: bytes (0 when unknown).
    """

    def __init__(self, run: Run, attrs: dict[str, Any]) -> None:
        super().__init__(attrs)
        self.run = run

    @property
    def size(self) -> int:
        size = self._attrs.get("sizeBytes")
        return int(size) if size is not None else 0

    @property
    def path_uri(self) -> str:
        """The storage URI (``directUrl``; the URL itself for reference files)."""
        direct = self._attrs.get("directUrl")
        if not direct:
            return ""
        if direct == self._attrs.get("url"):
            return direct
        if direct.startswith("https://") and ".s3." in direct:
            from urllib.parse import urlparse

            u = urlparse(direct)
            return f"s3://{u.netloc.split('.s3.')[0]}{u.path}"
        return ""

    def read_bytes(self) -> bytes:
        """The file's bytes: from the content cache, else (online) downloaded and cached.

        Raises:
            OfflineError: not cached and the Api is offline.
        """
        api = self.run._api
        md5 = self._attrs.get("md5")
        with session_scope(api._engine, f"reading cached file {self.name}") as s:
            data = store_files.get_content(s, md5)
        if data is not None:
            return data
        if api._offline:
            raise OfflineError(
                f"the bytes of {'/'.join(self.run.path)}/{self.name} are not in the store and "
                "this Api is offline; cache them with "
                f"`{sync_command(self.run.entity, self.run.project)}` "
                "(with [sync] file_patterns matching the file) or go online")
        url = self._attrs.get("url")
        if not url:
            raise OfflineError(f"{self.name} has no download URL in the store")
        data = api._client().get_bytes(url)
        if md5:
            with session_scope(api._engine, f"caching file {self.name}") as s:
                store_files.put_content(s, md5, data)
        return data

    def download(self, root: str = ".", replace: bool = False, exist_ok: bool = False,
                 api: Any = None) -> io.TextIOWrapper:
        """Write the file under ``root`` and return it opened for reading.

        Raises:
            ValueError: the file exists and neither ``replace`` nor ``exist_ok`` is set.
            OfflineError: the bytes are not cached and the Api is offline.
        """
        path = safe_join(root, self.name)
        if os.path.exists(path) and not replace:
            if exist_ok:
                return open(path)  # noqa: SIM115 - returned to the caller, as upstream
            raise ValueError("File already exists, pass replace=True to overwrite or "
                             "exist_ok=True to leave it as is and don't error.")
        data = self.read_bytes()
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        tmp = f"{path}.part"
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
        return open(path)  # noqa: SIM115

    def delete(self) -> None:
        """Delete the file upstream (online only)."""
        from . import writes

        writes.delete_files(self.run, [self])

    def __repr__(self) -> str:
        return f"<File {self.name} ({self._attrs.get('mimetype')}) {self.size}B>"


def file_attrs(row: RunFile) -> dict[str, Any]:
    """The GraphQL ``File`` node of a stored file."""
    return store_files.file_node(row)


class Files(Paginator[File]):
    """A run's files (all, ``names``, or a SQL LIKE ``pattern``), ordered by name."""

    def __init__(self, run: Run, names: list[str] | None = None, pattern: str | None = None,
                 per_page: int = 50) -> None:
        super().__init__(per_page)
        self.run = run
        self.names = list(names or [])
        self.pattern = pattern

    def _fetch(self, offset: int, limit: int) -> list[File]:
        api = self.run._api
        api._project_pk(self.run.entity, self.run.project)
        with session_scope(api._engine, f"listing files of {'/'.join(self.run.path)}") as s:
            rows = store_files.list_files(s, self.run._pk, names=self.names or None,
                                          pattern=self.pattern, limit=limit, offset=offset)
        return [File(self.run, file_attrs(r)) for r in rows]

    def _count(self) -> int:
        with session_scope(self.run._api._engine) as s:
            return store_files.count_files(s, self.run._pk, names=self.names or None,
                                           pattern=self.pattern)

    def __repr__(self) -> str:
        return f"<Files {'/'.join(self.run.path)} ({len(self)})>"
