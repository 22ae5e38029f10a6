"""Builds the node's ASGI application from the domains' routers."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from rhenus import __version__
from rhenus.accounts.api import router as accounts_router
from rhenus.assistant.api import router as assistant_router
from rhenus.assistant.collections_api import router as assistant_documents_router
from rhenus.assistant.errors import OPENAI_PREFIX, OpenAIError, on_openai_error, render_openai_error
from rhenus.assistant.ingest import Ingester
from rhenus.assistant.service import Assistant
from rhenus.assistant.usage_api import limits_router as assistant_limits_router
from rhenus.config import Settings
from rhenus.core.errors import ERROR_RENDERERS, install_problem_handlers
from rhenus.core.http import BodyLimitMiddleware, RequestContextMiddleware
from rhenus.core.jobs import JobRunner
from rhenus.core.node import Node
from rhenus.dataspace.catalogue import dsp
from rhenus.dataspace.catalogue.api import router as catalogue_router
from rhenus.dataspace.catalogue.federation_api import router as catalogue_federation_router
from rhenus.dataspace.catalogue.federation_api import scheduled_crawls
from rhenus.dataspace.conformance import fixtures
from rhenus.dataspace.conformance.api import router as conformance_router
from rhenus.dataspace.contracts.api import render_negotiation_error
from rhenus.dataspace.contracts.api import router as contracts_router
from rhenus.dataspace.contracts.driver import Driver
from rhenus.dataspace.pools.api import router as pools_router
from rhenus.dataspace.transfers.api import render_transfer_error
from rhenus.dataspace.transfers.api import router as transfers_router
from rhenus.dataspace.transfers.dataplane import router as dataplane_router
from rhenus.dataspace.transfers.driver import TransferDriver
from rhenus.messaging.api import admin_router as messaging_admin_router
from rhenus.messaging.api import router as messaging_router
from rhenus.messaging.api import well_known_router as matrix_well_known_router
from rhenus.messaging.client_misc_api import router as messaging_misc_router
from rhenus.messaging.errors import (
    MATRIX_PREFIX,
    MatrixBodyLimit,
    MatrixError,
    on_matrix_error,
    render_matrix_error,
)
from rhenus.messaging.events import Notifier
from rhenus.messaging.extras_api import router as messaging_extras_router
from rhenus.messaging.fanout import fanned_out, watch
from rhenus.messaging.keys_api import router as messaging_keys_router
from rhenus.messaging.media import UPLOAD_PATHS as MATRIX_UPLOAD_PATHS
from rhenus.messaging.media_api import router as messaging_media_router
from rhenus.messaging.media_api import upload_router as messaging_upload_router
from rhenus.messaging.membership_api import router as messaging_membership_router
from rhenus.messaging.rooms_api import router as messaging_rooms_router
from rhenus.messaging.tchap_api import admin_router as messaging_tchap_admin_router
from rhenus.messaging.tchap_api import router as messaging_tchap_router
from rhenus.messaging.validity import scheduled_renewal_notices
from rhenus.ops.api import router as ops_router
from rhenus.trust import deps as trust_deps
from rhenus.trust.anchor_api import router as anchor_router
from rhenus.trust.api import router as trust_router
from rhenus.web.api import install as install_web
from rhenus.web.assistant_pages import UPLOAD_PATH as WEB_DOCUMENT_UPLOAD
from rhenus.web.chat_pages import UPLOAD_PATH as WEB_CHAT_UPLOAD

# Routes that take file uploads get the upload limit; every other body gets max_body_bytes.
UPLOAD_PATHS = re.compile(r"^/api/v1/datasets/[^/]+/content$")
# The assistant's documents: their own limit (checked exactly on the file), plus the multipart
# framing around it.
DOCUMENT_UPLOAD_PATH = "/v1/documents"
MULTIPART_SLACK = 64 * 1024


def create_app(
    settings: Settings,
    node: Node | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """The FastAPI app; opens (and closes) the node's parts unless ``node`` is given.

    ``transport`` routes the node's outgoing federation calls (tests join in-process nodes).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = node is None
        app.state.node = node or Node.open(settings)
        if owned:
            await app.state.node.blobs.cleanup_temp()
        runner = background_jobs(app, transport)
        if settings.dsp_conformance_token.get_secret_value():
            await fixtures.seed(app.state.node)
        fanout = fanned_out(
            app.state.matrix_notifier, settings.redis_url.get_secret_value(), settings.node_name
        )
        try:
            async with (
                fanout,
                scheduled_crawls(app, settings.catalogue_crawl_seconds),
                scheduled_renewal_notices(app),
                runner.running(),
            ):
                yield
        finally:
            await app.state.contracts_driver.aclose()
            await app.state.transfers_driver.aclose()
            await app.state.did_resolver.close()
            if owned:
                await app.state.node.close()

    app = FastAPI(
        title="Rhenus node",
        version=__version__,
        description="Sovereign data spaces, messaging and AI assistant for public administrations.",
        lifespan=lifespan,
    )
    trust_deps.install(app, settings, transport)
    if node is not None:
        app.state.node = node
        background_jobs(app, transport)
    install_problem_handlers(app)
    app.add_exception_handler(MatrixError, on_matrix_error)
    app.add_exception_handler(OpenAIError, on_openai_error)
    app.state.assistant = Assistant(
        settings.assistant_models,
        owner=settings.node_name,
        max_waiting=settings.assistant_max_waiting,
    )
    app.state.matrix_notifier = Notifier()
    watch(app.state.matrix_notifier)
    # Busiest first: a request is matched against every route before its own, twice (~2.4 µs
    # a route), so a Matrix send placed behind 140 routes paid 0.7 ms for routing alone. The
    # routers' paths do not overlap, so their order changes no route's meaning. The health
    # checks (5 routes) go first: orchestrators poll them every few seconds.
    app.include_router(ops_router)
    app.include_router(contracts_router)
    app.include_router(transfers_router)
    app.include_router(dataplane_router)
    app.include_router(messaging_rooms_router)
    app.include_router(messaging_router)
    app.include_router(catalogue_router)
    app.include_router(messaging_extras_router)
    app.include_router(messaging_keys_router)
    app.include_router(messaging_membership_router)
    app.include_router(messaging_misc_router)
    app.include_router(messaging_media_router)
    app.include_router(messaging_upload_router)
    app.include_router(accounts_router)
    app.include_router(assistant_router)
    app.include_router(assistant_documents_router)
    app.include_router(assistant_limits_router)
    app.include_router(trust_router)
    app.include_router(anchor_router)
    app.include_router(catalogue_federation_router)
    app.include_router(pools_router)
    app.include_router(messaging_admin_router)
    app.include_router(messaging_tchap_router)
    app.include_router(messaging_tchap_admin_router)
    app.include_router(matrix_well_known_router)
    install_web(app)  # the web app's pages at / and its /static files
    if settings.dsp_conformance_token.get_secret_value():
        app.include_router(conformance_router)
    ERROR_RENDERERS[f"{dsp.BASE_PATH}/catalog"] = dsp.render_catalog_error
    ERROR_RENDERERS[f"{dsp.BASE_PATH}/negotiations"] = render_negotiation_error
    ERROR_RENDERERS[f"{dsp.BASE_PATH}/transfers"] = render_transfer_error
    ERROR_RENDERERS[MATRIX_PREFIX] = render_matrix_error
    ERROR_RENDERERS[OPENAI_PREFIX] = render_openai_error

    def limit_for(path: str) -> int:
        if UPLOAD_PATHS.match(path):
            return settings.max_upload_bytes
        if MATRIX_UPLOAD_PATHS.match(path):
            return settings.matrix_max_upload_bytes
        if WEB_CHAT_UPLOAD.match(path):  # the chat page's file form
            return settings.matrix_max_upload_bytes + MULTIPART_SLACK
        if path == DOCUMENT_UPLOAD_PATH or WEB_DOCUMENT_UPLOAD.match(path):
            return settings.assistant_max_document_bytes + MULTIPART_SLACK
        return settings.max_body_bytes

    app.add_middleware(BodyLimitMiddleware, limit_for=limit_for)
    # In front of it: Matrix clients get M_TOO_LARGE, not a problem document.
    app.add_middleware(MatrixBodyLimit, limit_for=limit_for)
    app.add_middleware(RequestContextMiddleware)
    return app


def background_jobs(app: FastAPI, transport: httpx.AsyncBaseTransport | None) -> JobRunner:
    """The app's job runner, with every domain's job handlers (``app.state.jobs``)."""
    existing: JobRunner | None = getattr(app.state, "jobs", None)
    if existing is not None:
        return existing
    contracts = Driver(app.state.node, transport)
    transfers = TransferDriver(app.state.node, transport)
    ingester = Ingester(app.state)
    runner = JobRunner(
        app.state.node.db,
        {**contracts.handlers(), **transfers.handlers(), **ingester.handlers()},
    )
    contracts.runner = transfers.runner = runner
    contracts.resolver = transfers.resolver = app.state.did_resolver
    app.state.contracts_driver = contracts
    app.state.transfers_driver = transfers
    app.state.jobs = runner
    return runner


def app_from_environment() -> FastAPI:
    """The app of one worker process of ``rhenus run --workers N`` (uvicorn's app factory).

    Each worker reads the settings as the parent did (environment, TOML file) and opens the
    node that the parent initialised before starting the workers.
    """
    from rhenus.config import load_settings
    from rhenus.core.logs import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)
