"""Conversions between the libpq-style URL we configure and driver URLs."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def plain_url(url: str) -> str:
    """``postgresql://…`` for asyncpg, whatever driver suffix was configured."""
    parts = urlsplit(url)
    scheme = "postgresql"
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, parts.fragment))


def sqlalchemy_url(url: str) -> str:
    """``postgresql+asyncpg://…`` for SQLAlchemy's async engine."""
    parts = urlsplit(plain_url(url))
    return urlunsplit(("postgresql+asyncpg", parts.netloc, parts.path, parts.query, ""))


def with_database(url: str, database: str) -> str:
    """The same server, another database."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "postgres"
