"""The IVR node's own settings: what a PBX machine needs to answer calls, and nothing of the backend's
(no database URL, no identity keys). Same DIDEHBAN_ prefix and variable names as the backend's.

Where they are read from: the environment first, then an env file. Commands run by hand read `.env` in
the working directory (as `make run` writes it); an AGI script started by Asterisk has no working
directory of ours, so it reads a fixed path (DIDEHBAN_ENV_FILE, else /etc/didehban/ivr.env).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]
AGI_ENV_FILE = "/etc/didehban/ivr.env"


class NodeNotConfigured(RuntimeError):
    """A setting this node cannot run without (its tracking-code prefix, its spool key)."""


class IvrSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DIDEHBAN_", env_file=".env", extra="ignore")

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
    node_prefix: str = Field(default="", pattern=r"^([1-9][0-9])?$")
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
    debian_mirror: str = "http://deb.debian.org/debian"

    def pbx_recording_path(self) -> str:
        return self.pbx_recordings_dir or str(self.recordings_dir)

    @property
    def fallback_dir(self) -> Path:
        """Where the dial plan records messages while no FastAGI server answers."""
        return self.pbx_runtime / "spool" / "fallback"

    def require_node(self) -> IvrSettings:
        """Refuse to answer calls without this node's own prefix and spool key."""
        if not self.node_prefix:
            raise NodeNotConfigured(
                "DIDEHBAN_NODE_PREFIX is not set: give every IVR node its own two-digit prefix "
                "(for example DIDEHBAN_NODE_PREFIX=21), so codes issued offline never collide"
            )
        if not self.spool_key:
            raise NodeNotConfigured("DIDEHBAN_SPOOL_KEY is not set (`didehban keys` prints one)")
        return self


def env_file(default: str = ".env") -> str:
    return os.environ.get("DIDEHBAN_ENV_FILE") or default


@lru_cache
def get_settings() -> IvrSettings:
    """The settings of a command run by hand (`didehban fastagi`, `didehban ami`, ...)."""
    return IvrSettings(_env_file=env_file())


def agi_settings() -> IvrSettings:
    """The settings of an AGI script started by Asterisk: a fixed file, never the working directory."""
    return IvrSettings(_env_file=env_file(AGI_ENV_FILE))
