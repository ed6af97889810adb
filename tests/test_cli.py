"""The ``licence-hub`` command line, run as a real process: init, demo, admin and serve."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from conftest import PG_ADMIN_DSN, create_pg_database, drop_pg_database, free_port, run_cli, stop_process
from factories import random_uscc

from hub.codes import validate_holder_code, validate_uscc
from hub.keys.masterkey import MasterKeyRing

PURPOSES = [
    "access-token",
    "dev-idp",
    "audit",
    "holder-ref",
    "ca-root",
    "ca-issuing",
    "tsa",
    "presentation",
    "status-list",
]


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of this process minus every HUB_ setting, then a demo hub in ``data_dir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(HUB_DATA_DIR=str(data_dir), HUB_ENV="demo", COLUMNS="200")
    env.update(extra)
    return env


def ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return done


def ok_json(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(ok(done).stdout)
    return loaded


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "var"


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    """One initialised embedded hub (SQLite + files) shared by the admin command tests."""
    base = tmp_path_factory.mktemp("cli-admin")
    env = cli_env(base / "var")
    ok(run_cli("init", env=env, cwd=base))
    return env, base


# ----------------------------------------------------------------------------- init


def test_module_entry_point_runs_the_app(tmp_path: Path) -> None:
    done = ok(run_cli("--help", env=cli_env(tmp_path / "var"), cwd=tmp_path))
    for command in ("init", "serve", "demo", "worker", "beat", "admin"):
        assert command in done.stdout
    assert not (tmp_path / "var").exists()  # --help touches nothing


def test_init_is_idempotent_and_keeps_the_master_key_private(data_dir: Path, tmp_path: Path) -> None:
    env = cli_env(data_dir)
    first = ok_json(run_cli("init", "--json", env=env, cwd=tmp_path))
    key_file = data_dir / "keys" / "master.key"
    assert first["master_key_created"] is True
    assert first["keys_created"] == PURPOSES
    assert Path(first["master_key_file"]) == key_file
    assert Path(first["data_dir"]) == data_dir.resolve()
    assert first["database"] == f"sqlite:///{(data_dir / 'hub.db').resolve()}"
    assert first["storage"] == (data_dir / "blobs").resolve().as_uri()
    assert mode(key_file) == 0o600
    assert mode(key_file.parent) == 0o700
    key = key_file.read_text()

    second = ok_json(run_cli("init", "--json", env=env, cwd=tmp_path))
    assert second["master_key_created"] is False
    assert second["keys_created"] == []
    assert key_file.read_text() == key
    assert mode(key_file) == 0o600


def test_init_with_the_master_key_in_the_environment_writes_no_key_file(data_dir: Path, tmp_path: Path) -> None:
    from conftest import MASTER_KEY

    report = ok_json(run_cli("init", "--json", env=cli_env(data_dir, HUB_MASTER_KEY=MASTER_KEY), cwd=tmp_path))
    assert report["keys_created"] == PURPOSES
    assert "master_key_created" not in report
    assert not (data_dir / "keys").exists()


def test_init_on_postgresql(data_dir: Path, tmp_path: Path) -> None:
    try:
        name, url = create_pg_database(PG_ADMIN_DSN)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required at {PG_ADMIN_DSN}: {exc}")
    try:
        env = cli_env(data_dir, HUB_DATABASE_URL=url)
        first = ok_json(run_cli("init", "--json", env=env, cwd=tmp_path))
        assert first["database"].startswith("postgresql+psycopg://")
        assert first["database"].endswith(f"/{name}")
        assert first["master_key_created"] is True
        assert first["keys_created"] == PURPOSES
        second = ok_json(run_cli("init", "--json", env=env, cwd=tmp_path))
        assert second["master_key_created"] is False
        assert second["keys_created"] == []
        assert not (data_dir / "hub.db").exists()  # the database really was PostgreSQL
        with psycopg.connect(f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}") as conn:
            purposes = [row[0] for row in conn.execute("SELECT purpose FROM hub_keys ORDER BY purpose")]
        assert purposes == sorted(PURPOSES)
    finally:
        drop_pg_database(PG_ADMIN_DSN, name)


# ----------------------------------------------------------------------------- demo


def test_demo_seeds_once_and_then_reuses_its_state(data_dir: Path, tmp_path: Path) -> None:
    env = cli_env(data_dir)
    first = ok(run_cli("demo", "--seed-only", env=env, cwd=tmp_path))
    assert "seeded now" in first.stdout
    credentials = data_dir / "demo-credentials.json"
    assert mode(credentials) == 0o600
    content = credentials.read_bytes()
    data = json.loads(content)

    departments = data["departments"]
    assert len(departments) == 6
    for department in departments:
        assert validate_uscc(department["code"]) == department["code"]
        assert isinstance(department["client_id"], str)
        assert department["client_id"]
        assert isinstance(department["client_secret"], str)
        assert len(department["client_secret"]) >= 32
        assert department["client_id"] in first.stdout
    assert len({d["client_id"] for d in departments}) == 6
    assert len({d["code"] for d in departments}) == 6
    assert data["holders"]
    assert {h["type"] for h in data["holders"]} == {"111", "001"}
    for holder in data["holders"]:
        assert validate_holder_code(holder["type"], holder["code"]) == holder["code"]
    assert str(credentials) in first.stdout
    # DESIGN.md §5: at least one complete exchange scenario (grant, materials held, consent where needed).
    assert len(data["scenarios"]) >= 1
    holder_codes = {h["code"] for h in data["holders"]}
    for scenario in data["scenarios"]:
        assert scenario["department_code"] in {d["code"] for d in departments}
        assert scenario["holder"]["code"] in holder_codes
        assert scenario["matter_code"].startswith(scenario["department_code"])

    copy = tmp_path / "copy.json"
    second = ok(run_cli("demo", "--seed-only", "--credentials", str(copy), env=env, cwd=tmp_path))
    assert "reusing existing state" in second.stdout
    assert "seeded now" not in second.stdout
    assert credentials.read_bytes() == content
    assert mode(credentials) == 0o600
    assert copy.read_bytes() == content
    assert mode(copy) == 0o600


# ----------------------------------------------------------------------------- admin


def test_create_department_then_client(initialised: tuple[dict[str, str], Path]) -> None:
    env, cwd = initialised
    code = random_uscc()
    department = ok_json(
        run_cli("admin", "create-department", "--code", code, "--name", "临江市测试局", "--json", env=env, cwd=cwd)
    )
    assert department == {"code": code, "name": "临江市测试局", "level": "municipal", "area_code": "330100"}

    client = ok_json(
        run_cli("admin", "create-client", "--department", code, "--scopes", "licence:read", "--json", env=env, cwd=cwd)
    )
    assert client["client_id"].startswith(code[-8:].lower() + "-")
    assert isinstance(client["client_secret"], str)
    assert len(client["client_secret"]) >= 32
    assert client["scopes"] == "licence:read"
    assert client["token_endpoint_auth_method"] == "client_secret_basic"

    again = ok_json(
        run_cli("admin", "create-client", "--department", code, "--scopes", "licence:read", "--json", env=env, cwd=cwd)
    )
    assert again["client_id"] != client["client_id"]
    assert again["client_secret"] != client["client_secret"]


def test_create_department_with_an_invalid_uscc_exits_2(initialised: tuple[dict[str, str], Path]) -> None:
    env, cwd = initialised
    valid = random_uscc()
    broken = valid[:-1] + ("0" if valid[-1] != "0" else "1")  # wrong check character
    done = run_cli("admin", "create-department", "--code", broken, "--name", "临江市测试局", env=env, cwd=cwd)
    assert done.returncode == 2
    assert "invalid_uscc" in done.stderr
    assert done.stdout == ""


def test_create_department_twice_is_a_conflict(initialised: tuple[dict[str, str], Path]) -> None:
    env, cwd = initialised
    code = random_uscc()
    ok(run_cli("admin", "create-department", "--code", code, "--name", "临江市测试局", env=env, cwd=cwd))
    done = run_cli("admin", "create-department", "--code", code, "--name", "临江市测试局", env=env, cwd=cwd)
    assert done.returncode == 2
    assert "conflict" in done.stderr


def test_create_client_with_an_unknown_scope_exits_2(initialised: tuple[dict[str, str], Path]) -> None:
    env, cwd = initialised
    code = random_uscc()
    ok(run_cli("admin", "create-department", "--code", code, "--name", "临江市测试局", env=env, cwd=cwd))
    done = run_cli(
        "admin", "create-client", "--department", code, "--scopes", "licence:read licence:destroy", env=env, cwd=cwd
    )
    assert done.returncode == 2
    assert "invalid_input" in done.stderr
    assert "licence:destroy" in done.stderr
    assert done.stdout == ""


def test_create_client_for_an_unknown_department_exits_2(initialised: tuple[dict[str, str], Path]) -> None:
    env, cwd = initialised
    done = run_cli(
        "admin", "create-client", "--department", random_uscc(), "--scopes", "licence:read", env=env, cwd=cwd
    )
    assert done.returncode == 2
    assert "not_found" in done.stderr


def test_rewrap_moves_software_seal_keys_to_the_new_master_key(data_dir: Path, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    from hub.runtime import build_runtime
    from hub.settings import Settings
    from seals.keystore import SoftwareKeyStore

    old, new, stranger = (base64.b64encode(secrets.token_bytes(32)).decode() for _ in range(3))
    digest = hashlib.sha256(b"sealed after the rotation").digest()
    ok(run_cli("init", env=cli_env(data_dir, HUB_MASTER_KEY=old), cwd=tmp_path))

    def signer_under(master_key: str) -> tuple[ec.EllipticCurvePublicKey, bytes]:
        """Sign with the stored key as a hub configured with ``master_key`` would."""
        runtime = build_runtime(Settings(env="test", data_dir=data_dir, master_key=master_key))
        try:
            with runtime.session_scope() as session:
                signer = SoftwareKeyStore(runtime.master_keys).signer(session, key_id)
                return signer.public_key, signer.sign_digest(digest)
        finally:
            runtime.close()

    runtime = build_runtime(Settings(env="test", data_dir=data_dir, master_key=old))
    try:
        with runtime.session_scope() as session:
            key_id = SoftwareKeyStore(runtime.master_keys).create_key(session, label="电子证照专用章").key_id
    finally:
        runtime.close()

    refused = run_cli("admin", "rewrap", env=cli_env(data_dir, HUB_MASTER_KEY=stranger), cwd=tmp_path)
    assert refused.returncode == 2
    assert "master_key_unavailable" in refused.stderr
    rotating = cli_env(data_dir, HUB_MASTER_KEY=f"{new},{old}")  # new key first, old key second
    report = ok_json(run_cli("admin", "rewrap", "--json", env=rotating, cwd=tmp_path))
    assert report["rewrapped"]["seal_keys"] == 1
    assert report["master_key_id"] == MasterKeyRing.parse(new).current_id
    assert ok_json(run_cli("admin", "rewrap", "--json", env=rotating, cwd=tmp_path))["rewrapped"]["seal_keys"] == 0

    public_key, signature = signer_under(new)  # the old master key is gone from the ring
    public_key.verify(signature, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))


# ----------------------------------------------------------------------------- serve


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """Starts ``licence-hub serve`` on a free port and waits until /healthz and /readyz answer 200."""
    started: list[subprocess.Popen[bytes]] = []

    def start(data_dir: Path) -> str:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log_path = tmp_path / f"serve-{len(started)}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "hub.cli", "serve", "--port", str(port)],
                env=cli_env(data_dir, HUB_PUBLIC_URL=base),
                cwd=tmp_path,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started.append(process)
        deadline = time.monotonic() + 30
        pending = ["/healthz", "/readyz"]
        while pending:
            if process.poll() is not None:
                pytest.fail(f"serve exited with {process.returncode}:\n{log_path.read_text(errors='replace')}")
            if time.monotonic() > deadline:
                pytest.fail(f"serve was not ready within 30 s:\n{log_path.read_text(errors='replace')}")
            try:
                if httpx.get(base + pending[0], timeout=2).status_code == 200:
                    pending.pop(0)
                    continue
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        return base

    try:
        yield start, started
    finally:
        for process in started:
            stop_process(process)


def _kids(base: str) -> set[str]:
    response = httpx.get(f"{base}/.well-known/jwks.json", timeout=5)
    assert response.status_code == 200
    return {key["kid"] for key in response.json()["keys"]}


@pytest.mark.slow
def test_serve_initialises_a_fresh_directory_and_reuses_it_on_restart(
    serve: Any, data_dir: Path, tmp_path: Path
) -> None:
    start, started = serve
    base = start(data_dir)
    ready = httpx.get(f"{base}/readyz", timeout=5).json()
    assert ready["status"] == "ok"
    assert set(ready["checks"].values()) == {"ok"}
    key_file = data_dir / "keys" / "master.key"
    master_key = key_file.read_text()
    assert mode(key_file) == 0o600
    kids = _kids(base)
    assert len(kids) == 1
    stop_process(started[0])
    assert started[0].returncode is not None

    # Between runs: a client registered through the CLI against the same directory.
    env = cli_env(data_dir)
    code = random_uscc()
    ok(run_cli("admin", "create-department", "--code", code, "--name", "临江市测试局", env=env, cwd=tmp_path))
    client = ok_json(
        run_cli(
            "admin", "create-client", "--department", code, "--scopes", "licence:read", "--json", env=env, cwd=tmp_path
        )
    )

    base = start(data_dir)
    assert key_file.read_text() == master_key
    assert _kids(base) == kids
    token = httpx.post(
        f"{base}/oauth/token",
        data={"grant_type": "client_credentials", "scope": "licence:read"},
        auth=(client["client_id"], client["client_secret"]),
        timeout=10,
    )
    assert token.status_code == 200, token.text
    access_token = token.json()["access_token"]
    assert jwt.get_unverified_header(access_token)["kid"] in kids
    jwk = next(k for k in httpx.get(f"{base}/.well-known/jwks.json", timeout=5).json()["keys"] if k["kid"] in kids)
    verifier = jwt.PyJWK(jwk)
    claims = jwt.decode(access_token, verifier.key, algorithms=[verifier.algorithm_name], audience=f"{base}/v1")
    assert claims["scope"] == "licence:read"


def _process(data_dir: Path, ring: str, seal_keys: list[str], digest: bytes) -> dict[str, Any]:
    """What a process started with HUB_MASTER_KEY=ring can do: sign tokens, the audit key, webhook secrets, seals.

    The per-process key cache is emptied first, as a newly started process has it.
    """
    from hub.keys import service as keys
    from hub.runtime import build_runtime
    from hub.settings import Settings
    from hub.webhooks import service as webhooks
    from hub.webhooks.models import WebhookEndpoint
    from seals.keystore import SoftwareKeyStore

    keys._material_cache.clear()
    runtime = build_runtime(Settings(env="test", data_dir=data_dir, master_key=ring))
    try:
        with runtime.session_scope() as session:
            signing = keys.signing_key(session, runtime.master_keys, keys.ACCESS_TOKEN).kid
            audit = runtime.audit_signer.key_id
            hooks = [webhooks.endpoint_key(runtime.master_keys, e) for e in session.query(WebhookEndpoint)]
            store = SoftwareKeyStore(runtime.master_keys)
            sealed = [store.signer(session, k).sign_digest(digest) for k in seal_keys]
            return {"signing": signing, "audit": audit, "hooks": len(hooks), "seals": len(sealed)}
    finally:
        runtime.close()


def _seed_rotation(data_dir: Path, master_key: str) -> list[str]:
    """A seal key and a webhook endpoint secret, both under ``master_key``; the seal key ids."""
    from hub.identity import service as identity
    from hub.runtime import build_runtime
    from hub.settings import Settings
    from hub.webhooks import service as webhooks
    from seals.keystore import SoftwareKeyStore

    runtime = build_runtime(Settings(env="test", data_dir=data_dir, master_key=master_key))
    try:
        with runtime.session_scope() as session:
            seal_keys = [SoftwareKeyStore(runtime.master_keys).create_key(session, label="电子证照专用章").key_id]
            dept = identity.create_department(
                session, code=random_uscc(), name="临江市市场监督管理局", level="municipal", area_code="330100"
            ).code
            webhooks.register_endpoint(
                session, runtime.settings, runtime.master_keys, department_code=dept,
                url="https://hooks.example.gov.cn/licence", types=["cn.gov.licence-hub.licence.revoked"],
            )  # fmt: skip
    finally:
        runtime.close()
    return seal_keys


def test_the_master_key_rotates_without_downtime(data_dir: Path, tmp_path: Path) -> None:
    """docs/operations.md's rolling rotation: every step leaves every process able to read everything.

    "Processes" (runtimes with their own key ring) run side by side through the steps; `admin rewrap` moves
    everything; the old key then goes.
    """
    from hub.keys import service as keys
    from hub.runtime import build_runtime
    from hub.settings import Settings

    old, new = (base64.b64encode(secrets.token_bytes(32)).decode() for _ in range(2))
    ok(run_cli("init", env=cli_env(data_dir, HUB_MASTER_KEY=old), cwd=tmp_path))
    digest = hashlib.sha256(b"sealed during the rotation").digest()
    seal_keys = _seed_rotation(data_dir, old)
    before = _process(data_dir, old, seal_keys, digest)
    assert before["hooks"] == 1 and before["seals"] == 1

    # 1. Every process learns the new key, still writing under the old one: "old,new".
    assert _process(data_dir, f"{old},{new}", seal_keys, digest) == before
    # 2. One by one, processes write under the new key: "new,old". Old-first processes still read what they write.
    runtime = build_runtime(Settings(env="test", data_dir=data_dir, master_key=f"{new},{old}"))
    try:
        with runtime.session_scope() as session:
            rotated = keys.rotate_key(session, runtime.master_keys, keys.ACCESS_TOKEN).kid  # written under new
    finally:
        runtime.close()
    assert _process(data_dir, f"{old},{new}", seal_keys, digest)["signing"] == rotated
    assert _process(data_dir, f"{new},{old}", seal_keys, digest)["signing"] == rotated
    # 3. Rewrap everything still under the old key.
    rotating = cli_env(data_dir, HUB_MASTER_KEY=f"{new},{old}")
    report = ok_json(run_cli("admin", "rewrap", "--json", env=rotating, cwd=tmp_path))
    assert report["rewrapped"]["seal_keys"] == 1 and report["rewrapped"]["webhook_secrets"] == 1
    assert report["rewrapped"]["hub_keys"] >= 9  # every purpose's key, the retired access-token key too
    assert ok_json(run_cli("admin", "rewrap", "--json", env=rotating, cwd=tmp_path))["rewrapped"] == {
        "hub_keys": 0, "seal_keys": 0, "webhook_secrets": 0
    }  # fmt: skip
    # 4. The old key goes.
    assert _process(data_dir, new, seal_keys, digest) == {**before, "signing": rotated}
    with pytest.raises(Exception, match="master"):
        _process(data_dir, old, seal_keys, digest)  # a process with only the old key cannot read the new material
