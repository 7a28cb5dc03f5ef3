"""The composition root: the one place that builds engines and adapters from settings.

``app.py`` and ``cli.py`` hand the container to the contexts' adapters, which know it only as
what their ``deps.py`` asks for (``needs_of`` is where mypy checks that it provides it).
No module under a context imports this one (tests/unit/test_architecture.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING

import anyio
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from dancu.core.audit import AsyncGroupAuditWriter, GroupAuditWriter
from dancu.core.db import libpq_conninfo, make_engine, make_sessionmaker
from dancu.core.deps import CoreNeeds
from dancu.core.officers import TokenSigner
from dancu.core.outbox import JetStreamPublisher, LocalSubscriber, OutboxRelay
from dancu.core.settings import Settings
from dancu.core.units import UnitDirectory
from dancu.identity import ports
from dancu.identity.clients import ClientRegistry
from dancu.identity.deps import IdentityNeeds
from dancu.identity.guardians import GuardianService
from dancu.identity.keys import KeyRing
from dancu.identity.oidc.authorizer import Authorizer
from dancu.identity.oidc.dpop import DPoPVerifier
from dancu.identity.oidc.fast_code import CodeRedeemer
from dancu.identity.oidc.fast_token import AsyncReplayGuard, FastTokenEndpoint
from dancu.identity.oidc.tokens import ReplayStore, TokenEndpoint
from dancu.identity.service import IdentityService
from dancu.reconcile.deps import ReconcileNeeds
from dancu.registry.deps import RegistryNeeds
from dancu.registry.lookup import PersonLookup
from dancu.registry.service import RegistryService

if TYPE_CHECKING:
    from dancu.reconcile.service import ReconcileService


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
        service = RegistryService(self.sessions, self.units, self.audit_writer)
        service.lookup = self.person_lookup
        return service

    @cached_property
    def identity(self) -> IdentityService:
        key = self.settings.resolved_secret_key
        return IdentityService(
            self.sessions,
            self.registry,
            secret_key=key,
            sms=self.sms,
            portraits=self.portraits,
            faces=self.faces,
            fingerprints=ports.DevFingerprintScanner(),
            face_threshold=self.settings.face_threshold,
        )

    @cached_property
    def keyring(self) -> KeyRing:
        return KeyRing(self.sessions, self.settings.resolved_secret_key, timedelta(hours=24))

    @cached_property
    def clients(self) -> ClientRegistry:
        return ClientRegistry(self.sessions)

    @cached_property
    def replay_store(self) -> ReplayStore:
        return ReplayStore(self.sessions)

    @cached_property
    def oidc_tokens(self) -> TokenEndpoint:
        return TokenEndpoint(self.sessions, self.clients, self.keyring, self.replay_store)

    @cached_property
    def dpop(self) -> DPoPVerifier:
        return DPoPVerifier(self.replay_store)

    @cached_property
    def authorizer(self) -> Authorizer:
        return Authorizer(
            self.sessions,
            self.clients,
            self.registry,
            self.keyring,
            self.oidc_tokens,
            self.settings.resolved_secret_key,
            self.portraits,
        )

    @cached_property
    def reconcile(self) -> ReconcileService:
        # Imported here: DuckDB and the pipeline load only when reconciliation is used.
        from dancu.reconcile.service import ReconcileService

        return ReconcileService(
            self.sessions,
            self.registry,
            self.settings.data_dir,
            engine=self.settings.reconcile_engine,
            spark_master=self.settings.spark_master,
        )

    @cached_property
    def guardians(self) -> GuardianService:
        return GuardianService(self.sessions, self.identity)

    @cached_property
    def portraits(self) -> ports.PortraitStore:
        """The portraits held for people (the card system's photos; development: synthetic)."""
        if self.settings.portrait_dir is not None:
            return ports.DirectoryPortraits(self.settings.portrait_dir)
        return ports.SyntheticPortraits(self.settings.resolved_secret_key)

    @cached_property
    def faces(self) -> ports.FaceMatcher:
        """Selfie against portrait: dlib's descriptor (decision 0005) or the exact stand-in."""
        if self.settings.face_matcher == "dlib":
            from dancu.identity.faces import DlibFaceMatcher

            return DlibFaceMatcher()
        return ports.ExactFaceMatcher()

    @cached_property
    def sms(self) -> ports.SmsSender:
        return ports.ConsoleSms()

    def subscribers(self) -> list[LocalSubscriber]:
        """The in-process consumers of domain events (run by the server's event poller)."""
        return [
            LocalSubscriber(
                self.sessions,
                "identity",
                (
                    "registry.person.died",
                    "registry.person.merged",
                    "registry.person.unmerged",
                    "registry.residence.changed",
                ),
                self.identity.on_registry_event,
            )
        ]

    @cached_property
    def person_lookup(self) -> PersonLookup | None:
        """The async person lookup, on PostgreSQL only (``start_async`` opens it)."""
        if self.engine.dialect.name != "postgresql":
            return None
        conninfo = libpq_conninfo(self.engine.url)
        return PersonLookup(
            conninfo,
            self.units,
            AsyncGroupAuditWriter(
                conninfo, self.settings.audit_max_batch, self.settings.audit_gather_ms
            ),
            self.settings.lookup_pool_size,
        )

    @cached_property
    def fast_token(self) -> FastTokenEndpoint | None:
        """The event-loop client-credentials and code grants, on PostgreSQL only."""
        if self.engine.dialect.name != "postgresql":
            return None
        conninfo, gather_ms = libpq_conninfo(self.engine.url), self.settings.audit_gather_ms
        return FastTokenEndpoint(
            self.oidc_tokens,
            AsyncReplayGuard(conninfo, gather_ms),
            self.dpop,
            CodeRedeemer(conninfo, self.authorizer, gather_ms),
            self.oauth_limiter,
        )

    async def start_async(self) -> None:
        """Open what the async server uses, on its event loop (the app's lifespan calls it)."""
        if self.person_lookup is not None:
            await self.person_lookup.start()
        if self.fast_token is not None:
            await self.fast_token.start()

    async def stop_async(self) -> None:
        if "person_lookup" in self.__dict__ and self.person_lookup is not None:
            await self.person_lookup.stop()
        if "fast_token" in self.__dict__ and self.fast_token is not None:
            await self.fast_token.stop()

    @cached_property
    def oauth_limiter(self) -> anyio.CapacityLimiter:
        """How many of the OpenID provider's requests run on threads at once (settings)."""
        return anyio.CapacityLimiter(self.settings.oauth_threads)

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


def needs_of(
    container: Container,
) -> tuple[CoreNeeds, RegistryNeeds, IdentityNeeds, ReconcileNeeds]:
    """The container as each context's adapters see it: mypy checks here that it provides
    everything each context's ``deps.py`` asks for."""
    return container, container, container, container
