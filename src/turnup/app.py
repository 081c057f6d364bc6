"""The FastAPI application: one factory composing every feature's API router, the web console and the wiring.

It sits above ``turnup.api`` and ``turnup.web``: the console uses the API's request dependencies
(``turnup.api.deps``), so the API package must not import the console.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Engine, text

import turnup.models  # noqa: F401  (complete metadata)
from turnup import __version__
from turnup.api.csrf import CsrfGuard
from turnup.api.deps import public
from turnup.api.errors import install_error_handlers
from turnup.api.guard import RequestGuard
from turnup.api.headers import SecurityHeaders
from turnup.api.idempotency import install as install_idempotency
from turnup.api.request_id import RequestId
from turnup.api.routes.accounts import router as accounts_router
from turnup.api.routes.agreements import router as agreements_router
from turnup.api.routes.audit import router as audit_router
from turnup.api.routes.billing import router as billing_router
from turnup.api.routes.catalog import router as catalog_router
from turnup.api.routes.compliance import router as compliance_router
from turnup.api.routes.consumers import router as consumers_router
from turnup.api.routes.fallout import router as fallout_router
from turnup.api.routes.logical_inventory import router as logical_inventory_router
from turnup.api.routes.onboarding import router as onboarding_router
from turnup.api.routes.ordering import router as ordering_router
from turnup.api.routes.physical_inventory import router as physical_inventory_router
from turnup.api.routes.product_inventory import router as product_inventory_router
from turnup.api.routes.quoting import router as quoting_router
from turnup.api.routes.revenue import router as revenue_router
from turnup.api.routes.security import router as security_router
from turnup.api.routes.service_inventory import router as service_inventory_router
from turnup.api.routes.usage import router as usage_router
from turnup.kernel.db import make_engine, make_sessionmaker
from turnup.kernel.settings import Settings, get_settings
from turnup.web.access import install_web_error_handlers
from turnup.web.render import STATIC_DIR
from turnup.web.routes import router as web_router
from turnup.wiring import wire

# Swagger UI and ReDoc come from the fastapi-offline package (their released bundles), served by this app:
# /docs and /redoc work without internet access (FastAPI's defaults load them from a CDN).
DOCS_ASSETS = "/static/api-docs"
DOCS_ASSETS_DIR = str(files("fastapi_offline") / "static")


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    wire()  # every feature's consumers registered before a request can publish an event
    settings = settings or get_settings()
    engine = engine or make_engine(settings.database_url)
    app = FastAPI(
        title="Turnup",
        version=__version__,
        description=_description(settings),
        docs_url=None,  # served below from local assets
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    install_error_handlers(app)

    @app.get("/health", tags=["ops"])
    def health(_: None = public()) -> dict[str, Any]:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__}

    @app.get("/metrics", tags=["ops"])
    def metrics(_: None = public()) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    _add_docs_routes(app)
    app.include_router(accounts_router)
    app.include_router(physical_inventory_router)
    app.include_router(logical_inventory_router)
    app.include_router(catalog_router)
    app.include_router(ordering_router)
    app.include_router(quoting_router)
    app.include_router(agreements_router)
    app.include_router(service_inventory_router)
    app.include_router(product_inventory_router)
    app.include_router(fallout_router)
    app.include_router(compliance_router)
    app.include_router(onboarding_router)
    app.include_router(consumers_router)
    app.include_router(security_router)
    app.include_router(usage_router)
    app.include_router(audit_router)
    app.include_router(revenue_router)
    app.include_router(billing_router)
    app.include_router(web_router)
    app.mount(DOCS_ASSETS, StaticFiles(directory=DOCS_ASSETS_DIR), name="api-docs-assets")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    install_web_error_handlers(app)
    install_idempotency(app)  # Idempotency-Key on every POST (it reads a keyed POST's body)
    # CSRF: cookie-authenticated unsafe requests need this server's Origin and the session's token; refused
    # before the idempotency layer records anything and before any handler runs.
    app.add_middleware(CsrfGuard, public_url=settings.public_url)
    # Added last, so outermost of the app's own layers: size and query checks before routing, before the
    # idempotency layer reads a body, before body parsing and authentication.
    app.add_middleware(
        RequestGuard,
        max_body_bytes=settings.max_body_bytes,
        max_import_body_bytes=settings.max_import_body_bytes,
    )
    app.add_middleware(SecurityHeaders)  # nosniff / no-store / no framing on every response
    app.add_middleware(RequestId)  # outermost: every answer, a 413 too, carries X-Request-ID
    return app


def _description(settings: Settings) -> str:
    return (
        "Service delivery: quote accepted -> service active, billed and recognised.\n\n"
        f"Request bodies are limited to {settings.max_body_bytes} bytes "
        f"({settings.max_import_body_bytes} bytes for bulk imports, the operations whose path ends in "
        "`Import`); "
        "a larger body is refused with 413 before it is read and before authentication "
        "(settings `TURNUP_MAX_BODY_BYTES`, `TURNUP_MAX_IMPORT_BODY_BYTES`). "
        "Strings in bodies and query parameters must not hold control characters other than tab, LF and CR "
        "(400)."
    )


def _add_docs_routes(app: FastAPI) -> None:
    """Swagger UI at /docs and ReDoc at /redoc, every asset served by this app (no CDN)."""
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_redirect = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(_: None = public()) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=oauth2_redirect,
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    @app.get(oauth2_redirect, include_in_schema=False)
    def swagger_ui_redirect(_: None = public()) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc(_: None = public()) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )
