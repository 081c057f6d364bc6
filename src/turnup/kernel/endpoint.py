"""Where the API is served, recorded in the database so every process builds the same hrefs.

``turnup serve`` records its public base URL (``TURNUP_PUBLIC_URL``, else ``http://<host>:<port>`` as it
serves); a CLI command that has no URL configured itself (no ``TURNUP_PUBLIC_URL``, ``TURNUP_HOST`` or
``TURNUP_PORT``) builds hrefs from that record (``turnup.kernel.hrefs.use_server_url``), so a server on
port 9000 is not shown as 8000.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime

from sqlalchemy import String, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column

from turnup.kernel import clock
from turnup.kernel.db import Base, UTCDateTime
from turnup.kernel.settings import Settings

API_ENDPOINT = "api"
URL_ENV = ("TURNUP_PUBLIC_URL", "TURNUP_HOST", "TURNUP_PORT")
WILDCARD_HOSTS = ("", "0.0.0.0", "::", "[::]")


class ServerEndpoint(Base):
    __tablename__ = "server_endpoint"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


def served_url(settings: Settings) -> str:
    """The base URL clients reach this server at: the configured public URL, else host and port (a
    wildcard listen address is shown as this machine's host name)."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = socket.gethostname() if settings.host in WILDCARD_HOSTS else settings.host
    return f"http://{host}:{settings.port}"


def record(session: Session, url: str) -> None:
    """Record the served base URL (commits)."""
    row = session.get(ServerEndpoint, API_ENDPOINT)
    if row is None:
        session.add(ServerEndpoint(name=API_ENDPOINT, url=url, updated_at=clock.now()))
    else:
        row.url, row.updated_at = url, clock.now()
    session.commit()


def recorded(session: Session) -> str | None:
    """The base URL the server last recorded, or None (none yet, or a database not migrated yet)."""
    try:
        return session.scalar(select(ServerEndpoint.url).where(ServerEndpoint.name == API_ENDPOINT))
    except SQLAlchemyError:
        session.rollback()
        return None


def configured_here() -> bool:
    """True when this process was told its URL (then the recorded one is not used)."""
    return any(os.environ.get(name) for name in URL_ENV)
