"""The measured scenarios: the bare FastAPI baseline and the hub's token issuance and validation."""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
from argon2 import PasswordHasher

from bench import hub_setup
from bench.cpu import machine_busy_seconds
from bench.loadgen import CONNECTIONS, WrkResult, run_wrk
from bench.servers import Server, free_port, hub_command, serving, uvicorn_bare_command

FORM = "application/x-www-form-urlencoded"
CLIENT_CREDENTIALS_FORM = "grant_type=client_credentials"
POOL_HEADROOM = 1.25  # assertions per request the bare endpoint could serve in the same time


@dataclass(frozen=True)
class Run:
    """What every scenario of one invocation shares: the load tool, the run length, a scratch directory."""

    wrk: str
    duration_s: int
    tmp: Path


@dataclass(frozen=True)
class Measurement:
    """One wrk run and the CPU time around it: the server's, wrk's and everyone else's on the machine."""

    wrk: WrkResult
    server_cpu_s: float
    machine_busy_s: float
    duration_s: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.wrk.rps

    @property
    def other_cpu_cores(self) -> float:
        """Cores busy with neither server nor wrk (other work on the machine: a noise indicator)."""
        return max(0.0, self.machine_busy_s - self.server_cpu_s - self.wrk.cpu_s) / self.duration_s

    def as_dict(
        self, bare_get_rps: float, bare_post_rps: float | None = None, *, bare_async_rps: float | None = None
    ) -> dict[str, Any]:
        """Figures and their ratios to the bare endpoints measured in the same run.

        ``ratio_to_bare`` is to ``bare_get_rps`` (the ``def`` endpoint); when given, ``ratio_to_bare_async`` is to
        the ``async def`` endpoint (the one the targets are judged on) and ``ratio_to_bare_post_form`` to the form POST.
        """
        result = self.wrk
        data: dict[str, Any] = {
            "rps": round(result.rps, 1),
            "p50_ms": round(result.p50_ms, 2),
            "p99_ms": round(result.p99_ms, 2),
            "errors": result.errors,
            "ratio_to_bare": round(result.rps / bare_get_rps, 4),
        }
        if bare_async_rps:
            data["ratio_to_bare_async"] = round(result.rps / bare_async_rps, 4)
        if bare_post_rps:
            data["ratio_to_bare_post_form"] = round(result.rps / bare_post_rps, 4)
        data |= {
            "requests": result.requests,
            "server_cpu_ms_per_req": round(1000 * self.server_cpu_s / max(result.requests, 1), 3),
            "server_cpu_cores": round(self.server_cpu_s / self.duration_s, 2),
            "wrk_cpu_cores": round(result.cpu_s / self.duration_s, 2),
            "other_cpu_cores": round(self.other_cpu_cores, 2),
        }
        if result.errors:
            data["error_detail"] = {"non_2xx": result.non_2xx, "socket_errors": result.socket_errors}
        return data | self.extra


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def measure(
    run: Run,
    server: Server,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    script: str | None = None,
    script_args: list[str] | None = None,
    connections: int = CONNECTIONS,
    threads: int = 1,
) -> Measurement:
    """One wrk run against ``server``, with the CPU time spent during it."""
    server_before, busy_before = server.cpu_seconds(), machine_busy_seconds()
    result = run_wrk(
        run.wrk,
        server.base_url + path,
        duration_s=run.duration_s,
        headers=headers,
        script=script,
        script_args=script_args,
        connections=connections,
        threads=threads,
    )
    measured = Measurement(
        wrk=result,
        server_cpu_s=server.cpu_seconds() - server_before,
        machine_busy_s=machine_busy_seconds() - busy_before,
        duration_s=run.duration_s,
    )
    shown = path if len(path) <= 60 else path[:57] + "…"  # a presentation token is ~2 kB
    log(
        f"{server.name} {shown}: {result.rps:.1f} req/s, p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, "
        f"errors {result.errors}, other load {measured.other_cpu_cores:.2f} cores"
    )
    return measured


def _warm(client: httpx.Client, count: int, method: str, path: str, **kwargs: Any) -> None:
    """Exercise a route before measuring it (lazy imports, statement caches); every answer must be 2xx."""
    for _ in range(count):
        response = client.request(method, path, **kwargs)
        if not response.is_success:
            raise RuntimeError(f"warm-up {method} {path} answered {response.status_code}: {response.text[:500]}")


def run_baseline(run: Run, *, closing: bool = False) -> dict[str, Measurement]:
    """The bare FastAPI app: GET /ping (the ratio baseline) and POST /form (form parsing included).

    The closing run, after the hub scenarios, repeats GET /ping only, to bracket drift in the baseline.
    """
    port = free_port()
    name = "bare-closing" if closing else "bare"
    command = uvicorn_bare_command(port)
    with serving(name, command, port=port, env=dict(os.environ), log_dir=run.tmp, ready_path="/ping") as server:
        with httpx.Client(base_url=server.base_url) as client:
            _warm(client, 200, "GET", "/ping")
            _warm(client, 200, "POST", "/form", content=CLIENT_CREDENTIALS_FORM, headers={"content-type": FORM})
        if closing:
            return {"bare_get": measure(run, server, "/ping")}
        return {
            "bare_get": measure(run, server, "/ping"),
            "bare_post_form": measure(
                run,
                server,
                "/form",
                headers={"Content-Type": FORM},
                script="post_form.lua",
                script_args=[CLIENT_CREDENTIALS_FORM],
            ),
        }


def _access_token(client: httpx.Client, clients: hub_setup.SeededClients) -> str:
    response = client.post(
        "/oauth/token",
        content=CLIENT_CREDENTIALS_FORM,
        headers={"content-type": FORM, "authorization": clients.basic_authorization},
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def _warm_hub(client: httpx.Client, clients: hub_setup.SeededClients, token: str, endpoint: str) -> None:
    _warm(client, 200, "GET", "/healthz")
    _warm(client, 200, "GET", "/v1/whoami", headers={"authorization": f"Bearer {token}"})
    basic = {"content-type": FORM, "authorization": clients.basic_authorization}
    _warm(client, 3, "POST", "/oauth/token", content=CLIENT_CREDENTIALS_FORM, headers=basic)
    for body in hub_setup.assertion_bodies(clients, endpoint, 100):
        _warm(client, 1, "POST", "/oauth/token", content=body, headers={"content-type": FORM})


def _jwt_scenario(
    run: Run, server: Server, clients: hub_setup.SeededClients, endpoint: str, pool_size: int
) -> Measurement:
    """Fresh single-use assertions, more than the run can consume; the Lua script takes one per request."""
    started = time.perf_counter()
    bodies = hub_setup.assertion_bodies(clients, endpoint, pool_size)
    pool_file = run.tmp / f"assertions-{server.name}.txt"
    pool_file.write_text("\n".join(bodies) + "\n")
    log(f"{pool_size} client assertions signed in {time.perf_counter() - started:.1f} s")
    result = measure(
        run,
        server,
        "/oauth/token",
        headers={"Content-Type": FORM},
        script="post_lines.lua",
        script_args=[str(pool_file)],
    )
    exhausted = result.wrk.requests + CONNECTIONS > pool_size
    return replace(result, extra={"assertion_pool": pool_size, "pool_exhausted": exhausted})


def run_hub(run: Run, backend: str, database_url: str | None, bare_get_rps: float) -> dict[str, Measurement]:
    """Init, seed and serve a fresh hub on ``backend``, then measure every hub scenario against it."""
    work = run.tmp / backend
    work.mkdir()
    port = free_port()
    env = hub_setup.hub_environment(work / "data", port, database_url)
    hub_setup.run_init(env, work)
    clients = hub_setup.seed_clients(env)
    endpoint = f"{env['HUB_PUBLIC_URL']}/oauth/token"
    pool_size = max(2000, math.ceil(bare_get_rps * run.duration_s * POOL_HEADROOM))
    with serving(f"hub-{backend}", hub_command(port), port=port, env=env, log_dir=work, ready_path="/readyz") as server:
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            token = _access_token(client, clients)
            _warm_hub(client, clients, token, endpoint)
        results = {
            "hub_healthz": measure(run, server, "/healthz"),
            "validate_token": measure(run, server, "/v1/whoami", headers={"Authorization": f"Bearer {token}"}),
            "token_private_key_jwt": _jwt_scenario(
                Run(run.wrk, run.duration_s, work), server, clients, endpoint, pool_size
            ),
            "token_secret_basic": measure(
                run,
                server,
                "/oauth/token",
                headers={"Content-Type": FORM, "Authorization": clients.basic_authorization},
                script="post_form.lua",
                script_args=[CLIENT_CREDENTIALS_FORM],
            ),
        }
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} died during the run:\n{server.log_tail()}")
    return results


def argon2_cost(samples: int = 5) -> dict[str, float]:
    """Wall and CPU time of one Argon2id verify with the hub's parameters (argon2-cffi defaults), in-process."""
    hasher = PasswordHasher()
    stored = hasher.hash("benchmark-secret")
    walls, cpus = [], []
    for _ in range(samples):
        wall, cpu = time.perf_counter(), time.process_time()
        hasher.verify(stored, "benchmark-secret")
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {
        "memory_kib": hasher.memory_cost,
        "time_cost": hasher.time_cost,
        "parallelism": hasher.parallelism,
        "verify_wall_ms": round(1000 * statistics.median(walls), 1),
        "verify_cpu_ms": round(1000 * statistics.median(cpus), 1),
    }
