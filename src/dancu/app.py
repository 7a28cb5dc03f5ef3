"""The ASGI application: JSON API, officer web pages and static files."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files

from anyio import to_thread
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

from dancu import __version__
from dancu.bootstrap import Container, needs_of
from dancu.core import page_errors
from dancu.core import web as core_web
from dancu.core.api import BodyLimit, RefuseNul, install_problem_handlers
from dancu.core.outbox import run_subscribers
from dancu.core.pages import WebContext
from dancu.identity import api as identity_api
from dancu.identity import web as identity_web
from dancu.identity.sessions import CitizenSessions
from dancu.reconcile import api as reconcile_api
from dancu.reconcile import web as reconcile_web
from dancu.registry import api as registry_api
from dancu.registry import web as registry_web

# Every context's API and pages, in menu order. A new context adds its two lines here
# (docs/architecture.md, "How to add a context").
API_ROUTERS = (registry_api.router, identity_api.router, reconcile_api.router)
PAGES: tuple[WebContext, ...] = (registry_web.WEB, identity_web.WEB, reconcile_web.WEB)


def create_app(container: Container | None = None) -> FastAPI:
    container = container or Container()
    _core, registry, identity, _reconcile = needs_of(container)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await container.start_async()
        # Synchronous routes run on anyio's default thread limiter: a few threads, not 40.
        to_thread.current_default_thread_limiter().total_tokens = container.settings.threads
        container.units  # noqa: B018 (loaded now, not by the first request)
        # Everything built so far lives as long as the process: keep it out of the garbage
        # collector's sweeps, whose full passes over it otherwise stall requests (the
        # lookup benchmark's p99 fell from ~100 ms to ~40 ms).
        gc.collect()  # what is garbage already is freed, not frozen
        gc.freeze()
        stop = asyncio.Event()
        events = asyncio.create_task(
            run_subscribers(container.subscribers(), container.settings.event_poll_seconds, stop)
        )
        # Reconciliation jobs run on a thread of their own (DuckDB releases the GIL while it
        # works); one per process, each claiming jobs so that none runs twice.
        stop_jobs = threading.Event()
        jobs = None
        if container.settings.reconcile_worker:
            jobs = threading.Thread(
                target=container.reconcile.work, args=(stop_jobs,), name="reconcile", daemon=True
            )
            jobs.start()
        try:
            yield
        finally:
            stop.set()
            stop_jobs.set()
            await events
            if jobs is not None:
                await asyncio.to_thread(jobs.join, 30)
            await container.stop_async()
            container.close()

    app = FastAPI(
        title="dancu",
        version=__version__,
        lifespan=lifespan,
        description="National population registry: lookup, search, civil events.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.container = container
    install_problem_handlers(app)
    for router in API_ROUTERS:
        app.include_router(router)
    # Inside the session middleware: ends citizen sessions on revoked devices.
    app.add_middleware(CitizenSessions, container=identity)
    core_web.install(app)
    core_web.install_page_errors(app)
    page_errors.install(app)  # after the API's handlers, which it keeps for the API
    app.include_router(core_web.router)
    for context in PAGES:
        core_web.add_pages(app, context)
    app.add_middleware(BodyLimit, limit=container.settings.max_upload_mb * 1024 * 1024)
    app.add_middleware(identity_api.TokenFastPath, container=identity)
    app.add_middleware(registry_api.PersonLookupFastPath, container=registry)
    app.add_middleware(RefuseNul)  # outermost: before the fast paths read the query

    # Swagger UI from the installed swagger-ui-bundle, not a CDN (the docs work offline).
    app.mount("/static/docs", StaticFiles(directory=swagger_ui_path), name="docs-static")
    app.mount("/static", StaticFiles(directory=str(files("dancu.core") / "static")), name="static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="dancu API",
            swagger_js_url="/static/docs/swagger-ui-bundle.js",
            swagger_css_url="/static/docs/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )

    return app
