"""The hub PKI: CA certificates and CRLs checked by OpenSSL and by cryptography, revocation included."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient

from hub.clock import utcnow
from hub.runtime import Runtime
from seals import pki, service


def openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)  # noqa: S607


def fetch_chain(client: TestClient, tmp_path: Path) -> tuple[x509.Certificate, x509.Certificate, Path, Path]:
    roots = client.get("/v1/pki/roots.pem")
    assert roots.status_code == 200
    assert roots.headers["content-type"] == "application/x-pem-file"
    root_pem = tmp_path / "root.pem"
    root_pem.write_text(roots.text)
    issuing_der = client.get("/v1/pki/ca/issuing.cer").content
    issuing = x509.load_der_x509_certificate(issuing_der)
    issuing_pem = tmp_path / "issuing.pem"
    issuing_pem.write_bytes(issuing.public_bytes(serialization.Encoding.PEM))
    return x509.load_pem_x509_certificate(roots.content), issuing, root_pem, issuing_pem


def test_openssl_verifies_the_issuing_ca_under_the_published_root(client: TestClient, tmp_path: Path) -> None:
    root, issuing, root_pem, issuing_pem = fetch_chain(client, tmp_path)
    done = openssl("verify", "-CAfile", str(root_pem), str(issuing_pem))
    assert done.returncode == 0, done.stderr
    assert f"{issuing_pem}: OK" in done.stdout
    # A look-alike root with the same name but another key must not verify it.
    impostor_key = ec.generate_private_key(ec.SECP256R1())
    impostor = pki.make_root(impostor_key, organization="licence-hub test", now=utcnow())
    (tmp_path / "impostor.pem").write_bytes(impostor.public_bytes(serialization.Encoding.PEM))
    assert openssl("verify", "-CAfile", str(tmp_path / "impostor.pem"), str(issuing_pem)).returncode != 0
    assert root.subject == issuing.issuer


def test_ca_certificates_follow_rfc5280(client: TestClient, tmp_path: Path) -> None:
    root, issuing, _, _ = fetch_chain(client, tmp_path)
    for cert in (root, issuing):
        assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
        assert cert.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
        assert constraints.critical
        assert constraints.value.ca
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
        assert usage.critical
        assert usage.value.key_cert_sign
        assert usage.value.crl_sign
        assert not usage.value.digital_signature
    assert issuing.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    aki = issuing.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki == root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    points = issuing.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert points[0].full_name is not None
    assert points[0].full_name[0].value == "http://testserver/v1/pki/crl/root.crl"
    issuing.verify_directly_issued_by(root)


def test_crls_are_signed_by_their_ca_and_list_revocations(client: TestClient, runtime: Runtime, tmp_path: Path) -> None:
    root, issuing, root_pem, issuing_pem = fetch_chain(client, tmp_path)
    before = x509.load_der_x509_crl(client.get("/v1/pki/crl/root.crl").content)
    assert before.is_signature_valid(root.public_key())  # type: ignore[arg-type]
    assert before.get_revoked_certificate_by_serial_number(issuing.serial_number) is None
    (tmp_path / "root.crl").write_bytes(before.public_bytes(serialization.Encoding.PEM))
    good = openssl(
        "verify", "-crl_check", "-CAfile", str(root_pem), "-CRLfile", str(tmp_path / "root.crl"), str(issuing_pem)
    )
    assert good.returncode == 0, good.stderr

    with runtime.session_scope() as session:
        service.revoke(
            session, runtime.master_keys, f"{issuing.serial_number:x}", reason=x509.ReasonFlags.key_compromise
        )
    response = client.get("/v1/pki/crl/root.crl")
    assert response.headers["content-type"] == "application/pkix-crl"
    after = x509.load_der_x509_crl(response.content)
    assert after.is_signature_valid(root.public_key())  # type: ignore[arg-type]
    number = lambda crl: crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number  # noqa: E731
    assert number(after) == number(before) + 1
    entry = after.get_revoked_certificate_by_serial_number(issuing.serial_number)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    (tmp_path / "root.crl").write_bytes(after.public_bytes(serialization.Encoding.PEM))
    revoked = openssl(
        "verify", "-crl_check", "-CAfile", str(root_pem), "-CRLfile", str(tmp_path / "root.crl"), str(issuing_pem)
    )
    assert revoked.returncode != 0
    assert "certificate revoked" in revoked.stdout + revoked.stderr


def test_issuing_crl_verifies_with_the_issuing_ca(client: TestClient, tmp_path: Path) -> None:
    _, issuing, _, _ = fetch_chain(client, tmp_path)
    crl = x509.load_der_x509_crl(client.get("/v1/pki/crl/issuing.crl").content)
    assert crl.issuer == issuing.subject
    assert crl.is_signature_valid(issuing.public_key())  # type: ignore[arg-type]
    assert crl.next_update_utc is not None
    assert crl.next_update_utc > utcnow()


def test_unknown_ca_is_a_clear_error(client: TestClient) -> None:
    response = client.get("/v1/pki/crl/other.crl")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_ensure_cas_is_idempotent_and_unknown_serials_are_404(runtime: Runtime) -> None:
    with runtime.session_scope() as session:
        assert service.ensure_cas(session, runtime.master_keys, organization="x", public_url="http://testserver") == []
        with pytest.raises(service.NotFound):
            service.revoke(session, runtime.master_keys, "abc123", reason=x509.ReasonFlags.unspecified)


def test_crl_is_not_resigned_while_fresh(runtime: Runtime) -> None:
    with runtime.session_scope() as session:
        first = service.refresh_crl(session, runtime.master_keys, service.ROOT).crl_number
        again = service.refresh_crl(session, runtime.master_keys, service.ROOT).crl_number
        forced = service.refresh_crl(session, runtime.master_keys, service.ROOT, force=True).crl_number
    assert again == first
    assert forced == first + 1
