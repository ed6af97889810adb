"""``licence-hub verify FILE``: the seal report offline, from published roots and CRLs, with exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import run_cli

from hub.runtime import Runtime
from tests.seals.sealkit import SealKit, make_kit, sample_pdf


@pytest.fixture
def kit(runtime: Runtime) -> SealKit:
    return make_kit(runtime)


def offline_args(kit: SealKit, tmp_path: Path) -> list[str]:
    trust = kit.trust()
    args = ["--roots", str(kit.root_pem(tmp_path))]
    for n, crl in enumerate(trust.crls):
        (tmp_path / f"{n}.crl").write_bytes(crl)
        args += ["--crl", str(tmp_path / f"{n}.crl")]
    return args


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}


def test_offline_verify_passes_a_sealed_pdf_and_fails_a_tampered_one(kit: SealKit, tmp_path: Path) -> None:
    sealed = kit.sign(sample_pdf())
    (tmp_path / "ok.pdf").write_bytes(sealed)
    done = run_cli("verify", str(tmp_path / "ok.pdf"), *offline_args(kit, tmp_path), "--json", env=env(), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["verdict"] == "TOTAL-PASSED"
    assert report["signatures"][0]["signer"]["organization_identifier"] == kit.owner.code

    at = sealed.index(b"/Type /Catalog")
    (tmp_path / "bad.pdf").write_bytes(sealed[:at] + b"/Type /Catalof" + sealed[at + 14 :])
    done = run_cli("verify", str(tmp_path / "bad.pdf"), *offline_args(kit, tmp_path), env=env(), cwd=tmp_path)
    assert done.returncode == 1
    assert "TOTAL-FAILED" in done.stdout


def test_missing_file_and_bad_roots_are_usage_errors(kit: SealKit, tmp_path: Path) -> None:
    done = run_cli(
        "verify", str(tmp_path / "absent.pdf"), "--roots", str(kit.root_pem(tmp_path)), env=env(), cwd=tmp_path
    )
    assert done.returncode == 2
    (tmp_path / "x.pdf").write_bytes(sample_pdf())
    (tmp_path / "junk.pem").write_text("not a certificate")
    done = run_cli("verify", str(tmp_path / "x.pdf"), "--roots", str(tmp_path / "junk.pem"), env=env(), cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
