"""The one settings object. Everything is configured from the environment (prefix DIDEHBAN_),
optionally through a `.env` file in the working directory that `make run` writes for the demo."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from domain import node_settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DIDEHBAN_", env_file=".env", extra="ignore")

    # --- storage -----------------------------------------------------------------------------
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'var' / 'didehban.sqlite3'}"
    # SQLite's fsync at commit. FULL: a case the backend acknowledged survives a power loss too (the
    # IVR node deletes its spooled copy on that acknowledgement). NORMAL (with WAL) saves an fsync a
    # commit and never corrupts the file, but a power loss may undo the last acknowledged cases.
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "FULL"
    data_dir: Path = PROJECT_ROOT / "var"
    services_dir: Path = PROJECT_ROOT / "config" / "services"

    # --- secrets (never in the repo: `make run` generates them into .env) ----------------------
    # Fernet key (urlsafe base64, 32 bytes) encrypting national IDs and phone numbers at rest.
    secret_key: str = ""
    # Key of the keyed hash (HMAC) under which identities are looked up.
    lookup_key: str = ""
    # Bearer token the IVR presents to the backend.
    ivr_token: str = ""
    # Signs staff session tokens.
    session_key: str = ""

    # --- the backend over HTTP -------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 8000
    timezone: str = "Asia/Tehran"
    # Largest request body accepted, in bytes (Content-Length and streamed bodies alike); more is 413.
    # 256 KiB holds the longest text field (20,000 characters) even with every character JSON-escaped.
    max_request_bytes: int = Field(default=256 * 1024, ge=1024)
    # The console's forms with files (attachments: up to 10 MB each): the whole request, in bytes.
    max_upload_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    # A case's received_at (the time of a call delivered late from a spool) is accepted from this many
    # days ago up to now plus the clock skew allowed between an IVR node and the backend; else 422.
    received_at_max_age_days: float = Field(default=7.0, gt=0)
    received_at_max_skew_seconds: float = Field(default=300.0, ge=0)

    # The address citizens reach this server at, as written in SMS links (the evidence link, R5).
    public_url: str = "http://127.0.0.1:8000"

    # --- the IVR -----------------------------------------------------------------------------
    backend_url: str = "http://127.0.0.1:8000"
    backend_timeout_seconds: float = 3.0
    # Two digits that start every tracking code this node issues while the backend is down.
    node_prefix: str = "21"
    # Prefix of tracking codes the backend issues itself.
    backend_prefix: str = "10"
    # The prefixes of every IVR node allowed to issue codes offline, as the backend checks them
    # ("21,22" or JSON). Unset: this host's own node_prefix. The backend's prefix never counts.
    node_prefixes: Annotated[list[str], NoDecode] = Field(default_factory=list)
    fastagi_host: str = "127.0.0.1"
    fastagi_port: int = 4573
    spool_dir: Path = PROJECT_ROOT / "var" / "spool"
    prompts_dir: Path = PROJECT_ROOT / "prompts"
    # Where recordings are, as this host sees them, and as Asterisk sees them (they differ when
    # Asterisk runs in a chroot or on another machine sharing the folder).
    recordings_dir: Path = PROJECT_ROOT / "var" / "recordings"
    pbx_recordings_dir: str = ""
    sounds_dir_on_pbx: str = ""

    # --- AMI --------------------------------------------------------------------------------
    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_username: str = "didehban"
    ami_secret: str = ""

    # --- the PBX root (Debian sid chroot) for development and CI ------------------------------
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

    # --- SMS --------------------------------------------------------------------------------
    sms_sender: str = "file"  # "file" or "http"
    sms_file: Path = PROJECT_ROOT / "var" / "sms.log"
    sms_gateway_url: str = ""
    sms_gateway_api_key: str = ""
    sms_gateway_timeout_seconds: float = 5.0
    # The sender line (the short or long number messages come from), as the gateway expects it.
    sms_line_number: str = ""
    # Shared secret the gateway presents when it forwards a citizen's reply (satisfaction ratings).
    sms_inbound_secret: str = ""

    # --- staff passwords: argon2id cost (RFC 9106's second recommendation by default) -------------
    # Changing these rehashes each password at its owner's next login.
    password_time_cost: int = Field(default=3, ge=1)
    password_memory_kib: int = Field(default=65536, ge=1024)
    password_parallelism: int = Field(default=4, ge=1)

    # --- rate limits (the `limits` library) ----------------------------------------------------
    # Where the counters live: "memory://" holds them in this process (one worker on one machine);
    # with several workers or machines use a shared store, e.g. "redis://localhost:6379/0".
    rate_limit_storage: str = "memory://"
    # Limits in `limits` notation; ";" separates several windows, all enforced.
    # Status look-ups and escalations per calling number (the IVR sends it with every request).
    rate_limit_per_caller: str = "10/minute;60/day"
    # Status look-ups and escalations per client address. Every call reaches the backend from the
    # IVR node's one FastAGI address, so this is the node's whole budget: keep it high.
    rate_limit_per_address: str = "600/minute"
    # Login attempts per client address, whatever their outcome.
    login_attempts_per_address: str = "30/minute"
    # Failed logins per username: each window crossed is a longer wait (back-off).
    login_failures_per_user: str = "5/15minutes;10/hour;20/day"
    # Failed logins per client address (one address trying many usernames).
    login_failures_per_address: str = "20/15minutes;100/day"

    # The citizens' web (R18): SMS codes asked per client address and per mobile number; cases
    # filed, status look-ups and evidence uploads per client address.
    web_codes_per_address: str = "5/10minutes;20/day"
    web_codes_per_number: str = "3/10minutes;10/day"
    web_filings_per_address: str = "5/hour;20/day"
    web_status_per_address: str = "20/10minutes;100/day"
    web_uploads_per_address: str = "10/hour;50/day"
    # An SMS code lives this long and allows this many wrong tries.
    web_code_minutes: float = Field(default=10.0, gt=0)
    web_code_attempts: int = Field(default=5, ge=1)

    @field_validator(
        "web_codes_per_address",
        "web_codes_per_number",
        "web_filings_per_address",
        "web_status_per_address",
        "web_uploads_per_address",
        "rate_limit_per_caller",
        "rate_limit_per_address",
        "login_attempts_per_address",
        "login_failures_per_user",
        "login_failures_per_address",
    )
    @classmethod
    def _limits_notation(cls, value: str) -> str:
        from limits import parse_many

        parse_many(value)  # a typo fails at start-up, not on the first request
        return value

    # --- demo ------------------------------------------------------------------------------
    # Password given to the demo users that `didehban demo` creates (never used outside the demo).
    demo_password: str = "demo-1482"

    # --- speech recognition (transcription drafts) ------------------------------------------------
    # The language recordings are in, and so the model that drafts them.
    speech_language: str = Field(default="fa", pattern=r"^[a-z]{2,3}$")
    # Models by language, as JSON ('{"fa": "/srv/models/vosk-model-small-fa-0.42"}'); a language named
    # here wins over the one `didehban speech install-model` recorded under the data folder.
    speech_models: dict[str, Path] = Field(default_factory=dict)
    # Older single setting: the model for speech_language, if neither of the above names one.
    vosk_model_path: Path | None = None
    # A claimed recording is the worker's for this long; the worker renews it while it works, so it
    # only runs out when the worker died. Then another worker takes the file again.
    transcription_lease_seconds: float = Field(default=300.0, ge=10)
    # A file that failed (or whose worker died) this many times is marked failed, not tried again.
    transcription_max_attempts: int = Field(default=3, ge=1)
    # The console marks a draft's words below this confidence (0..1, vosk's "conf") as doubtful.
    transcript_low_confidence: float = Field(default=0.6, ge=0.0, le=1.0)

    # The prefix rules are the IVR node's too (ivr.settings): one copy, in domain.node_settings.
    @field_validator("node_prefix", "backend_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        return node_settings.check_prefix(value)

    @field_validator("node_prefixes", mode="before")
    @classmethod
    def _split_prefixes(cls, value: object) -> object:
        return node_settings.split_prefixes(value)

    @field_validator("node_prefixes")
    @classmethod
    def _check_prefixes(cls, value: list[str]) -> list[str]:
        return node_settings.check_prefixes(value)

    @model_validator(mode="after")
    def _default_node_prefixes(self) -> Settings:
        if not self.node_prefixes:
            self.node_prefixes = [self.node_prefix]
        return self

    def offline_prefixes(self) -> frozenset[str]:
        """Prefixes an offline code may carry: the IVR nodes', never the backend's own."""
        return node_settings.offline_prefixes(self.node_prefixes, self.backend_prefix)

    def pbx_recording_path(self) -> str:
        return self.pbx_recordings_dir or str(self.recordings_dir)


@lru_cache
def get_settings() -> Settings:
    return Settings()
