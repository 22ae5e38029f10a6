"""The node's configuration: one pydantic-settings ``Settings``.

Sources, strongest first: explicit arguments, ``RHENUS_*`` environment variables, the TOML file
named by ``RHENUS_CONFIG`` (else ``{home}/rhenus.toml`` when present), then the defaults below.
Every setting is documented in ``docs/configuration.md``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from rhenus.config_models import DEFAULT_ASSISTANT_MODELS, AssistantModel
from rhenus.config_rules import check_combinations

# AssistantModel and its defaults live in config_models; callers import them from here.
__all__ = [
    "DEFAULT_ASSISTANT_MODELS",
    "AssistantModel",
    "ConfigError",
    "MiB",
    "Settings",
    "load_settings",
    "mask_url",
]

MiB = 1024 * 1024
# An e-mail domain, or "*." and a domain for all of its subdomains.
_DOMAIN_PATTERN = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")
_SENDER = re.compile(r"^[^@\s<>]{1,64}@[A-Za-z0-9.-]{1,253}$")


def _config_file() -> Path | None:
    explicit = os.environ.get("RHENUS_CONFIG")
    if explicit:
        return Path(explicit)
    home = Path(os.environ.get("RHENUS_HOME", ".rhenus"))
    candidate = home / "rhenus.toml"
    return candidate if candidate.is_file() else None


class Settings(BaseSettings):
    """Every setting of a node. Environment variables are ``RHENUS_`` + the upper-case name."""

    model_config = SettingsConfigDict(env_prefix="RHENUS_", extra="forbid", validate_default=True)

    home: Path = Field(Path(".rhenus"), description="Data directory: database, blobs, keys.")
    host: str = Field("127.0.0.1", description="Address the HTTP server listens on.")
    port: int = Field(8080, ge=1, le=65535, description="Port the HTTP server listens on.")
    workers: int = Field(
        1, ge=1, le=64, description="Worker processes of `rhenus run`; several need redis_url."
    )
    public_url: str = Field(
        "", description="URL other nodes and clients use to reach this node (default from host)."
    )
    node_name: str = Field(
        "rhenus",
        pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
        description="Short name of this node, e.g. fr-mininterieur.",
    )
    organisation: str = Field("Rhenus node", description="Legal name of the organisation.")

    database_url: SecretStr = Field(
        SecretStr(""), description="SQLAlchemy async URL; default SQLite (WAL) under home."
    )
    blobs_url: str = Field("", description="file:///dir or s3://bucket?endpoint=…; default local.")
    redis_url: SecretStr = Field(
        SecretStr(""),
        description="redis://[:password@]host:port/db whose pub/sub carries the wake-ups of "
        "long-polling syncs between worker processes; empty: one process only.",
    )
    s3_access_key_id: SecretStr = Field(SecretStr(""), description="S3 access key id.")
    s3_secret_access_key: SecretStr = Field(SecretStr(""), description="S3 secret access key.")

    max_body_bytes: int = Field(1 * MiB, ge=1024, description="Largest request body accepted.")
    max_upload_bytes: int = Field(
        100 * MiB, ge=1024, description="Largest upload accepted on upload routes."
    )

    session_ttl_seconds: int = Field(12 * 3600, ge=60, description="Lifetime of a login token.")
    login_max_attempts: int = Field(
        5, ge=1, description="Failed logins allowed per account and address per window."
    )
    login_window_seconds: int = Field(300, ge=1, description="Window of the login rate limit.")

    audit_checkpoint_every: int = Field(
        100, ge=1, description="The node signs an audit checkpoint every N entries."
    )

    tls_cert_file: Path | None = Field(
        None, description="PEM certificate chain; when set the node serves HTTPS."
    )
    tls_key_file: Path | None = Field(None, description="PEM private key of tls_cert_file.")
    tls_ca_file: Path | None = Field(
        None, description="Extra PEM CA certificates trusted for calls to other nodes."
    )
    federation_insecure_http: bool = Field(
        False, description="Allow plain-HTTP did:web resolution to loopback peers (development)."
    )
    trust_anchor: bool = Field(
        False, description="This node acts as the federation's trust anchor (compliance API)."
    )
    trusted_anchors: list[str] = Field(
        default_factory=list,
        description="DIDs of the trust anchors whose compliance credentials this node accepts.",
    )
    compliance_cache_seconds: int = Field(
        60, ge=0, description="How long a peer's verified compliance is trusted before re-checking."
    )
    did_cache_seconds: int = Field(
        300, ge=0, description="How long resolved DID documents are kept."
    )
    dsp_catalog_cache_seconds: int = Field(
        30, ge=0,
        description="How long a dataset read from a provider's catalog is used for new "
        "negotiations before it is read again (0: read it for each one).",
    )  # fmt: skip

    catalogue_crawl_seconds: int = Field(
        3600, ge=0, description="Seconds between crawls of the peers' catalogs; 0: on demand only."
    )
    catalogue_peers_from_registry: bool = Field(
        True, description="Follow every participant listed by the trusted anchors' registries."
    )

    dataplane_token_seconds: int = Field(
        3600, ge=10, description="Lifetime of a data-plane token handed out when a transfer starts."
    )
    pools_min_group_size: int = Field(
        5, ge=2, description="Smallest group a compute-to-data result row may come from, "
        "whatever a policy says (a policy may ask more).",
    )  # fmt: skip
    pools_max_rows: int = Field(
        10_000_000, ge=1, description="Most rows a compute-to-data query may scan (a policy may "
        "set fewer).",
    )  # fmt: skip
    pools_max_seconds: float = Field(
        30.0, gt=0, le=3600, description="Time limit of a compute-to-data query, loading "
        "included (a policy may set less).",
    )  # fmt: skip
    pools_max_memory_mib: int = Field(
        512, ge=16, description="Memory limit of a compute-to-data query's DuckDB, its dataset "
        "included (a policy may set less).",
    )  # fmt: skip
    pools_threads: int = Field(1, ge=1, le=64, description="DuckDB threads of one query.")
    pools_concurrency: int = Field(
        1, ge=1, le=64, description="Compute-to-data queries run at once; others wait their turn."
    )
    pools_cache_mib: int = Field(
        512, ge=0, description="Decrypted compute-to-data dataset bytes kept in memory between "
        "queries (least recently used evicted first; 0: none, each query decrypts afresh).",
    )  # fmt: skip
    dsp_conformance_token: SecretStr = Field(
        SecretStr(""),
        description="Conformance mode (DSP TCK): this static bearer token stands for "
        "dsp_conformance_participant on DSP routes; loopback nodes only.",
    )
    dsp_conformance_participant: str = Field(
        "TCK_PARTICIPANT", description="Participant id the conformance token stands for."
    )
    dsp_conformance_country: str = Field(
        "DE", min_length=2, max_length=2, description="Headquarters country assumed for it."
    )

    matrix_server_name: str = Field(
        "",
        pattern=r"^$|^[A-Za-z0-9.-]{1,255}(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?$",
        description="Matrix server name (the part after ':' in user and room ids); "
        "default: host[:port] of public_url.",
    )
    matrix_max_upload_bytes: int = Field(
        20 * MiB, ge=1024, description="Largest Matrix media upload (media/v3/upload)."
    )
    matrix_allowed_email_domains: list[str] = Field(
        default_factory=list,
        description="E-mail domains whose owners may register themselves (Matrix e-mail "
        "flow): JSON list of domains, '*.' for every subdomain, e.g. "
        '["interieur.gouv.fr","*.gouv.fr"]; empty: no self-registration by e-mail.',
    )
    matrix_account_validity_days: int = Field(
        0, ge=0, description="Days a Matrix account stays valid before it must be renewed; 0: off."
    )
    matrix_renewal_notice_days: int = Field(
        7, ge=0, description="Days before expiry the renewal e-mail is sent; 0: only on request."
    )

    smtp_host: str = Field(
        "", description="SMTP server the node sends e-mail through; empty: none."
    )
    smtp_port: int = Field(587, ge=1, le=65535, description="Port of the SMTP server.")
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="starttls (submission, 587), tls (implicit TLS, 465) or none."
    )
    smtp_username: str = Field("", description="SMTP login; empty: no authentication.")
    smtp_password: SecretStr = Field(SecretStr(""), description="SMTP password.")
    smtp_from: str = Field("", description="Sender address of the node's e-mail.")
    smtp_timeout_seconds: float = Field(
        10.0, gt=0, le=120, description="Timeout of each SMTP connection and exchange."
    )

    assistant_models: list[AssistantModel] = Field(
        default_factory=lambda: [m.model_copy() for m in DEFAULT_ASSISTANT_MODELS],
        description="Models of the assistant's OpenAI-compatible API, each under an alias: "
        "JSON list of {alias, type: chat|embeddings, backend: local, path, context_size, "
        "threads}.",
    )
    assistant_max_waiting: int = Field(
        16, ge=0, description="Requests that may wait for a busy model; more get 503."
    )
    assistant_rpm: int = Field(
        0, ge=0, description="Requests per minute each user may make of each model; 0: no limit."
    )
    assistant_tpm: int = Field(
        0, ge=0, description="Tokens (prompt + completion) per minute each user may spend on "
        "each model; 0: no limit.",
    )  # fmt: skip
    assistant_max_document_bytes: int = Field(
        20 * MiB, ge=1024, description="Largest document accepted by POST /v1/documents."
    )
    assistant_documents_embedding_model: str = Field(
        "",
        description="Alias of the embeddings model that indexes and searches documents; "
        "empty: the first embeddings model of assistant_models.",
    )
    assistant_chunk_chars: int = Field(
        1000, ge=200, le=20000, description="Target size of a document chunk, in characters."
    )
    assistant_chunk_overlap_chars: int = Field(
        200, ge=0, le=5000, description="Characters a chunk repeats from the end of the last."
    )
    assistant_rag_score_threshold: float = Field(
        0.3,
        ge=-1,
        le=1,
        description="Default least cosine similarity of a chunk retrieved for chat "
        "(search: true); below it the chunk is not relevant.",
    )
    web_assistant_max_tokens: int = Field(
        400, ge=1, le=8192, description="Most tokens of an answer on the web app's assistant page."
    )
    assistant_vector_index: Literal["auto", "memory", "pgvector"] = Field(
        "auto",
        description="Where semantic search runs: memory (exact, numpy), pgvector (PostgreSQL "
        "with the vector extension, HNSW), auto: pgvector when the database has it.",
    )

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] = "json"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value()
        if url and not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _known_redis(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value()
        if url and not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("blobs_url")
    @classmethod
    def _known_blobs(cls, value: str) -> str:
        if value and not value.startswith(("file://", "s3://", "/")):
            raise ValueError("must be file:///absolute/dir, /absolute/dir or s3://bucket?…")
        return value

    @field_validator("matrix_allowed_email_domains")
    @classmethod
    def _domain_patterns(cls, value: list[str]) -> list[str]:
        patterns = [v.strip().lower() for v in value]
        for pattern in patterns:
            if not _DOMAIN_PATTERN.match(pattern):
                raise ValueError(
                    f"{pattern!r} is not a domain or '*.domain' (e.g. interieur.gouv.fr, *.gouv.fr)"
                )
        return patterns

    @field_validator("smtp_from")
    @classmethod
    def _sender(cls, value: str) -> str:
        if value and not _SENDER.match(value):
            raise ValueError("must be an e-mail address, e.g. matrix@interieur.gouv.fr")
        return value

    @field_validator("assistant_models")
    @classmethod
    def _unique_aliases(cls, value: list[AssistantModel]) -> list[AssistantModel]:
        aliases = [m.alias for m in value]
        if len(set(aliases)) != len(aliases):
            raise ValueError("each assistant model needs its own alias")
        return value

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        if not self.database_url.get_secret_value():
            self.database_url = SecretStr(f"sqlite+aiosqlite:///{self.home / 'rhenus.db'}")
        if not self.blobs_url:
            self.blobs_url = (self.home / "blobs").as_uri()
        if not self.public_url:
            scheme = "https" if self.tls_cert_file else "http"
            self.public_url = f"{scheme}://{self.host}:{self.port}"
        self.public_url = self.public_url.rstrip("/")
        if not self.matrix_server_name:
            self.matrix_server_name = urlsplit(self.public_url).netloc.rpartition("@")[2]
        check_combinations(self)
        return self

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    def masked(self) -> dict[str, Any]:
        """Effective settings with every secret masked, for ``rhenus config show``."""
        shown: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name in ("database_url", "redis_url"):
                shown[name] = mask_url(value.get_secret_value())
            elif isinstance(value, SecretStr):
                shown[name] = "********" if value.get_secret_value() else ""
            elif isinstance(value, Path):
                shown[name] = str(value)
            elif isinstance(value, list) and all(isinstance(v, BaseModel) for v in value):
                shown[name] = [v.model_dump() for v in value]
            else:
                shown[name] = value
        return shown


def mask_url(url: str) -> str:
    """Hide the password of a URL (``postgresql+asyncpg://u:****@host/db``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:********@{parts.hostname}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


class ConfigError(Exception):
    """The configuration is invalid; the message names each bad setting."""


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, turning validation errors into one message naming each setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]) or "settings"
            lines.append(f"RHENUS_{name.upper()}: {err['msg']}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from exc
