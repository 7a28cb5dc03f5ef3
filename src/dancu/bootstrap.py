"""The composition root: the one place that builds engines and adapters from settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from dancu.core.audit import GroupAuditWriter
from dancu.core.db import make_engine, make_sessionmaker
from dancu.core.officers import TokenSigner
from dancu.core.outbox import JetStreamPublisher, OutboxRelay
from dancu.core.settings import Settings
from dancu.core.units import UnitDirectory
from dancu.registry.service import RegistryService


@dataclass
class Container:
    """Everything a process needs, built lazily from ``Settings``."""

    settings: Settings = field(default_factory=Settings)

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.resolved_database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_sessionmaker(self.engine)

    @cached_property
    def units(self) -> UnitDirectory:
        with self.sessions() as session:
            return UnitDirectory(session)

    @cached_property
    def audit_writer(self) -> GroupAuditWriter:
        writer = GroupAuditWriter(
            self.sessions, self.settings.audit_flush_ms, self.settings.audit_max_batch
        )
        writer.start()
        return writer

    @cached_property
    def registry(self) -> RegistryService:
        return RegistryService(self.sessions, self.units, self.audit_writer)

    @cached_property
    def tokens(self) -> TokenSigner:
        return TokenSigner(self.settings.resolved_secret_key)

    def outbox_relay(self) -> OutboxRelay:
        publisher = JetStreamPublisher(
            self.settings.nats_url, self.settings.nats_stream, self.settings.event_subject_prefix
        )
        return OutboxRelay(self.sessions, publisher, self.settings.event_subject_prefix)

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if "audit_writer" in self.__dict__:
            self.audit_writer.stop()
        if "engine" in self.__dict__:
            self.engine.dispose()
