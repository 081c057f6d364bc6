"""The FastAPI application: one factory composing every feature's API router, the web console and the wiring.

It sits above ``turnup.api`` and ``turnup.web``: the console uses the API's request dependencies
(``turnup.api.deps``), so the API package must not import the console.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Engine, text

import turnup.models  # noqa: F401  (complete metadata)
from turnup import __version__
from turnup.api.deps import public
from turnup.api.errors import install_error_handlers
from turnup.api.routes.accounts import router as accounts_router
from turnup.api.routes.agreements import router as agreements_router
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
from turnup.api.routes.service_inventory import router as service_inventory_router
from turnup.kernel.db import make_engine, make_sessionmaker
from turnup.kernel.settings import Settings, get_settings
from turnup.web.access import install_web_error_handlers
from turnup.web.render import STATIC_DIR
from turnup.web.routes import router as web_router
from turnup.wiring import wire


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    wire()  # every feature's consumers registered before a request can publish an event
    settings = settings or get_settings()
    engine = engine or make_engine(settings.database_url)
    app = FastAPI(
        title="Turnup",
        version=__version__,
        description="Service delivery: quote accepted -> service active, billed and recognised.",
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
    app.include_router(web_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    install_web_error_handlers(app)
    return app
