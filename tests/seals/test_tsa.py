"""The hub TSA (RFC 3161): tokens checked by OpenSSL, pyHanko and asn1crypto; refusals for hostile queries."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
import uvicorn
from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from conftest import free_port
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko.sign.validation.status import TimestampSignatureStatus
from pyhanko_certvalidator import ValidationContext
from sqlalchemy import Engine

from hub.api.app import create_app
from hub.clock import utcnow
from hub.db import make_session_factory
from hub.runtime import Runtime
from hub.settings import Settings
from hub.storage import LocalBlobStore
from seals import pki, service, tsa
from seals.errors import TimestampImprintInvalid, TimestampUnitUnavailable
from seals.models import IssuedCertificate, TimestampUnit

QUERY_TYPE = "application/timestamp-query"
QUERY = {"Content-Type": QUERY_TYPE}
DATA = "出生医学证明 — 临江市 2026-000123\n".encode()


def openssl(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=False, cwd=cwd)  # noqa: S607


def der_to_pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def trust(client: TestClient, tmp_path: Path) -> dict[str, Path]:
    """The published root (trust anchor), the untrusted intermediates and the data file, as files."""
    root = tmp_path / "root.pem"
    root.write_text(client.get("/v1/pki/roots.pem").text)
    chain = tmp_path / "chain.pem"
    chain.write_bytes(der_to_pem(client.get("/v1/pki/ca/issuing.cer").content))
    tsa_pem = tmp_path / "tsa.pem"
    tsa_pem.write_bytes(der_to_pem(client.get("/v1/pki/tsa.cer").content))
    data = tmp_path / "data.txt"
    data.write_bytes(DATA)
    return {"root": root, "chain": chain, "tsa": tsa_pem, "data": data}


def post_query(client: TestClient, query: bytes, tmp_path: Path, name: str = "resp.tsr") -> Path:
    response = client.post("/v1/tsa", content=query, headers=QUERY)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/timestamp-reply"
    assert response.headers["cache-control"] == "no-store"
    path = tmp_path / name
    path.write_bytes(response.content)
    return path


def openssl_query(tmp_path: Path, *options: str, name: str = "req.tsq") -> Path:
    path = tmp_path / name
    done = openssl("ts", "-query", "-data", str(tmp_path / "data.txt"), *options, "-out", str(path))
    assert done.returncode == 0, done.stderr
    return path


def openssl_verify(
    reply: Path, trust: dict[str, Path], *, data: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return openssl(
        "ts", "-verify", "-data", str(data or trust["data"]), "-in", str(reply),
        "-CAfile", str(trust["root"]), "-untrusted", str(trust["chain"]),
    )  # fmt: skip


class TimeStampResp(tsp.TimeStampResp):
    """asn1crypto's, with timeStampToken OPTIONAL as in RFC 3161 §2.4.2: a rejection MUST NOT carry one.

    (asn1crypto 1.5 declares it required, so its parser, and pyHanko's client, fail on any rejection.)
    """

    _fields: ClassVar[list[Any]] = [
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


def sha2(name: str) -> algos.DigestAlgorithm:
    """A SHA-2 AlgorithmIdentifier with parameters absent, as RFC 5754 §2 says to generate them.

    Parsed, not constructed: asn1crypto's constructor forces NULL parameters onto digest algorithms.
    """
    oid = core.ObjectIdentifier(algos.DigestAlgorithmId.unmap(name)).dump()
    return algos.DigestAlgorithm.load(bytes((0x30, len(oid))) + oid)


def reply_status(der: bytes) -> tuple[str, set[str]]:
    reply = TimeStampResp.load(der, strict=True)
    return reply["status"]["status"].native, set(reply["status"]["fail_info"].native or ())


def request_der(
    imprint: bytes | None = None,
    *,
    algorithm: str = "sha256",
    policy: str | None = None,
    nonce: int | None = None,
    cert_req: bool = True,
    extensions: list[dict[str, Any]] | None = None,
) -> bytes:
    fields: dict[str, Any] = {
        "version": "v1",
        "message_imprint": {
            "hash_algorithm": {"algorithm": algorithm},
            "hashed_message": hashlib.new(algorithm, DATA).digest() if imprint is None else imprint,
        },
        "cert_req": cert_req,
    }
    if policy is not None:
        fields["req_policy"] = policy
    if nonce is not None:
        fields["nonce"] = nonce
    if extensions is not None:
        fields["extensions"] = extensions
    return tsp.TimeStampReq(fields).dump()


# ----------------------------------------------------------------------------- the certificate


def test_tsa_certificate_is_for_timestamping_only_and_chains_to_the_root(
    client: TestClient, trust: dict[str, Path]
) -> None:
    text = openssl("x509", "-in", str(trust["tsa"]), "-noout", "-text").stdout
    assert "X509v3 Extended Key Usage: critical\n                Time Stamping\n" in text
    assert "X509v3 Key Usage: critical\n                Digital Signature, Non Repudiation\n" in text
    assert "CA:FALSE" in text
    assert "http://testserver/v1/pki/crl/issuing.crl" in text
    done = openssl(
        "verify", "-purpose", "timestampsign", "-CAfile", str(trust["root"]), "-untrusted", str(trust["chain"]),
        str(trust["tsa"]),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    cert = x509.load_pem_x509_certificate(trust["tsa"].read_bytes())
    issuing = x509.load_pem_x509_certificate(trust["chain"].read_bytes())
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki == issuing.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert client.get("/v1/pki/tsa.cer").headers["content-type"] == "application/pkix-cert"


def test_ensure_tsa_is_idempotent_and_renews_a_certificate_about_to_expire(runtime: Runtime) -> None:
    with runtime.session_scope() as session:
        assert not service.ensure_tsa(session, runtime.master_keys, organization="x", public_url="http://testserver")
        unit = session.get(TimestampUnit, service.TSA_UNIT)
        assert unit is not None
        first = unit.certificate_serial
        old = session.get(IssuedCertificate, first)
        assert old is not None
        assert old.ca_name == service.ISSUING
        before = service.get_timestamper(session, runtime.master_keys)
        assert service.get_timestamper(session, runtime.master_keys) is before  # cached: one key load
        old.not_after = utcnow() + timedelta(days=10)
        assert service.ensure_tsa(session, runtime.master_keys, organization="x", public_url="http://testserver")
        assert unit.certificate_serial != first
        renewed = service.get_timestamper(session, runtime.master_keys)
        assert renewed is not before
        assert f"{renewed.certificate.serial_number:x}" == unit.certificate_serial
        assert renewed.certificate.public_key() == before.certificate.public_key()  # same TSA key, re-certified
        assert not service.ensure_tsa(session, runtime.master_keys, organization="x", public_url="http://testserver")


def test_a_revoked_tsa_certificate_stops_the_service(client: TestClient, runtime: Runtime) -> None:
    with runtime.session_scope() as session:
        serial = service.get_tsa_certificate_or_raise(session).serial
        service.revoke(session, runtime.master_keys, serial, reason=x509.ReasonFlags.key_compromise)
        with pytest.raises(TimestampUnitUnavailable):
            service.get_timestamper(session, runtime.master_keys)
        # ...and is not silently re-certified for the same (perhaps compromised) key.
        assert not service.ensure_tsa(session, runtime.master_keys, organization="x", public_url="http://testserver")
    response = client.post("/v1/tsa", content=request_der(), headers=QUERY)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "tsa_unavailable"
    crl = x509.load_der_x509_crl(client.get("/v1/pki/crl/issuing.crl").content)
    assert crl.get_revoked_certificate_by_serial_number(int(serial, 16)) is not None


# ----------------------------------------------------------------------------- OpenSSL end to end


def test_openssl_verifies_a_token_for_an_openssl_query(
    client: TestClient, trust: dict[str, Path], tmp_path: Path
) -> None:
    query = openssl_query(tmp_path, "-sha256", "-cert", "-no_nonce")
    reply = post_query(client, query.read_bytes(), tmp_path)
    done = openssl_verify(reply, trust)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Verification: OK" in done.stdout
    text = openssl("ts", "-reply", "-in", str(reply), "-text").stdout
    assert "Status: Granted." in text
    assert f"Policy OID: {tsa.HUB_TSA_POLICY}" in text
    assert "Nonce: unspecified" in text
    assert "Accuracy: 0x01 seconds" in text


def test_openssl_verifies_the_nonce_and_imprint_against_the_query(
    client: TestClient, trust: dict[str, Path], tmp_path: Path
) -> None:
    query = openssl_query(tmp_path, "-sha512", "-cert")  # openssl adds a random 64-bit nonce by default
    nonce = tsp.TimeStampReq.load(query.read_bytes())["nonce"].native
    assert nonce is not None
    reply = post_query(client, query.read_bytes(), tmp_path)
    token_nonce = TimeStampResp.load(reply.read_bytes())["time_stamp_token"]["content"]["encap_content_info"][
        "content"
    ].parsed["nonce"]
    assert token_nonce.native == nonce
    for check in (("-queryfile", str(query)), ("-data", str(trust["data"]))):
        done = openssl(
            "ts", "-verify", *check, "-in", str(reply), "-CAfile", str(trust["root"]), "-untrusted", str(trust["chain"])
        )  # fmt: skip
        assert "Verification: OK" in done.stdout, done.stdout + done.stderr
    # A reply to another query (other nonce) does not verify against this one.
    other_query = openssl_query(tmp_path, "-sha512", "-cert", name="other.tsq")
    other = post_query(client, other_query.read_bytes(), tmp_path, "other.tsr")
    mismatch = openssl(
        "ts", "-verify", "-queryfile", str(query), "-in", str(other), "-CAfile", str(trust["root"]),
        "-untrusted", str(trust["chain"]),
    )  # fmt: skip
    assert mismatch.returncode != 0
    assert "nonce mismatch" in mismatch.stdout + mismatch.stderr


def test_other_data_and_tampered_tokens_fail_openssl(
    client: TestClient, trust: dict[str, Path], tmp_path: Path
) -> None:
    reply = post_query(client, openssl_query(tmp_path, "-sha256", "-cert").read_bytes(), tmp_path)
    assert openssl_verify(reply, trust).returncode == 0
    other = tmp_path / "other.txt"
    other.write_bytes(DATA + b"!")
    different = openssl_verify(reply, trust, data=other)
    assert different.returncode != 0
    assert "message imprint mismatch" in different.stdout + different.stderr

    der = reply.read_bytes()
    signature = bytearray(der)
    signature[-3] ^= 0x01  # inside the ECDSA signature value, the token's last field
    info = TimeStampResp.load(der)["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed
    encoded_time = info["gen_time"].dump()
    at = der.index(encoded_time) + 2 + 3  # the year's last digit
    gen_time = bytearray(der)
    gen_time[at] = ord("9") if gen_time[at] != ord("9") else ord("8")
    unknown_root = tmp_path / "unknown.pem"
    key = ec.generate_private_key(ec.SECP256R1())
    unknown_root.write_bytes(
        pki.make_root(key, organization="licence-hub test", now=utcnow()).public_bytes(serialization.Encoding.PEM)
    )
    for name, tampered in (("signature", signature), ("gen_time", gen_time)):
        path = tmp_path / f"{name}.tsr"
        path.write_bytes(bytes(tampered))
        done = openssl_verify(path, trust)
        assert done.returncode != 0, name
        assert "Verification: OK" not in done.stdout
    impostor = dict(trust, root=unknown_root)
    assert openssl_verify(reply, impostor).returncode != 0


# ----------------------------------------------------------------------------- pyHanko over real HTTP


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """The app under uvicorn on a free loopback port, in a thread, for clients that speak real HTTP."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-tsa", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture
def engine_runtime(engine: Engine, make_settings: Any, tmp_path: Path) -> Runtime:
    """A runtime on the real engine (no per-test transaction): for another thread or a lock test."""
    settings: Settings = make_settings()
    return Runtime(
        settings=settings,
        engine=engine,
        session_factory=make_session_factory(engine),
        storage=LocalBlobStore(tmp_path / "blobs"),
    )


def test_pyhanko_http_timestamper_gets_a_token_that_validates_to_the_hub_root(engine_runtime: Runtime) -> None:
    digest = hashlib.sha256(DATA).digest()
    with serve(create_app(engine_runtime)) as base:
        client = TestClient(create_app(engine_runtime))
        root = asn1_x509.Certificate.load(
            x509.load_pem_x509_certificate(client.get("/v1/pki/roots.pem").content).public_bytes(
                serialization.Encoding.DER
            )
        )
        crls = [client.get(f"/v1/pki/crl/{ca}.crl").content for ca in ("root", "issuing")]
        stamper = HTTPTimeStamper(f"{base}/v1/tsa")
        token = asyncio.run(stamper.async_timestamp(digest, "sha256"))  # pyHanko sends and checks a nonce

    def context(anchor: asn1_x509.Certificate) -> ValidationContext:
        return ValidationContext(trust_roots=[anchor], crls=crls, revocation_mode="hard-fail", allow_fetching=False)

    async def validate(anchor: asn1_x509.Certificate, expected: bytes) -> TimestampSignatureStatus:
        kwargs = await validate_tst_signed_data(token["content"], context(anchor), lambda _algorithm: expected)
        return TimestampSignatureStatus(**kwargs)

    status = asyncio.run(validate(root, digest))
    assert status.intact
    assert status.valid
    assert status.trusted

    assert abs(status.timestamp - utcnow()) < timedelta(minutes=1)
    assert status.signing_cert.subject.native["common_name"].endswith("Time-Stamping Authority")

    # Another digest is not what the token covers; another root does not make it trusted.
    assert not asyncio.run(validate(root, hashlib.sha256(b"other").digest())).intact
    impostor_key = ec.generate_private_key(ec.SECP256R1())
    impostor = pki.make_root(impostor_key, organization="licence-hub test", now=utcnow())
    untrusted = asyncio.run(
        validate(asn1_x509.Certificate.load(impostor.public_bytes(serialization.Encoding.DER)), digest)
    )
    assert not untrusted.trusted
    assert untrusted.trust_problem_indic is not None


def test_a_timestamp_does_not_wait_for_the_sqlite_write_lock(engine_runtime: Runtime, engine: Engine) -> None:
    """POST /v1/tsa writes nothing, so it runs beside a writer holding SQLite's lock (hub.db)."""
    client = TestClient(create_app(engine_runtime), raise_server_exceptions=False)
    with engine.connect() as writer, writer.begin():  # BEGIN IMMEDIATE on SQLite: the one write lock
        started = time.monotonic()
        response = client.post("/v1/tsa", content=request_der(), headers=QUERY)
        elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert reply_status(response.content) == ("granted", set())
    assert elapsed < 5  # the SQLite busy timeout is 10 s


# ----------------------------------------------------------------------------- refusals


def test_garbage_is_a_rejection_with_bad_data_format_never_a_500(client: TestClient, tmp_path: Path) -> None:
    for body in (b"", b"\x00", b"not a time-stamp request", b"\x30\x80" + b"\x00" * 40, b"\x30\x84\xff\xff\xff\xff"):
        response = client.post("/v1/tsa", content=body, headers=QUERY)
        assert response.status_code == 200  # RFC 3161 §3.4: a TimeStampResp, whose failInfo says why
        assert response.headers["content-type"] == "application/timestamp-reply"
        assert reply_status(response.content) == ("rejection", {"bad_data_format"})
    reply = post_query(client, b"garbage", tmp_path)
    text = openssl("ts", "-reply", "-in", str(reply), "-text").stdout
    assert "Status: Rejected." in text
    assert "Failure info: the data submitted has the wrong format" in text


@pytest.mark.parametrize(
    ("query", "failure"),
    [
        (request_der(algorithm="md5"), "bad_alg"),
        (request_der(algorithm="sha1"), "bad_alg"),
        (request_der(hashlib.sha256(DATA).digest()[:20]), "bad_alg"),  # a SHA-1-sized "SHA-256" imprint
        (request_der(hashlib.sha512(DATA).digest()), "bad_alg"),
        (request_der(policy="1.2.3.4.5"), "unaccepted_policy"),
        (
            request_der(extensions=[{"extn_id": "1.2.3.4", "critical": False, "extn_value": b"\x05\x00"}]),
            "unaccepted_extensions",
        ),
        (request_der() + b"\x00", "bad_data_format"),  # trailing bytes after the request
        (request_der()[:-1], "bad_data_format"),
        (request_der().replace(b"\x02\x01\x01", b"\x02\x01\x02", 1), "bad_request"),  # version 2
    ],
    ids=["md5", "sha1", "short-imprint", "long-imprint", "policy", "extension", "trailing", "truncated", "version"],
)
def test_refused_queries_get_the_failure_info_that_says_why(client: TestClient, query: bytes, failure: str) -> None:
    response = client.post("/v1/tsa", content=query, headers=QUERY)
    assert response.status_code == 200
    assert reply_status(response.content) == ("rejection", {failure})
    reply = TimeStampResp.load(response.content)
    assert reply["time_stamp_token"].native is None
    assert reply["status"]["status_string"].native  # a human-readable reason too


def test_openssl_md5_and_sha1_queries_are_refused(client: TestClient, trust: dict[str, Path], tmp_path: Path) -> None:
    for digest in ("-md5", "-sha1"):
        reply = post_query(client, openssl_query(tmp_path, digest, "-cert").read_bytes(), tmp_path)
        assert reply_status(reply.read_bytes()) == ("rejection", {"bad_alg"})
        assert "Verification: OK" not in openssl_verify(reply, trust).stdout


def test_our_policy_and_a_null_digest_parameter_are_accepted(client: TestClient, tmp_path: Path) -> None:
    query = openssl_query_with_policy(tmp_path)
    reply = TimeStampResp.load(post_query(client, query, tmp_path).read_bytes())
    assert reply["status"]["status"].native == "granted"
    info = reply["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed
    # RFC 3161 §2.4.2: the imprint is echoed as sent, NULL parameters included.
    assert info["message_imprint"].dump() == tsp.TimeStampReq.load(query)["message_imprint"].dump()


def openssl_query_with_policy(tmp_path: Path) -> bytes:
    (tmp_path / "data.txt").write_bytes(DATA)
    query = openssl_query(tmp_path, "-sha256", "-cert", "-tspolicy", tsa.HUB_TSA_POLICY).read_bytes()
    algorithm = tsp.TimeStampReq.load(query)["message_imprint"]["hash_algorithm"]
    assert algorithm["parameters"].dump() == b"\x05\x00"  # OpenSSL writes NULL parameters
    return query


def test_wrong_media_type_is_415_and_an_oversized_query_413(client: TestClient) -> None:
    for headers in ({"Content-Type": "application/octet-stream"}, {"Content-Type": "application/json"}, {}):
        response = client.post("/v1/tsa", content=request_der(), headers=headers)
        assert response.status_code == 415
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "tsa_media_type_unsupported"
    big = client.post("/v1/tsa", content=b"\x30" * (16 * 1024 + 1), headers=QUERY)
    assert big.status_code == 413
    assert big.headers["content-type"] == "application/problem+json"
    assert big.json()["code"] == "tsa_query_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap holds while reading
        for _ in range(20):
            yield b"\x00" * 1024

    chunked = client.post("/v1/tsa", content=chunks(), headers=QUERY)
    assert chunked.status_code == 413
    exactly = client.post("/v1/tsa", content=b"\x00" * (16 * 1024), headers={"Content-Type": f"{QUERY_TYPE}; x=1"})
    assert exactly.status_code == 200
    assert reply_status(exactly.content) == ("rejection", {"bad_data_format"})


# ----------------------------------------------------------------------------- the pure core


@pytest.fixture(scope="module")
def local_pki() -> dict[str, Any]:
    """A throwaway root → issuing → TSA chain, no database: for the pure TimeStamper tests."""
    now = utcnow()
    root_key, issuing_key, tsa_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = pki.make_root(root_key, organization="TSA test", now=now)
    issuing = pki.make_issuing(
        issuing_key, root_key=root_key, root=root, organization="TSA test", crl_url="http://t/root.crl", now=now
    )
    cert = pki.make_tsa_certificate(
        tsa_key.public_key(), issuing_key=issuing_key, issuing=issuing, organization="TSA test",
        crl_url="http://t/issuing.crl", not_before=now - timedelta(minutes=5), not_after=now + timedelta(days=30),
    )  # fmt: skip
    return {"root": root, "issuing": issuing, "cert": cert, "key": tsa_key, "issuing_key": issuing_key}


def make_stamper(local_pki: dict[str, Any], moment: datetime | None = None) -> tsa.TimeStamper:
    clock = (lambda: moment) if moment is not None else utcnow
    return tsa.TimeStamper(
        local_pki["cert"], [local_pki["cert"], local_pki["issuing"]], tsa.software_signer(local_pki["key"]), clock=clock
    )


def reference_token(stamper: tsa.TimeStamper, fast: cms.ContentInfo, *, cert_req: bool) -> cms.ContentInfo:
    """The same token built the slow way with asn1crypto objects, from the fast one's variable values."""
    info = fast["content"]["encap_content_info"]["content"].parsed
    signature = fast["content"]["signer_infos"][0]["signature"].native
    cert = asn1_x509.Certificate.load(stamper.certificate.public_bytes(serialization.Encoding.DER))
    fields: dict[str, Any] = {
        "version": "v1",
        "policy": stamper.policy,
        "message_imprint": {
            "hash_algorithm": sha2(info["message_imprint"]["hash_algorithm"]["algorithm"].native),
            "hashed_message": info["message_imprint"]["hashed_message"].native,
        },
        "serial_number": info["serial_number"].native,
        "gen_time": info["gen_time"].native,
        "accuracy": {"seconds": 1},
        "tsa": asn1_x509.GeneralName(name="directory_name", value=cert.subject),
    }
    if info["nonce"].native is not None:
        fields["nonce"] = info["nonce"].native
    tst_info = tsp.TSTInfo(fields)
    ess = tsp.ESSCertIDv2(
        {
            # hashAlgorithm omitted: SHA-256 is its DEFAULT (RFC 5035 §5.4.1.1), which DER leaves out.
            "cert_hash": hashlib.sha256(cert.dump()).digest(),
            "issuer_serial": {
                "issuer": [asn1_x509.GeneralName(name="directory_name", value=cert.issuer)],
                "serial_number": cert.serial_number,
            },
        }
    )
    signed_attrs = cms.CMSAttributes(
        [
            cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
            cms.CMSAttribute({"type": "message_digest", "values": [hashlib.sha256(tst_info.dump()).digest()]}),
            cms.CMSAttribute(
                {"type": "signing_certificate_v2", "values": [tsp.SigningCertificateV2({"certs": [ess]})]}
            ),
        ]
    )
    # The fast path's signature must verify over the reference's DER attribute set (RFC 5652 §5.4).
    public_key = stamper.certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(signature, signed_attrs.dump(), ec.ECDSA(hashes.SHA256()))
    signer = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                name="issuer_and_serial_number",
                value={"issuer": cert.issuer, "serial_number": cert.serial_number},
            ),
            "digest_algorithm": sha2("sha256"),
            "signed_attrs": signed_attrs,
            "signature_algorithm": {"algorithm": "sha256_ecdsa"},
            "signature": signature,
        }
    )
    signed_data: dict[str, Any] = {
        "version": "v3",
        "digest_algorithms": [sha2("sha256")],
        "encap_content_info": {"content_type": "tst_info", "content": tst_info},
        "signer_infos": [signer],
    }
    if cert_req:
        signed_data["certificates"] = [
            asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in stamper.certificates
        ]
    return cms.ContentInfo({"content_type": "signed_data", "content": cms.SignedData(signed_data)})


@pytest.mark.parametrize(
    ("algorithm", "nonce", "cert_req"),
    [("sha256", None, True), ("sha384", 2**64 + 7, False), ("sha512", -129, True), ("sha256", 0, True)],
)
def test_fast_tokens_are_byte_for_byte_what_asn1crypto_encodes(
    local_pki: dict[str, Any], algorithm: str, nonce: int | None, cert_req: bool
) -> None:
    stamper = make_stamper(local_pki)
    der = stamper.stamp_digest(
        hashlib.new(algorithm, DATA).digest(), hash_algorithm=algorithm, nonce=nonce, cert_req=cert_req
    )
    fast = cms.ContentInfo.load(der, strict=True)
    assert fast.dump(force=True) == der  # asn1crypto re-encodes it unchanged: it is DER
    assert reference_token(stamper, fast, cert_req=cert_req).dump() == der
    info = fast["content"]["encap_content_info"]["content"].parsed
    assert info["nonce"].native == nonce
    assert info["message_imprint"]["hash_algorithm"]["parameters"].dump() == b""  # RFC 5754 §2: absent
    certificates = fast["content"]["certificates"]
    assert len(certificates) == (2 if cert_req else 0)


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 12, 2, 4, 5, 6, 123456, tzinfo=UTC), "20261202040506.123Z"),
        (datetime(2026, 12, 2, 4, 5, 6, 120999, tzinfo=UTC), "20261202040506.12Z"),
        (datetime(2026, 12, 2, 4, 5, 6, 999, tzinfo=UTC), "20261202040506Z"),
        (datetime(2026, 12, 2, 0, 0, tzinfo=UTC), "20261202000000Z"),
        (datetime(2026, 12, 2, 12, 0, 0, 500000, tzinfo=UTC).astimezone(), "20261202120000.5Z"),
    ],
)
def test_gen_time_is_utc_with_milliseconds_and_no_trailing_zeros(
    local_pki: dict[str, Any], moment: datetime, text: str
) -> None:
    """RFC 3161 §2.4.2: GeneralizedTime in UTC ("Z"), fraction without trailing zeros or omitted."""
    token = make_stamper(local_pki, moment).stamp_digest(hashlib.sha256(DATA).digest())
    assert b"\x18" + bytes((len(text),)) + text.encode() in token


def test_token_fields_and_signed_attributes(local_pki: dict[str, Any]) -> None:
    stamper = make_stamper(local_pki)
    tokens = [cms.ContentInfo.load(stamper.stamp_digest(hashlib.sha256(DATA).digest(), nonce=42)) for _ in range(50)]
    infos = [t["content"]["encap_content_info"]["content"].parsed for t in tokens]
    serials = {i["serial_number"].native for i in infos}
    assert len(serials) == 50  # RFC 3161 §2.4.2: unique per token
    assert all(0 < s < 2**128 for s in serials)
    info = infos[0]
    assert info["version"].native == "v1"
    assert info["policy"].dotted == tsa.HUB_TSA_POLICY
    assert info["nonce"].native == 42
    assert info["accuracy"]["seconds"].native == 1
    assert info["tsa"].chosen.native["common_name"] == "TSA test Time-Stamping Authority"
    signed_data = tokens[0]["content"]
    assert signed_data["version"].native == "v3"
    signer = signed_data["signer_infos"][0]
    assert signer["signature_algorithm"]["algorithm"].native == "sha256_ecdsa"
    attrs = {a["type"].native: a["values"][0] for a in signer["signed_attrs"]}
    assert set(attrs) == {"content_type", "message_digest", "signing_certificate_v2"}
    assert attrs["content_type"].native == "tst_info"
    ess = attrs["signing_certificate_v2"]["certs"][0]
    assert (
        ess["cert_hash"].native == hashlib.sha256(local_pki["cert"].public_bytes(serialization.Encoding.DER)).digest()
    )
    assert ess["issuer_serial"]["serial_number"].native == local_pki["cert"].serial_number
    digest = hashlib.sha256(signer["signed_attrs"].untag().dump()).digest()
    public_key = stamper.certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(signer["signature"].native, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))


def test_stamp_digest_refuses_what_is_not_a_sha2_digest(local_pki: dict[str, Any]) -> None:
    stamper = make_stamper(local_pki)
    with pytest.raises(TimestampImprintInvalid):
        stamper.stamp_digest(b"\x00" * 31)
    with pytest.raises(TimestampImprintInvalid):
        stamper.stamp_digest(hashlib.sha1(DATA).digest(), hash_algorithm="sha1")  # noqa: S324 - refused, as it should be
    naive = tsa.TimeStamper(
        local_pki["cert"],
        [],
        tsa.software_signer(local_pki["key"]),
        clock=lambda: datetime(2026, 1, 1),  # noqa: DTZ001
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        naive.stamp_digest(hashlib.sha256(DATA).digest())
    # respond() turns the same failure into systemFailure instead of raising.
    assert reply_status(naive.respond(request_der())) == ("rejection", {"system_failure"})


def test_a_stamper_refuses_a_wrong_key_or_a_certificate_not_for_timestamping(local_pki: dict[str, Any]) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(ValueError, match="does not sign"):
        tsa.TimeStamper(local_pki["cert"], [], tsa.software_signer(other))
    now = utcnow()
    seal = pki.make_seal_certificate(
        local_pki["key"].public_key(), issuing_key=local_pki["issuing_key"], issuing=local_pki["issuing"],
        department_name="临江市市场监督管理局", department_code="91350100M000100Y43", seal_name="专用章",
        crl_url="http://t/issuing.crl", not_before=now, not_after=now + timedelta(days=1),
    )  # fmt: skip
    with pytest.raises(ValueError, match="timeStamping"):
        tsa.TimeStamper(seal, [], tsa.software_signer(local_pki["key"]))


@pytest.fixture(scope="module")
def module_stamper(local_pki: dict[str, Any]) -> tsa.TimeStamper:
    return make_stamper(local_pki)


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=512))
def test_respond_never_raises_on_random_bytes(module_stamper: tsa.TimeStamper, body: bytes) -> None:
    status, failures = reply_status(module_stamper.respond(body))
    assert status == "rejection"
    assert len(failures) == 1


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_respond_never_raises_on_mutated_requests(module_stamper: tsa.TimeStamper, data: st.DataObject) -> None:
    valid = bytearray(request_der(nonce=data.draw(st.integers(min_value=0, max_value=2**80))))
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        at = data.draw(st.integers(min_value=0, max_value=len(valid) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            valid[at] = data.draw(st.integers(min_value=0, max_value=255))
        elif action == "cut":
            del valid[at:]
            if not valid:
                break
        else:
            valid[at:at] = data.draw(st.binary(min_size=1, max_size=8))
    status, _ = reply_status(module_stamper.respond(bytes(valid)))
    assert status in {"granted", "rejection"}


def test_a_granted_reply_verifies_with_openssl_for_a_local_chain(
    module_stamper: tsa.TimeStamper, local_pki: dict[str, Any], tmp_path: Path
) -> None:
    """The pure core alone (no HTTP, no database) against OpenSSL, with certReq false: certs from -untrusted."""
    (tmp_path / "data.txt").write_bytes(DATA)
    query = openssl_query(tmp_path, "-sha384", "-no_nonce")  # certReq absent: the token carries no certificates
    reply = tmp_path / "resp.tsr"
    reply.write_bytes(module_stamper.respond(query.read_bytes()))
    token = TimeStampResp.load(reply.read_bytes())["time_stamp_token"]
    assert len(token["content"]["certificates"]) == 0
    (tmp_path / "root.pem").write_bytes(local_pki["root"].public_bytes(serialization.Encoding.PEM))
    (tmp_path / "chain.pem").write_bytes(
        b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (local_pki["issuing"], local_pki["cert"]))
    )
    trust = {"root": tmp_path / "root.pem", "chain": tmp_path / "chain.pem", "data": tmp_path / "data.txt"}
    done = openssl_verify(reply, trust)
    assert "Verification: OK" in done.stdout, done.stdout + done.stderr
