"""Building blocks shared by the API objects: ``Attrs``, the paginator, URLs, write errors."""
from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from ..errors import OfflineError, RemoteError

if TYPE_CHECKING:
    from .api import Api

__all__ = ["Attrs", "Paginator", "WriteUnsupportedError", "app_url", "nan_equal"]

T = TypeVar("T")


def app_url(base_url: str) -> str:
    """The W&B UI URL of an API URL, without a trailing slash (``wandb.util.api_to_app_url``).

    ``https://api.wandb.ai`` -> ``https://wandb.ai``; ``https://api.x.com`` ->
    ``https://app.x.com``; anything else (a local server) is its own UI.
    """
    if "://api.wandb.test" in base_url:
        return base_url.replace("://api.", "://app.").strip("/")
    if "://api.wandb." in base_url:
        return base_url.replace("://api.", "://").strip("/")
    if "://api." in base_url:
        return base_url.replace("://api.", "://app.").strip("/")
    return base_url.rstrip("/")


def _snake_to_camel(name: str) -> str:
    camel = "".join(part.title() for part in name.split("_"))
    return camel[:1].lower() + camel[1:]


class Attrs:
    """An object whose unknown snake_case attributes read its camelCase GraphQL fields.

    As ``wandb.apis.attrs.Attrs``: ``obj.history_line_count`` is ``obj._attrs["historyLineCount"]``.
    """

    def __init__(self, attrs: Mapping[str, Any]) -> None:
        self._attrs = dict(attrs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_attrs":
            raise AttributeError(name)
        attrs = self.__dict__.get("_attrs", {})
        key = _snake_to_camel(name)
        if key == "user":
            raise AttributeError(name)
        if key in attrs:
            return attrs[key]
        if name in attrs:
            return attrs[name]
        raise AttributeError(f"{type(self).__name__} object has no attribute {name!r}")


class Paginator(Generic[T]):
    """A lazily loaded, indexable sequence fetched ``per_page`` items at a time.

    Subclasses implement :meth:`_fetch` (items at an offset) and :meth:`_count`. Loaded
    objects are kept in ``objects``, as the upstream paginators do.
    """

    def __init__(self, per_page: int = 50) -> None:
        if isinstance(per_page, bool) or not isinstance(per_page, int) or per_page < 1:
            raise ValueError(f"per_page must be a positive integer, not {per_page!r}")
        self.per_page = per_page
        self.objects: list[T] = []
        self._done = False
        self._length: int | None = None

    def _fetch(self, offset: int, limit: int) -> list[T]:
        raise NotImplementedError

    def _count(self) -> int | None:
        return None

    @property
    def more(self) -> bool:
        """Whether another page may exist."""
        return not self._done

    def _load_page(self) -> bool:
        if self._done:
            return False
        items = self._fetch(len(self.objects), self.per_page)
        self.objects.extend(items)
        if len(items) < self.per_page:
            self._done = True
        return bool(items)

    def _load_all(self) -> None:
        while self._load_page():
            pass

    def __iter__(self) -> Iterator[T]:
        index = 0
        while True:
            if index < len(self.objects):
                yield self.objects[index]
                index += 1
            elif not self._load_page():
                return

    def __len__(self) -> int:
        if self._length is None:
            count = self._count()
            if count is None:
                self._load_all()
                count = len(self.objects)
            self._length = count
        return self._length

    @property
    def length(self) -> int | None:
        """Number of items (None when the collection cannot count them upstream either)."""
        return len(self)

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            stop = index.stop
            if stop is None or stop < 0 or (index.start is not None and index.start < 0):
                self._load_all()
            else:
                while len(self.objects) < stop and self._load_page():
                    pass
            return self.objects[index]
        if index < 0:
            self._load_all()
        else:
            while len(self.objects) <= index and self._load_page():
                pass
        return self.objects[index]


class WriteUnsupportedError(RemoteError):
    """The server does not implement the mutation a write method needs."""


def offline_write_error(what: str, api: Api) -> OfflineError:
    """The error a write method raises when the Api is offline."""
    return OfflineError(
        f"{what} changes data on the W&B server and needs a connection, but this Api is "
        f"offline; create it with wandb_mirror.Api(offline=False) (and unset "
        f"WANDB_MIRROR_OFFLINE) with {api._settings.base_url} reachable")


def nan_equal(a: Any, b: Any) -> bool:
    """Deep equality where NaN equals NaN (for comparing run values)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(nan_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(nan_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and bool(a == b)
