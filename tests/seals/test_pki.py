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


def issue_seal(runtime: Runtime, department_code: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    with runtime.session_scope() as session:
        _, cert = service.issue_seal_certificate(
            session,
            runtime.master_keys,
            department_code=department_code,
            department_name="临江市市场监督管理局",
            seal_name="临江市市场监督管理局电子证照专用章",
            public_key=key.public_key(),
            public_url="http://testserver",
        )
    return cert, key


def test_seal_certificates_chain_to_the_root_and_carry_the_department(
    client: TestClient, runtime: Runtime, tmp_path: Path
) -> None:
    from factories import random_uscc

    code = random_uscc()
    cert, _ = issue_seal(runtime, code.lower())
    _, issuing, root_pem, issuing_pem = fetch_chain(client, tmp_path)
    seal_pem = tmp_path / "seal.pem"
    seal_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    done = openssl("verify", "-CAfile", str(root_pem), "-untrusted", str(issuing_pem), str(seal_pem))
    assert done.returncode == 0, done.stderr
    subject = cert.subject
    assert subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_IDENTIFIER)[0].value == code
    assert subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)[0].value == "临江市市场监督管理局"
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert usage.value.content_commitment
    assert not usage.value.key_cert_sign
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert points[0].full_name is not None
    assert points[0].full_name[0].value == "http://testserver/v1/pki/crl/issuing.crl"
    assert cert.not_valid_after_utc <= issuing.not_valid_after_utc


def test_a_revoked_seal_fails_openssl_crl_checks(client: TestClient, runtime: Runtime, tmp_path: Path) -> None:
    from factories import random_uscc

    cert, _ = issue_seal(runtime, random_uscc())
    _, _, root_pem, issuing_pem = fetch_chain(client, tmp_path)
    seal_pem = tmp_path / "seal.pem"
    seal_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def check() -> subprocess.CompletedProcess[str]:
        crls = tmp_path / "crls.pem"
        crls.write_bytes(
            b"".join(
                x509.load_der_x509_crl(client.get(f"/v1/pki/crl/{ca}.crl").content).public_bytes(
                    serialization.Encoding.PEM
                )
                for ca in ("root", "issuing")
            )
        )
        return openssl(
            "verify", "-crl_check_all", "-CAfile", str(root_pem), "-untrusted", str(issuing_pem),
            "-CRLfile", str(crls), str(seal_pem),
        )  # fmt: skip

    assert check().returncode == 0
    with runtime.session_scope() as session:
        service.revoke(session, runtime.master_keys, f"{cert.serial_number:x}", reason=x509.ReasonFlags.key_compromise)
    revoked = check()
    assert revoked.returncode != 0
    assert "certificate revoked" in revoked.stdout + revoked.stderr


@pytest.mark.parametrize(
    ("code", "name", "curve", "error"),
    [
        ("91350100M000100Y44", "专用章", ec.SECP256R1(), "invalid_uscc"),
        (None, " ", ec.SECP256R1(), "invalid_input"),
        (None, "专用章", ec.SECP384R1(), "invalid_input"),
    ],
)
def test_seal_certificate_input_is_checked(
    runtime: Runtime, code: str | None, name: str, curve: ec.EllipticCurve, error: str
) -> None:
    from factories import random_uscc

    from hub.errors import DomainError

    with runtime.session_scope() as session, pytest.raises(DomainError) as caught:
        service.issue_seal_certificate(
            session,
            runtime.master_keys,
            department_code=code or random_uscc(),
            department_name="临江市市场监督管理局",
            seal_name=name,
            public_key=ec.generate_private_key(curve).public_key(),
            public_url="http://testserver",
        )
    assert caught.value.code == error
