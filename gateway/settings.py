"""Gateway settings: one nested model per room, from a YAML file and ``RCGATE_*`` variables.

Unknown keys are refused with their path named, so a typo in the settings file stops startup
instead of being silently ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.core.errors import BadRequest


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpSettings(Section):
    host: str = "localhost"
    port: int = Field(8080, ge=0, le=65535)
    # The public base URL browsers use; it defines the WebAuthn origin and the links we print.
    public_url: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    max_body_bytes: int = Field(64 * 1024, ge=1024)  # 64 KiB: every JSON API body is small


class AuthSettings(Section):
    rp_id: str | None = None  # default: host of public_url
    rp_name: str = "rcgate"
    # Extra origins accepted for WebAuthn and the Origin check (besides public_url).
    origins: tuple[str, ...] = ()
    login_idle_timeout_s: int = Field(15 * 60, ge=10)
    login_absolute_timeout_s: int = Field(12 * 3600, ge=60)
    enrol_link_ttl_s: int = Field(24 * 3600, ge=60)
    challenge_ttl_s: int = Field(5 * 60, ge=10)
    stepup_max_age_s: int = Field(5 * 60, ge=10)
    totp_issuer: str = "rcgate"
    lockout_threshold: int = Field(5, ge=1)
    lockout_window_s: int = Field(5 * 60, ge=1)
    lockout_base_s: int = Field(60, ge=1)
    lockout_max_s: int = Field(3600, ge=1)


class SshSettings(Section):
    enabled: bool = True
    host: str = "localhost"
    port: int = Field(2222, ge=0, le=65535)
    # The host name remote viewers and connectors use (default: the host of public_url).
    public_host: str | None = None
    cert_valid_s: int = Field(12 * 3600, ge=60, le=7 * 24 * 3600)


class SessionSettings(Section):
    idle_timeout_s: float = Field(15 * 60, gt=0)  # no output and no remote input
    max_duration_s: float = Field(8 * 3600, gt=0)
    participant_idle_timeout_s: float = Field(15 * 60, gt=0)
    connector_grace_s: float = Field(60, gt=0)  # a dropped connector may resume within this
    link_ttl_s: int = Field(10 * 60, ge=10, le=24 * 3600)
    join_max_age_s: int = Field(5 * 60, ge=10)  # freshness of the factor to join (view-only)


class PolicySettings(Section):
    # The policy file (docs/policy.md); None: the shipped default policy (the demo ships its own).
    file: Path | None = None
    reload_interval_s: float = Field(2.0, gt=0)


class StoreSettings(Section):
    backend: Literal["embedded", "redis"] = "embedded"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Prefix of every Redis key, so that two deployments can share one Redis.
    redis_prefix: str = "rcg"


class RecordingSettings(Section):
    # Delete recordings older than this many days (with an audit event each); None keeps them
    # forever. Held recordings (`rcgate recordings hold ID`) and live ones are never deleted.
    retain_days: float | None = Field(None, gt=0)
    retention_interval_s: float = Field(3600, ge=10)  # how often the gateway applies retention
    # The seek index (screen keyframes): "after" builds it when a session is over, in a niced
    # subprocess (the terminal emulator is CPU-heavy and must not slow live sessions); "live"
    # writes it while recording (in a thread of the gateway); "off" never (seeks read from the start).
    seek_index: Literal["after", "live", "off"] = "after"


class LogSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_format: bool = False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RCGATE_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    data_dir: Path = Path("data")
    recordings_dir: Path = Path("recordings")
    http: HttpSettings = HttpSettings()
    auth: AuthSettings = AuthSettings()
    ssh: SshSettings = SshSettings()
    sessions: SessionSettings = SessionSettings()
    store: StoreSettings = StoreSettings()
    policy: PolicySettings = PolicySettings()
    recordings: RecordingSettings = RecordingSettings()
    log: LogSettings = LogSettings()

    @field_validator("data_dir", "recordings_dir")
    @classmethod
    def _absolute(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    @property
    def tls(self) -> bool:
        return self.http.tls_cert is not None

    @property
    def public_url(self) -> str:
        if self.http.public_url:
            return self.http.public_url.rstrip("/")
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.http.host}:{self.http.port}"

    @property
    def rp_id(self) -> str:
        if self.auth.rp_id:
            return self.auth.rp_id
        from urllib.parse import urlsplit

        return urlsplit(self.public_url).hostname or "localhost"

    @property
    def ssh_public_host(self) -> str:
        return self.ssh.public_host or self.rp_id

    @property
    def origins(self) -> tuple[str, ...]:
        return (self.public_url, *self.auth.origins)


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read the YAML file (if any), then environment, then explicit overrides (CLI flags).

    Raises ``BadRequest`` naming each bad field, e.g. ``settings: http.prot: unknown key``.
    """
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise BadRequest(f"settings: cannot read {path}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise BadRequest(f"settings: {path} must hold a mapping at the top level")
        data = loaded
    for dotted, value in overrides.items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise BadRequest("settings: " + describe_validation_error(exc)) from exc


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)
