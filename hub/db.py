"""Database kernel: declarative base, portable column types, engine and session factories."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite stores no offset, so we restore it)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            msg = "naive datetimes are not stored; use hub.clock.utcnow()"
            raise ValueError(msg)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; take control
    # (SQLAlchemy docs, "Serializable isolation / Savepoints / Transactional DDL").
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: in WAL mode NORMAL does not sync the log at each commit, so a power cut could lose
    # an audit entry whose response already left ("no audit, no data" needs durable commits).
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # IMMEDIATE takes the single write lock up front: a deferred transaction that later
    # writes can fail with SQLITE_BUSY regardless of busy_timeout once another writer
    # committed after its read snapshot. Pure readers opt out with sqlite_begin="DEFERRED".
    mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
    conn.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str, *, sqlite_busy_seconds: float = 10.0, **kwargs: Any) -> Engine:
    """Engine for ``url``; SQLite gets WAL, foreign keys, explicit transactions and a lock wait."""
    if url.startswith("sqlite"):
        connect_args = {"check_same_thread": False, "timeout": sqlite_busy_seconds}
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    # No pre-ping: it cost a round trip on every checkout (every request). After a database restart the
    # first statement on a dead connection fails (503 with Retry-After); SQLAlchemy then invalidates the
    # whole pool, so the next request reconnects. Connections are also recycled after 30 minutes.
    kwargs.setdefault("pool_pre_ping", False)
    kwargs.setdefault("pool_recycle", 1800)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    return create_engine(url, **kwargs)


def begin_read_only(session: Session) -> None:
    """Declare a unit of work read-only before it starts.

    On SQLite its transaction then begins DEFERRED and runs beside the single writer (WAL readers
    never wait); nothing changes on PostgreSQL. A read-only unit of work that writes anyway may fail
    with "database is locked" if another writer committed meanwhile, which surfaces as a 503.
    """
    session.info["read_only"] = True
    if not session.in_transaction() and session.get_bind().dialect.name == "sqlite":
        session.connection(execution_options={"sqlite_begin": "DEFERRED"})


def make_session_factory(bind: Any, **kwargs: Any) -> sessionmaker[Session]:
    return sessionmaker(bind=bind, expire_on_commit=False, **kwargs)


def copy_rows(session: Session, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Stream ``rows`` into ``table`` with PostgreSQL's COPY, in the session's transaction.

    For a batch of rows: one command, without a parameterised statement bound per row in Python (psycopg's
    executemany sends and prepares each row). Values adapt as psycopg adapts them (wrap JSON in
    ``psycopg.types.json.Json``). PostgreSQL only (``COPY FROM STDIN``): check ``is_postgresql`` first.
    """
    connection = session.connection().connection.driver_connection
    if not isinstance(connection, psycopg.Connection):
        msg = "the PostgreSQL dialect runs on psycopg 3 (postgresql+psycopg://)"
        raise TypeError(msg)
    copy_into(connection, table, columns, rows)


def copy_into(
    connection: psycopg.Connection[Any], table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """:func:`copy_rows` on a plain psycopg connection."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"
