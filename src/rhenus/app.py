"""Builds the node's ASGI application from the domains' routers."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from rhenus import __version__
from rhenus.accounts.api import router as accounts_router
from rhenus.config import Settings
from rhenus.core.errors import ERROR_RENDERERS, install_problem_handlers
from rhenus.core.http import BodyLimitMiddleware, RequestContextMiddleware
from rhenus.core.node import Node
from rhenus.dataspace.catalogue import dsp
from rhenus.dataspace.catalogue.api import router as catalogue_router
from rhenus.dataspace.catalogue.federation_api import router as catalogue_federation_router
from rhenus.dataspace.catalogue.federation_api import scheduled_crawls
from rhenus.ops.api import router as ops_router
from rhenus.trust import deps as trust_deps
from rhenus.trust.anchor_api import router as anchor_router
from rhenus.trust.api import router as trust_router

# Routes that take file uploads get the upload limit; every other body gets max_body_bytes.
UPLOAD_PATHS = re.compile(r"^/api/v1/datasets/[^/]+/content$")


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
        try:
            async with scheduled_crawls(app, settings.catalogue_crawl_seconds):
                yield
        finally:
            await app.state.did_resolver.close()
            if owned:
                await app.state.node.close()

    app = FastAPI(
        title="Rhenus node",
        version=__version__,
        description="Sovereign data spaces, messaging and AI assistant for public administrations.",
        lifespan=lifespan,
    )
    if node is not None:
        app.state.node = node
    trust_deps.install(app, settings, transport)
    install_problem_handlers(app)
    app.include_router(ops_router)
    app.include_router(accounts_router)
    app.include_router(trust_router)
    app.include_router(anchor_router)
    app.include_router(catalogue_router)
    app.include_router(catalogue_federation_router)
    ERROR_RENDERERS[f"{dsp.BASE_PATH}/catalog"] = dsp.render_catalog_error

    def limit_for(path: str) -> int:
        if UPLOAD_PATHS.match(path):
            return settings.max_upload_bytes
        return settings.max_body_bytes

    app.add_middleware(BodyLimitMiddleware, limit_for=limit_for)
    app.add_middleware(RequestContextMiddleware)
    return app
