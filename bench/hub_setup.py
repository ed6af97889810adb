"""A throwaway hub: environment, ``licence-hub init``, seeded clients, client assertions, PostgreSQL database."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import psycopg
from cryptography.hazmat.primitives.asymmetric import ec

from bench.servers import HOST, REPO, venv_bin

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
SCOPES = "licence:read"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME_S = 280  # the hub refuses more than 300 s (HUB_CLIENT_ASSERTION_MAX_LIFETIME_SECONDS)


@dataclass(frozen=True)
class SeededClients:
    secret_client_id: str
    secret: str
    jwt_client_id: str
    jwt_key: ec.EllipticCurvePrivateKey
    jwt_kid: str

    @property
    def basic_authorization(self) -> str:
        raw = f"{self.secret_client_id}:{self.secret}".encode()
        return "Basic " + base64.b64encode(raw).decode()


def hub_environment(data_dir: Path, port: int, database_url: str | None) -> dict[str, str]:
    """The process environment of every hub command: ours, with any inherited HUB_* removed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        HUB_ENV="test",
        HUB_DATA_DIR=str(data_dir),
        HUB_MASTER_KEY=base64.b64encode(secrets.token_bytes(32)).decode(),
        HUB_PUBLIC_URL=f"http://{HOST}:{port}",
        HUB_LOG_LEVEL="WARNING",
    )
    if database_url is not None:
        env["HUB_DATABASE_URL"] = database_url
    return env


def run_init(env: Mapping[str, str], log_dir: Path) -> dict[str, Any]:
    done = subprocess.run(
        [venv_bin("licence-hub"), "init", "--json"],
        cwd=REPO,
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
    )
    (log_dir / "init.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"licence-hub init failed ({done.returncode}):\n{done.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(done.stdout)
    return report


@contextmanager
def _environ(env: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _random_uscc() -> str:
    from hub.codes import USCC_ALPHABET, make_uscc  # noqa: PLC0415 - hub imports are deferred to use time

    return make_uscc("1", "1", "330100", "".join(secrets.choice(USCC_ALPHABET) for _ in range(8)))


def _p256_key() -> tuple[ec.EllipticCurvePrivateKey, dict[str, Any]]:
    private = ec.generate_private_key(ec.SECP256R1())
    public: dict[str, Any] = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
    public["kid"] = secrets.token_hex(4)
    return private, public


def seed_clients(env: Mapping[str, str]) -> SeededClients:
    """One department with a client_secret_basic and a private_key_jwt client, committed in-process."""
    from hub.identity import service as identity  # noqa: PLC0415
    from hub.runtime import build_runtime  # noqa: PLC0415
    from hub.settings import Settings  # noqa: PLC0415

    with _environ(env):
        runtime = build_runtime(Settings())
    private, public = _p256_key()
    try:
        with runtime.session_scope() as session:
            department = identity.create_department(
                session, code=_random_uscc(), name="临江市基准测试局", level="municipal", area_code="330100"
            )
            basic, secret = identity.create_client(session, department_code=department.code, scopes=SCOPES)
            signed, _ = identity.create_client(
                session, department_code=department.code, scopes=SCOPES, jwks={"keys": [public]}
            )
            ids = (basic.client_id, signed.client_id)
    finally:
        runtime.engine.dispose()
    assert secret is not None
    return SeededClients(ids[0], secret, ids[1], private, str(public["kid"]))


def assertion_bodies(clients: SeededClients, token_endpoint: str, count: int) -> list[str]:
    """``count`` token request bodies, each with a fresh ES256 client assertion (unique jti)."""
    now = int(time.time())
    prefix = f"grant_type=client_credentials&client_assertion_type={ASSERTION_TYPE}&client_assertion="
    headers = {"kid": clients.jwt_kid}
    claims = {"iss": clients.jwt_client_id, "sub": clients.jwt_client_id, "aud": token_endpoint, "iat": now}
    claims["exp"] = now + ASSERTION_LIFETIME_S
    bodies = []
    for _ in range(count):
        claims["jti"] = secrets.token_urlsafe(16)
        bodies.append(prefix + jwt.encode(claims, clients.jwt_key, algorithm="ES256", headers=headers))
    return bodies


def postgres_available(dsn: str = PG_ADMIN_DSN) -> tuple[bool, str]:
    """Whether PostgreSQL answers at ``dsn``, and its version or the reason it does not."""
    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error as exc:
        return False, f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    return True, str(row[0]) if row else "unknown"


@contextmanager
def throwaway_database(dsn: str = PG_ADMIN_DSN) -> Iterator[str]:
    """CREATE a ``licencehub_bench_<random>`` database, yield its SQLAlchemy URL, DROP it WITH (FORCE)."""
    name = f"licencehub_bench_{secrets.token_hex(4)}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        base = dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
