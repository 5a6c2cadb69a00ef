"""Which log database ``--db`` names: a ``postgresql://`` URL (``polygen.pgstore``) or the path of
a SQLite file (``polygen.logstore``); ``open_store``/``open_reader`` open either."""

from __future__ import annotations

from pathlib import Path

from polygen.logstore import BaseLogStore, LogStore
from polygen.pgstore import PgLogStore, safe_url

__all__ = ["POSTGRES_SCHEMES", "describe_db", "is_postgres_url", "open_reader", "open_store"]

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(db: str | Path) -> bool:
    """Is ``--db`` a PostgreSQL URL (rather than the path of a SQLite file)?"""
    return isinstance(db, str) and db.startswith(POSTGRES_SCHEMES)


def describe_db(db: str | Path) -> str:
    """``db`` as shown to people: a URL loses its password."""
    if is_postgres_url(db):
        return safe_url(db)
    return str(db)


def _backend(db: str | Path) -> type[BaseLogStore]:
    if is_postgres_url(db):
        return PgLogStore
    return LogStore


def open_store(db: str | Path) -> BaseLogStore:
    """Open the log database ``db``: a ``postgresql://`` URL (``polygen.pgstore``) or a SQLite path."""
    return _backend(db).open(db)


def open_reader(db: str | Path) -> BaseLogStore:
    """A connection of its own to the existing log database ``db`` that only reads (the sidecar's
    health check): SQLite read-only, PostgreSQL a session in read-only mode."""
    return _backend(db).open_reader(db)
