"""Entity/project/run and artifact-name parsing, exactly as ``wandb.Api`` parses them.

Three families (``reference/wandb-protocol.md`` §3.1):

- project paths (:func:`parse_project_path`): ``None`` -> the defaults (project
  ``"uncategorized"`` when none is configured), ``"proj"``, ``"entity/proj"`` (split on the
  first ``/``);
- run and sweep paths (:func:`parse_path`): ``entity/project/runs/id``, ``entity/project/id``,
  ``entity/project:id``, ``project/id``, ``project:id``, ``id``; ``/runs/`` and ``/sweeps/``
  segments are dropped first and surrounding slashes/spaces stripped;
- artifact paths (:func:`parse_artifact_path`): the alias is split off at the first ``:``,
  then 1-3 ``/``-parts are ``name``, ``project/name``, ``prefix/project/name``.

Defaults come from :class:`PathDefaults` (``Settings.entity``/``Settings.project``, i.e.
``WANDB_ENTITY``/``WANDB_PROJECT``). Errors are ``ValueError``, as upstream.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DEFAULT_PROJECT",
    "ArtifactPath",
    "PathDefaults",
    "parse_artifact_path",
    "parse_path",
    "parse_project_path",
    "split_artifact_name",
    "sync_command",
]

DEFAULT_PROJECT = "uncategorized"
"""The project wandb falls back to when none is configured."""


@dataclass(frozen=True)
class PathDefaults:
    """Default entity and project for paths that leave them out.

    Attributes:
        entity: ``WANDB_ENTITY`` (or the viewer's default entity), None when unknown.
        project: ``WANDB_PROJECT``, None when unset.
    """

    entity: str | None = None
    project: str | None = None


def parse_project_path(path: str | None, defaults: PathDefaults = PathDefaults()
                       ) -> tuple[str | None, str]:
    """``(entity, project)`` of a project path, as ``Api._parse_project_path``.

    ``None`` gives the default entity and the default project (or ``"uncategorized"``); a
    path without ``/`` is a project of the default entity; otherwise the path is split on the
    first ``/`` (so ``"e/p/x"`` gives project ``"p/x"``, as upstream).
    """
    default_entity = defaults.entity or None
    if path is None:
        return default_entity, defaults.project or DEFAULT_PROJECT
    entity, sep, project = path.partition("/")
    if not sep:
        return default_entity, path
    return entity, project


def parse_path(path: str, defaults: PathDefaults = PathDefaults()) -> tuple[str, str, str]:
    """``(entity, project, id)`` of a run or sweep path, as ``Api._parse_path``.

    Raises:
        ValueError: the entity, the project or the id ends up empty.
    """
    entity: str | None = defaults.entity
    project: str | None = defaults.project
    ident: str | None = None
    text = path.replace("/runs/", "/").replace("/sweeps/", "/").strip("/ ")
    parts = text.split("/")
    if len(parts) == 4 and parts[2] == "runs":  # unreachable after the replace; kept as upstream
        entity, project, ident = parts[0], parts[1], parts[3]
    elif len(parts) == 3:
        entity, project, ident = parts
    elif len(parts) == 2:
        if ":" in parts[1]:
            entity = parts[0]
            project, ident = parts[1].split(":", 1)
        else:
            project, ident = parts
    elif len(parts) == 1 and parts[0]:
        if ":" in parts[0]:
            project, ident = parts[0].split(":", 1)
        else:
            ident = parts[0]
    entity = entity and entity.strip()
    project = project and project.strip()
    ident = ident and ident.strip()
    if not entity:
        raise ValueError(f"Invalid path: {path!r} (missing entity)")
    if not project:
        raise ValueError(f"Invalid path: {path!r} (missing project)")
    if not ident:
        raise ValueError(f"Invalid path: {path!r}")
    return entity, project, ident


@dataclass(frozen=True)
class ArtifactPath:
    """A parsed artifact path: ``prefix/project/name[:alias]`` (``name`` keeps the alias)."""

    name: str
    project: str | None = None
    prefix: str | None = None

    @classmethod
    def from_str(cls, path: str) -> ArtifactPath:
        """Parse like ``wandb.sdk.artifacts._validators.ArtifactPath.from_str``.

        Raises:
            ValueError: more than three ``/``-separated parts before the alias.
        """
        collection_path, sep, alias = path.partition(":")
        parts = collection_path.split("/")
        prefix = project = None
        if len(parts) == 1:
            name = parts[0]
        elif len(parts) == 2:
            project, name = parts
        elif len(parts) == 3:
            prefix, project, name = parts
        else:
            raise ValueError(f"Invalid artifact path: {path!r}")
        return cls(prefix=prefix, project=project, name=f"{name}{sep}{alias}")

    def with_defaults(self, *, prefix: str | None = None, project: str | None = None
                      ) -> ArtifactPath:
        """A copy with missing (empty) parts set to the given defaults."""
        return ArtifactPath(name=self.name, project=self.project or project,
                            prefix=self.prefix or prefix)

    def to_str(self) -> str:
        """``prefix/project/name`` without the empty parts."""
        return "/".join(p for p in (self.prefix, self.project, self.name) if p)


def parse_artifact_path(path: str, defaults: PathDefaults = PathDefaults()
                        ) -> tuple[str | None, str, str]:
    """``(entity, project, "name[:alias]")`` of an artifact path, as
    ``Api._parse_artifact_path`` (project default ``"uncategorized"``).

    Raises:
        ValueError: more than three ``/``-separated parts before the alias.
    """
    parsed = ArtifactPath.from_str(path).with_defaults(
        prefix=defaults.entity, project=defaults.project or DEFAULT_PROJECT)
    assert parsed.project is not None
    return parsed.prefix, parsed.project, parsed.name


def split_artifact_name(name: str) -> tuple[str, str | None]:
    """``("collection", "alias")`` of ``"collection:alias"``; alias None when absent."""
    collection, sep, alias = name.partition(":")
    return collection, (alias if sep else None)


def sync_command(entity: str | None, project: str) -> str:
    """The command that mirrors a project, for error messages."""
    return f"wandb-mirror sync {entity or 'ENTITY'}/{project}"
