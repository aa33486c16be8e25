"""Path parsing: examples, and property tests against the real wandb client's own parsers.

The oracle is ``wandb.apis.public.api.Api._parse_path`` / ``_parse_project_path`` and
``wandb.sdk.artifacts._validators.ArtifactPath`` called on a stand-in ``self`` (no network).
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wandb_mirror.paths import (
    ArtifactPath,
    PathDefaults,
    parse_artifact_path,
    parse_path,
    parse_project_path,
    split_artifact_name,
    sync_command,
)

wandb_api = pytest.importorskip("wandb.apis.public.api")
wandb_validators = pytest.importorskip("wandb.sdk.artifacts._validators")


def _upstream(defaults: PathDefaults) -> SimpleNamespace:
    return SimpleNamespace(settings={"entity": defaults.entity, "project": defaults.project},
                           default_entity=None)


def _call(fn, *args):  # type: ignore[no-untyped-def]
    try:
        return ("ok", fn(*args))
    except ValueError as exc:
        return ("error", type(exc).__name__)


@pytest.mark.parametrize("path, expected", [
    ("e/p/runs/abc", ("e", "p", "abc")),
    ("e/p/abc", ("e", "p", "abc")),
    ("e/p:abc", ("e", "p", "abc")),
    ("p/abc", ("E", "p", "abc")),
    ("p:abc", ("E", "p", "abc")),
    ("abc", ("E", "P", "abc")),
    ("/e/p/runs/abc/", ("e", "p", "abc")),
    ("e/p/sweeps/sw1", ("e", "p", "sw1")),
    (" e / p / abc ", ("e", "p", "abc")),
])
def test_parse_path_forms(path: str, expected: tuple[str, str, str]) -> None:
    assert parse_path(path, PathDefaults("E", "P")) == expected


@pytest.mark.parametrize("path, message", [
    ("", "Invalid path"),
    ("abc", "missing entity"),
    ("p/abc", "missing entity"),
])
def test_parse_path_errors(path: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_path(path, PathDefaults(None, None))


def test_parse_path_missing_project() -> None:
    with pytest.raises(ValueError, match="missing project"):
        parse_path("abc", PathDefaults("E", None))


def test_project_path_defaults() -> None:
    assert parse_project_path(None, PathDefaults("E", None)) == ("E", "uncategorized")
    assert parse_project_path(None, PathDefaults("E", "P")) == ("E", "P")
    assert parse_project_path("p", PathDefaults("E", "P")) == ("E", "p")
    assert parse_project_path("e/p/x", PathDefaults()) == ("e", "p/x")


def test_artifact_paths() -> None:
    d = PathDefaults("E", "P")
    assert parse_artifact_path("ds:v3", d) == ("E", "P", "ds:v3")
    assert parse_artifact_path("proj/ds:latest", d) == ("E", "proj", "ds:latest")
    assert parse_artifact_path("ent/proj/ds:best", d) == ("ent", "proj", "ds:best")
    assert parse_artifact_path("ent/proj/ds:a/b", d) == ("ent", "proj", "ds:a/b")
    assert parse_artifact_path("ds", PathDefaults("E", None)) == ("E", "uncategorized", "ds")
    with pytest.raises(ValueError):
        parse_artifact_path("a/b/c/d:v0", d)
    assert split_artifact_name("ds:v1") == ("ds", "v1")
    assert split_artifact_name("ds") == ("ds", None)
    assert ArtifactPath.from_str("e/p/n:v0").to_str() == "e/p/n:v0"
    assert sync_command("e", "p") == "wandb-mirror sync e/p"


# ------------------------------------------------------------------ property tests vs wandb

segment = st.text(alphabet="ab:/ _-1.", min_size=0, max_size=12)
name = st.sampled_from(["", "e", "p", "abc", "runs", "sweeps", " x "])
paths = st.one_of(segment, st.lists(st.one_of(name, segment), min_size=1, max_size=5).map("/".join))
defaults = st.builds(PathDefaults, st.sampled_from([None, "", "E", "ent"]),
                     st.sampled_from([None, "", "P", "proj"]))


@settings(max_examples=200, deadline=None)
@given(paths, defaults)
def test_parse_path_matches_wandb(path: str, d: PathDefaults) -> None:
    ours = _call(parse_path, path, d)
    theirs = _call(wandb_api.Api._parse_path, _upstream(d), path)
    assert ours == theirs


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.none(), paths), defaults)
def test_parse_project_path_matches_wandb(path: str | None, d: PathDefaults) -> None:
    ours = parse_project_path(path, d)
    theirs = wandb_api.Api._parse_project_path(_upstream(d), path)
    assert tuple(ours) == tuple(theirs)


@settings(max_examples=150, deadline=None)
@given(paths, defaults)
def test_artifact_path_matches_wandb(path: str, d: PathDefaults) -> None:
    def theirs(p: str) -> tuple[str | None, str | None, str]:
        parsed = wandb_validators.ArtifactPath.from_str(p).with_defaults(
            prefix=d.entity, project=d.project or "uncategorized")
        return parsed.prefix, parsed.project, parsed.name

    assert _call(parse_artifact_path, path, d) == _call(theirs, path)
