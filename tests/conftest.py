"""Shared fixtures: each database backend built by the real migrations, one rolled-back transaction per test."""

from __future__ import annotations

import base64
import os
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer
from sqlalchemy import Connection, Engine

from audit import service as audit_service
from hub import migrate
from hub.api.app import create_app
from hub.bootstrap import initialise
from hub.db import make_engine, make_session_factory
from hub.keys import service as keys
from hub.keys.masterkey import MasterKeyRing
from hub.runtime import Runtime, build_runtime
from hub.settings import Settings
from hub.storage import LocalBlobStore
from seals import service as pki_service

PG_ADMIN_DSN = os.environ.get("HUB_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = [b for b in os.environ.get("HUB_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]
MASTER_KEY = base64.b64encode(secrets.token_bytes(32)).decode()
PUBLIC_URL = "http://testserver"
# The SoftHSM2 test token (seal keys in an HSM, issue 4): one token directory per test run.
SOFTHSM2_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
TOKEN = "licence-hub"
PIN = "1234"
SO_PIN = "5678"
PIN_CHECK_TOKEN = "licence-hub-pin-check"  # never logged in before its test, so a wrong PIN reaches C_Login


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``licence-hub ARGS`` in a subprocess, as a person or cron would run it."""
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it does not exit within 15 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 HTTP endpoint on loopback (moto's server), as ``host:port``; stopped after the run."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private SoftHSM2 token directory; SOFTHSM2_CONF is set before the module is first loaded."""
    base = tmp_path_factory.mktemp("softhsm")
    tokens = base / "tokens"
    tokens.mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOFTHSM2_CONF", str(conf))
        for label in (TOKEN, PIN_CHECK_TOKEN):
            subprocess.run(
                ["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", SO_PIN],  # noqa: S607
                check=True,
                capture_output=True,
            )
        yield conf


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The real PostgreSQL of this machine; the suite fails (never skips) without it."""
    try:
        with psycopg.connect(PG_ADMIN_DSN, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required at {PG_ADMIN_DSN}: {exc}")
    return PG_ADMIN_DSN


def create_pg_database(admin_dsn: str) -> tuple[str, str]:
    name = f"licencehub_test_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return name, f"{base}/{name}"


def drop_pg_database(admin_dsn: str, name: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway database per backend and run: a SQLite file, or a PostgreSQL database dropped after."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'hub.db'}"
        return
    admin = request.getfixturevalue("postgres_server")
    name, url = create_pg_database(admin)
    try:
        yield url
    finally:
        drop_pg_database(admin, name)


@pytest.fixture(scope="session")
def master_keys() -> MasterKeyRing:
    return MasterKeyRing.parse(MASTER_KEY)


@pytest.fixture(scope="session")
def engine(database_url: str, master_keys: MasterKeyRing) -> Iterator[Engine]:
    """The schema comes from the Alembic migrations, never from ``create_all``."""
    eng = make_engine(database_url)
    migrate.upgrade(eng)
    with make_session_factory(eng)() as session:
        keys.ensure_keys(session, master_keys)
        audit_service.fix_origin(session, "testserver/audit")
        pki_service.ensure_cas(session, master_keys, organization="licence-hub test", public_url=PUBLIC_URL)
        pki_service.ensure_tsa(session, master_keys, organization="licence-hub test", public_url=PUBLIC_URL)
        for ca in (pki_service.ROOT, pki_service.ISSUING):
            pki_service.refresh_crl(session, master_keys, ca)
        session.commit()
    yield eng
    eng.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """One outer transaction per test, rolled back at the end; sessions commit into savepoints."""
    conn = engine.connect()
    outer = conn.begin()
    try:
        yield conn
    finally:
        outer.rollback()
        conn.close()


@pytest.fixture
def make_settings(database_url: str, tmp_path: Path) -> Any:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "env": "test",
            "data_dir": tmp_path / "var",
            "database_url": database_url,
            "master_key": MASTER_KEY,
            "public_url": PUBLIC_URL,
            "log_json": False,
            "inline_jobs": True,
        }
        values.update(overrides)
        return Settings(**values)

    return build


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    built: Settings = make_settings()
    return built


@pytest.fixture
def make_runtime(engine: Engine, connection: Connection, tmp_path: Path) -> Any:
    def build(settings: Settings) -> Runtime:
        return Runtime(
            settings=settings,
            engine=engine,
            session_factory=make_session_factory(connection, join_transaction_mode="create_savepoint"),
            storage=LocalBlobStore(tmp_path / "blobs"),
        )

    return build


@pytest.fixture
def runtime(make_runtime: Any, settings: Settings) -> Runtime:
    built: Runtime = make_runtime(settings)
    return built


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def kit(client: TestClient, runtime: Runtime) -> Any:
    """An issuing department with a licence seal and a client, and the demo licence types (tests/licences)."""
    from tests.licences.licencekit import make_licence_kit

    return make_licence_kit(client, runtime)


@pytest.fixture
def ckit(client: TestClient, runtime: Runtime) -> Any:
    """A provider, a consumer and an admin department with catalogue clients (tests/catalog)."""
    from tests.catalog.catalogkit import make_catalog_kit

    return make_catalog_kit(client, runtime)


@pytest.fixture
def live_runtime(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Runtime]:
    """A runtime on its own committed database (fresh per test), as in production."""
    name = None
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'live.db'}"
    else:
        admin = request.getfixturevalue("postgres_server")
        name, url = create_pg_database(admin)
    settings = Settings(
        env="test",
        data_dir=tmp_path / "var",
        database_url=url,
        master_key=base64.b64encode(secrets.token_bytes(32)).decode(),
        public_url="http://testserver",
        inline_jobs=True,
    )
    runtime = build_runtime(settings)
    initialise(runtime)
    try:
        yield runtime
    finally:
        runtime.close()
        if name is not None:
            drop_pg_database(request.getfixturevalue("postgres_server"), name)
