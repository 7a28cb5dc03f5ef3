"""Settings, read from the environment (prefix ``DANCU_``) and an optional ``.env`` file."""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob dancu reads. Each field is documented in docs/operations.md."""

    model_config = SettingsConfigDict(env_prefix="DANCU_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default=Path("var"),
        description="Where the embedded database, the secret key and job files live.",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL; empty means the embedded "
        "SQLite file <data_dir>/dancu.db. PostgreSQL: "
        "postgresql+psycopg://user@host/db.",
    )
    secret_key: str = Field(
        default="",
        description="Signs session cookies and CSRF tokens; empty "
        "means a random key kept in <data_dir>/secret.key.",
    )
    default_locale: str = Field(
        default="vi", description="Language of pages when the user has not chosen one (vi or en)."
    )
    max_upload_mb: int = Field(default=200, description="Largest accepted upload, in MiB.")
    audit_flush_ms: float = Field(
        default=2.0,
        description="How long the audit writer waits to gather concurrent entries into one commit.",
    )
    audit_max_batch: int = Field(default=512, description="Most audit entries in one commit.")
    audit_gather_ms: float = Field(
        default=3.0,
        description="Longest the async server's audit writer waits for the reads under way "
        "to join one commit.",
    )
    lookup_pool_size: int = Field(
        default=4,
        ge=1,
        description="PostgreSQL connections per server process for person lookups by ID.",
    )
    oauth_threads: int = Field(
        default=2,
        ge=1,
        description="Threads per server process for the OpenID provider's token, PAR and "
        "userinfo work. That work is short and mostly Python: more threads only contend for "
        "the interpreter lock (the code-exchange benchmark: 2 threads 213 req/s, 40 threads "
        "~110 req/s). Raise it when the database is slow to answer rather than the CPU busy.",
    )
    threads: int = Field(
        default=4,
        ge=1,
        description="Threads per server process for the synchronous routes (officer and "
        "citizen pages, search, history, household, reconciliation, identity): the size of "
        "the default thread limiter, 40 in Starlette. The work is mostly Python, so more "
        "threads than this only contend for the interpreter lock (as the OpenID provider's "
        "did, decision 0004). Raise it when the database is slow to answer rather than the "
        "CPU busy.",
    )
    session_hours: int = Field(default=8, description="Officer session lifetime in hours.")
    event_poll_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How often the server hands new domain events to in-process subscribers.",
    )
    identity_adapters: Literal["dev"] = Field(
        default="dev",
        description="SMS, portraits, face matching and fingerprints for electronic identity: "
        "dev = SMS to the log, synthetic portraits, an exact-match face stand-in (see "
        "dancu.identity.ports for the real adapters' shape).",
    )
    issuer: str = Field(
        default="",
        description="The OpenID provider's issuer URL (https://id.example.vn); empty: the URL "
        "the server is reached at (development only).",
    )
    face_matcher: Literal["exact", "dlib"] = Field(
        default="exact",
        description="Selfie against portrait: exact = the development stand-in (synthetic "
        "portraits); dlib = dlib's face descriptor (needs the faces extra and real portraits "
        "in DANCU_PORTRAIT_DIR; decision 0005).",
    )
    portrait_dir: Path | None = Field(
        default=None,
        description="Folder of enrolment portraits named <personal ID>.jpg (a card-office "
        "export for pilots); unset: synthetic development portraits.",
    )
    face_threshold: float = Field(
        default=0.8, ge=0, le=1, description="Least face similarity that counts as a match."
    )
    nats_url: str = Field(
        default="nats://127.0.0.1:4222", description="NATS server the outbox relay publishes to."
    )
    nats_stream: str = Field(
        default="DANCU", description="JetStream stream for dancu's events (created when missing)."
    )
    event_subject_prefix: str = Field(
        default="dancu",
        description="Events are published on <prefix>.<topic>, e.g. dancu.registry.person.born.",
    )
    secure_cookies: bool = Field(
        default=False, description="Mark cookies Secure (set behind HTTPS)."
    )
    reconcile_engine: Literal["duckdb", "spark"] = Field(
        default="duckdb",
        description="Engine of reconciliation jobs: duckdb (in-process) or spark.",
    )
    spark_master: str = Field(
        default="local[2]",
        description="Spark master URL for the spark engine (local[N], spark://host:7077...).",
    )
    reconcile_worker: bool = Field(
        default=True,
        description="Run reconciliation jobs in the server's process (false: run "
        "`dancu reconcile worker` instead).",
    )

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.data_dir / 'dancu.db').resolve()}"

    @cached_property
    def resolved_secret_key(self) -> str:
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()
