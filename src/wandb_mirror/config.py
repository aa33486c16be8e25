"""Settings: a TOML file, ``WANDB_MIRROR_*`` overrides, and W&B's own environment variables.

Library code never reads ``os.environ`` itself: the CLI calls :func:`load_settings` with the
environment and passes the resulting :class:`Settings` down.
"""
from __future__ import annotations

import os
import stat
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import platformdirs

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MAX_AGE", "Settings", "default_db_path", "load_settings",
           "prepare_db_location"]

DEFAULT_BASE_URL = "https://api.wandb.ai"
DEFAULT_MAX_AGE = 15 * 60.0
APP_NAME = "wandb-mirror"


def default_db_path() -> Path:
    """``<user data dir>/wandb-mirror/store.db``."""
    return Path(platformdirs.user_data_dir(APP_NAME)) / "store.db"


def prepare_db_location(db: str) -> str:
    """Create the default store's directory on first use (a path the user named is left as
    given, so a typo there is an error, not a new directory); returns ``db``."""
    if db == str(default_db_path()):
        default_db_path().parent.mkdir(parents=True, exist_ok=True)
    return db


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Every configurable value, with its default. See ``config.example.toml``."""

    # [store]
    db: str = field(default_factory=lambda: str(default_db_path()))
    # [upstream]
    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = None  # from env or netrc only, never written to files by this tool
    entity: str | None = None
    project: str | None = None
    timeout: float = 30.0
    max_retries: int = 8
    max_in_flight: int = 4
    # [sync]
    projects: tuple[str, ...] = ()
    interval: float = 900.0
    pull_history: bool = True
    pull_events: bool = True
    pull_files: bool = True
    pull_sweeps: bool = True
    pull_reports: bool = True
    pull_artifacts: bool = True
    file_patterns: tuple[str, ...] = ()
    full_reconcile_interval: float = 86400.0
    page_size: int = 50
    history_page_size: int = 10_000
    # [api]
    max_age: float | None = DEFAULT_MAX_AGE
    offline: bool = False
    # [serve]
    serve_host: str = "127.0.0.1"
    serve_port: int = 8765
    serve_api_keys: tuple[str, ...] = ()
    serve_writable: bool = False
    serve_workers: int = 1


# (section, key) in the TOML file -> Settings field
_TOML_KEYS: dict[tuple[str, str], str] = {
    ("store", "db"): "db",
    ("upstream", "base_url"): "base_url",
    ("upstream", "entity"): "entity",
    ("upstream", "project"): "project",
    ("upstream", "timeout"): "timeout",
    ("upstream", "max_retries"): "max_retries",
    ("upstream", "max_in_flight"): "max_in_flight",
    ("upstream", "api_key"): "api_key",
    ("sync", "projects"): "projects",
    ("sync", "interval"): "interval",
    ("sync", "history"): "pull_history",
    ("sync", "events"): "pull_events",
    ("sync", "files"): "pull_files",
    ("sync", "sweeps"): "pull_sweeps",
    ("sync", "reports"): "pull_reports",
    ("sync", "artifacts"): "pull_artifacts",
    ("sync", "file_patterns"): "file_patterns",
    ("sync", "full_reconcile_interval"): "full_reconcile_interval",
    ("sync", "page_size"): "page_size",
    ("sync", "history_page_size"): "history_page_size",
    ("api", "max_age"): "max_age",
    ("api", "offline"): "offline",
    ("serve", "host"): "serve_host",
    ("serve", "port"): "serve_port",
    ("serve", "api_keys"): "serve_api_keys",
    ("serve", "writable"): "serve_writable",
    ("serve", "workers"): "serve_workers",
}

_FIELD_TYPES = {f.name: f.type for f in fields(Settings)}


def _coerce(name: str, value: Any, where: str) -> Any:
    kind = _FIELD_TYPES[name]
    try:
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
                return True
            if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind == "float | None":
            if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "never")):
                return None
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind == "tuple[str, ...]":
            if isinstance(value, str):
                return tuple(v.strip() for v in value.split(",") if v.strip())
            if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
                return tuple(value)
            raise ValueError
        if kind in ("str", "str | None"):
            if not isinstance(value, str):
                raise ValueError
            return value
    except (TypeError, ValueError):
        pass
    else:
        return value
    expected = {"bool": "a boolean (true/false)", "int": "an integer", "float": "a number",
                "float | None": "a number of seconds or \"never\"",
                "tuple[str, ...]": "a list of strings", "str": "a string",
                "str | None": "a string"}.get(kind, kind)
    raise ConfigError(f"{where}: expected {expected}, got {value!r}")


def _netrc_key(base_url: str, env: Mapping[str, str]) -> str | None:
    import netrc
    from urllib.parse import urlparse

    path = env.get("NETRC") or str(Path.home() / ".netrc")
    if not Path(path).is_file():
        return None
    try:
        auth = netrc.netrc(path).authenticators(urlparse(base_url).netloc)
    except (netrc.NetrcParseError, OSError):
        return None
    return auth[2] if auth else None


def load_settings(
    config_path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build Settings from, lowest first: defaults, the config file, environment, overrides.

    The config file is ``config_path``, else ``$WANDB_MIRROR_CONFIG``, else
    ``<user config dir>/wandb-mirror/config.toml`` if it exists. Environment:
    ``WANDB_MIRROR_<FIELD>`` (e.g. ``WANDB_MIRROR_DB``, ``WANDB_MIRROR_MAX_AGE``), and W&B's
    ``WANDB_BASE_URL``, ``WANDB_API_KEY``, ``WANDB_ENTITY``, ``WANDB_PROJECT``. API key:
    override > ``WANDB_API_KEY`` > netrc entry of the base URL's host > config file.

    Raises:
        ConfigError: the file cannot be read or a value has the wrong type.
    """
    env = dict(os.environ if env is None else env)
    values: dict[str, Any] = {}
    path = config_path or env.get("WANDB_MIRROR_CONFIG")
    if path is None and default_config_path().is_file():
        path = default_config_path()
    if path is not None:
        p = Path(path).expanduser()
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {p} does not exist") from exc
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"config file {p} cannot be read: {exc}") from exc
        for section, table in data.items():
            if not isinstance(table, dict):
                raise ConfigError(f"{p}: [{section}] must be a table")
            for key, value in table.items():
                name = _TOML_KEYS.get((section, key))
                if name is None:
                    valid = ", ".join(f"{s}.{k}" for s, k in _TOML_KEYS)
                    raise ConfigError(f"{p}: unknown key {section}.{key}; valid keys: {valid}")
                values[name] = _coerce(name, value, f"{p}: {section}.{key}")
        if "api_key" in values and os.name == "posix":
            mode = p.stat().st_mode
            if mode & (stat.S_IRGRP | stat.S_IROTH):
                warnings.warn(f"{p} holds an API key and is readable by other users; "
                              f"run: chmod 600 {p}", stacklevel=2)
    file_key = values.pop("api_key", None)  # lowest precedence: after netrc
    for name in _FIELD_TYPES:
        env_name = f"WANDB_MIRROR_{name.upper()}"
        if env_name in env and name != "api_key":
            values[name] = _coerce(name, env[env_name], f"environment {env_name}")
    for env_name, name in (("WANDB_BASE_URL", "base_url"), ("WANDB_API_KEY", "api_key"),
                           ("WANDB_ENTITY", "entity"), ("WANDB_PROJECT", "project")):
        if env.get(env_name):
            values[name] = env[env_name]
    for name, value in overrides.items():
        if name not in _FIELD_TYPES:
            raise ConfigError(f"unknown setting {name!r}")
        if value is not None:
            values[name] = _coerce(name, value, f"option {name}")
    values.setdefault("base_url", DEFAULT_BASE_URL)
    values["base_url"] = str(values["base_url"]).rstrip("/")
    if not values["base_url"].startswith(("http://", "https://")):
        raise ConfigError(f"base URL {values['base_url']!r} must start with http:// or https:// "
                          "(set it with --base-url, WANDB_BASE_URL or [upstream] base_url)")
    if not values.get("api_key"):
        values["api_key"] = _netrc_key(values["base_url"], env) or file_key
    return Settings(**values)
