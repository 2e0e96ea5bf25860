"""The IVR node's own settings: what a PBX machine needs to answer calls, and nothing of the backend's
(no database URL, no identity keys). Same DIDEHBAN_ prefix and variable names as the backend's.

Where they are read from: the environment first, then an env file. Commands run by hand read `.env` in
the working directory (as `make run` writes it); an AGI script started by Asterisk has no working
directory of ours, so it reads a fixed path (DIDEHBAN_ENV_FILE, else /etc/didehban/ivr.env).

Plain Python, not pydantic: a process-per-call AGI script reads these for every call, and pydantic's
import alone cost more than the whole call may (issue 13). Names are matched in any case, as
pydantic-settings matched them; a value of the wrong type is refused at start-up naming its variable
(InvalidSetting), and the checks the backend shares live in domain.node_settings.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from domain.node_settings import check_prefix, node_problem

PROJECT_ROOT = Path(__file__).resolve().parents[1]
AGI_ENV_FILE = "/etc/didehban/ivr.env"


class NodeNotConfigured(RuntimeError):
    """A setting this node cannot run without (its tracking-code prefix, its spool key)."""


class InvalidSetting(NodeNotConfigured, ValueError):
    """A setting whose value this node cannot use (a port that is not a number, a bad prefix)."""


ENV_PREFIX = "didehban_"


def read_env_file(path: Path) -> dict[str, str]:
    """`NAME=value` lines (optionally `export NAME=value`, values optionally quoted, `#` comments),
    names lower-cased. A missing file is no settings at all."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return {}
    values = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[name.strip().lower()] = value
    return values


# What a value of each field type must be, said as InvalidSetting says it.
_EXPECTED = {
    "str": "is not text",
    "int": "is not a whole number",
    "float": "is not a number",
    "Path": "is not a path",
}


def _coerce(name: str, kind: str, value: Any) -> Any:
    """A field's value as its declared type (env values are strings), or InvalidSetting."""
    if kind not in _EXPECTED:
        raise TypeError(f"IvrSettings.{name}: no reader for the type {kind!r}")  # a field of a new type
    try:
        if kind == "str" and isinstance(value, str):
            return value
        if kind == "int" and not (isinstance(value, float) and not value.is_integer()):
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "Path":
            return Path(value)
    except (TypeError, ValueError):
        pass
    raise InvalidSetting(f"DIDEHBAN_{name.upper()}: {value!r} {_EXPECTED[kind]}")


class IvrSettings:
    """Every DIDEHBAN_ setting of the node: the class attributes below, annotated with their type, are
    the defaults. Not a dataclass: generating its methods cost a process-per-call script more than
    the whole reader (issue 13)."""

    def __init__(self, **values: Any) -> None:
        fields = _fields()
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise TypeError(f"IvrSettings has no setting {', '.join(unknown)}")
        for name, kind in fields.items():
            setattr(
                self,
                name,
                _coerce(name, kind, values[name] if name in values else getattr(IvrSettings, name)),
            )
        if self.node_prefix:  # empty: not set, which require_node refuses
            try:
                check_prefix(self.node_prefix)
            except ValueError as exc:
                raise InvalidSetting(f"DIDEHBAN_NODE_PREFIX: {exc}") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IvrSettings) and vars(self) == vars(other)

    @classmethod
    def from_env(cls, env_file: str | None = ".env") -> IvrSettings:
        """The environment first, then the env file, each DIDEHBAN_<field name>."""
        found = read_env_file(Path(env_file)) if env_file else {}
        found.update((name.lower(), value) for name, value in os.environ.items())
        return cls(**{name: found[ENV_PREFIX + name] for name in _fields() if ENV_PREFIX + name in found})

    def model_copy(self, *, update: dict[str, Any] | None = None) -> IvrSettings:
        """A copy with some settings changed (checked again), as pydantic's model_copy."""
        return IvrSettings(**{**vars(self), **(update or {})})

    # --- the backend over HTTP ------------------------------------------------------------------
    backend_url: str = "http://127.0.0.1:8000"
    backend_timeout_seconds: float = 3.0
    # Bearer token this node presents to the backend.
    ivr_token: str = ""
    # Spooled cases go to the backend behind the calls (ivr.delivery): batches of this many, this
    # many requests at once, a pause from ..._backoff_seconds doubling up to ..._backoff_max_seconds
    # while the backend is down or refuses this node.
    delivery_batch_size: int = 50
    delivery_concurrency: int = 2
    delivery_timeout_seconds: float = 15.0
    delivery_backoff_seconds: float = 1.0
    delivery_backoff_max_seconds: float = 60.0

    # --- this node --------------------------------------------------------------------------------
    # Two digits that start every tracking code this node issues (every phone case's code). No
    # default: two nodes sharing one prefix could issue the same code (require_node refuses to start).
    node_prefix: str = ""
    # Fernet key encrypting the spool's payloads (national IDs, phone numbers) on this node's disk.
    spool_key: str = ""
    fastagi_host: str = "127.0.0.1"
    fastagi_port: int = 4573
    spool_dir: Path = PROJECT_ROOT / "var" / "spool"
    services_dir: Path = PROJECT_ROOT / "config" / "services"
    prompts_dir: Path = PROJECT_ROOT / "prompts"
    # Where recordings are, as this host sees them, and as Asterisk sees them (they differ when
    # Asterisk runs in a chroot or on another machine sharing the folder).
    recordings_dir: Path = PROJECT_ROOT / "var" / "recordings"
    pbx_recordings_dir: str = ""
    sounds_dir_on_pbx: str = ""

    # --- AMI --------------------------------------------------------------------------------------
    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_username: str = "didehban"
    ami_secret: str = ""

    # --- the PBX root (Debian sid chroot) for development and CI -----------------------------------
    pbx_root: Path = PROJECT_ROOT / "var" / "pbx" / "root"
    pbx_runtime: Path = PROJECT_ROOT / "var" / "pbx" / "srv"
    sip_host: str = "127.0.0.1"
    sip_port: int = 5070
    rtp_start: int = 20000
    rtp_end: int = 20999
    # The carrier's signalling address that delivers the short codes (production trunk).
    carrier_host: str = "127.0.0.2"
    # Prefix of every Asterisk UNIQUEID on this server (keeps call ids unique across servers).
    pbx_system_name: str = "didehban-pbx1"
    # CPU priorities (nice values) where the parts share a machine (ivr.cpu_priority, issue 13): the
    # FastAGI server first (it needs little, but at once: a late AGI command loses the caller's
    # keys; a value below 0 needs root or CAP_SYS_NICE), Asterisk at the normal priority.
    fastagi_nice: int = -5
    pbx_nice: int = 0
    debian_mirror: str = "http://deb.debian.org/debian"

    def pbx_recording_path(self) -> str:
        return self.pbx_recordings_dir or str(self.recordings_dir)

    @property
    def fallback_dir(self) -> Path:
        """Where the dial plan records messages while no FastAGI server answers."""
        return self.pbx_runtime / "spool" / "fallback"

    def require_node(self) -> IvrSettings:
        """Refuse to answer calls without this node's own prefix and spool key."""
        problem = node_problem(self.node_prefix, self.spool_key)
        if problem:
            raise NodeNotConfigured(problem)
        return self


def _fields() -> dict[str, str]:
    """Each setting's name and type (as written: annotations are not evaluated)."""
    return IvrSettings.__annotations__


def env_file(default: str = ".env") -> str:
    return os.environ.get("DIDEHBAN_ENV_FILE") or default


@lru_cache
def get_settings() -> IvrSettings:
    """The settings of a command run by hand (`didehban fastagi`, `didehban ami`, ...)."""
    return IvrSettings.from_env(env_file())


def agi_settings() -> IvrSettings:
    """The settings of an AGI script started by Asterisk: a fixed file, never the working directory.
    Every later reader in the process (the prompts' paths read get_settings) reads that file too."""
    os.environ.setdefault("DIDEHBAN_ENV_FILE", AGI_ENV_FILE)
    get_settings.cache_clear()
    return get_settings()
