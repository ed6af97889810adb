"""Database kernel: SQLite transaction modes and timezone-aware timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text
from sqlalchemy.exc import OperationalError, StatementError

from hub.db import UTCDateTime, begin_read_only, make_engine, make_session_factory

metadata = MetaData()
events = Table("events", metadata, Column("id", Integer, primary_key=True), Column("at", UTCDateTime()))


def test_sqlite_readers_run_beside_the_writer_and_writers_queue(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}", sqlite_busy_seconds=0.2)
    metadata.create_all(engine)
    sessions = make_session_factory(engine)
    with sessions() as writer, sessions() as reader, sessions() as second_writer:
        writer.execute(insert(events).values(id=1, at=datetime.now(UTC)))  # holds the write lock, uncommitted
        begin_read_only(reader)
        assert reader.execute(select(events.c.id)).all() == []  # no wait, sees the last committed state
        with pytest.raises(OperationalError, match="locked"):
            second_writer.execute(text("SELECT 1"))  # BEGIN IMMEDIATE waits for the lock, then gives up
        writer.commit()
    engine.dispose()


def test_journal_mode_is_wal(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL: every commit is synced
    engine.dispose()


def test_timestamps_come_back_aware_in_utc(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    metadata.create_all(engine)
    beijing = timezone(timedelta(hours=8))
    moment = datetime(2026, 11, 23, 20, 0, tzinfo=beijing)
    with engine.begin() as conn:
        conn.execute(insert(events).values(id=1, at=moment))
        stored = conn.execute(select(events.c.at)).scalar_one()
    assert stored == moment
    assert stored.tzinfo == UTC
    with pytest.raises(StatementError, match="naive"), engine.begin() as conn:
        conn.execute(insert(events).values(id=2, at=datetime(2026, 1, 1)))  # noqa: DTZ001 - the point of the test
    engine.dispose()
