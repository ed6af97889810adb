"""Pure X.509 work for the hub PKI: CA, seal and TSA certificates and CRLs (RFC 5280), ECDSA P-256."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT_VALIDITY = timedelta(days=20 * 365)
ISSUING_VALIDITY = timedelta(days=10 * 365)
CRL_VALIDITY = timedelta(days=7)  # nextUpdate; the scheduled job re-signs well before it


@dataclass(frozen=True)
class Revoked:
    serial: int
    revoked_at: datetime
    reason: x509.ReasonFlags = x509.ReasonFlags.unspecified


def random_serial() -> int:
    """RFC 5280 §4.1.2.2: positive, at most 20 octets; 159 random bits (CA/B BR §7.1 asks ≥ 64)."""
    return secrets.randbits(159) | 1


def _name(common_name: str, organization: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca_key_usage() -> x509.KeyUsage:
    # RFC 5280 §4.2.1.3: a CA signs certificates and CRLs, nothing else.
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def make_root(key: ec.EllipticCurvePrivateKey, *, organization: str, now: datetime) -> x509.Certificate:
    """Self-signed root CA (basicConstraints CA:TRUE, critical; SKI; no path length limit below 1)."""
    name = _name(f"{organization} Root CA", organization)
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(random_serial())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + ROOT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def make_issuing(
    key: ec.EllipticCurvePrivateKey,
    *,
    root_key: ec.EllipticCurvePrivateKey,
    root: x509.Certificate,
    organization: str,
    crl_url: str,
    now: datetime,
) -> x509.Certificate:
    """Issuing CA under the root: issues seal and TSA certificates (pathLen 0)."""
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(_name(f"{organization} Issuing CA", organization))
        .issuer_name(root.subject)
        .public_key(public)
        .serial_number(random_serial())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(min(now + ISSUING_VALIDITY, root.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .add_extension(
            # RFC 5280 §4.2.1.13: where relying parties fetch the root's CRL to check this CA.
            x509.CRLDistributionPoints(
                [x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)]
            ),
            critical=False,
        )
        .sign(root_key, hashes.SHA256())
    )


def make_crl(
    key: ec.EllipticCurvePrivateKey,
    ca: x509.Certificate,
    revoked: list[Revoked],
    *,
    number: int,
    now: datetime,
) -> x509.CertificateRevocationList:
    """RFC 5280 §5 CRL v2 with cRLNumber and AKI, signed by the CA."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(now)
        .next_update(now + CRL_VALIDITY)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
    )
    for entry in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(entry.serial)
            .revocation_date(entry.revoked_at)
            .add_extension(x509.CRLReason(entry.reason), critical=False)
            .build()
        )
    return builder.sign(key, hashes.SHA256())


def make_seal_certificate(
    public_key: ec.EllipticCurvePublicKey,
    *,
    issuing_key: ec.EllipticCurvePrivateKey,
    issuing: x509.Certificate,
    department_name: str,
    department_code: str,
    seal_name: str,
    crl_url: str,
    not_before: datetime,
    not_after: datetime,
) -> x509.Certificate:
    """A department's seal certificate (电子印章证书), DESIGN.md §5.

    The subject names the department (O) and its unified social credit code as
    organizationIdentifier (X.520 2.5.4.97), with the seal's name as CN. Key usage is
    digitalSignature + nonRepudiation only (ETSI EN 319 412-3 for legal-person seals); no EKU,
    so PDF validators (NSS in pdfsig, pyHanko) apply no extended-usage restriction.
    """
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, department_name),
            x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, department_code),
            x509.NameAttribute(NameOID.COMMON_NAME, seal_name),
        ]
    )
    return _end_entity(
        public_key, subject=subject, issuing_key=issuing_key, issuing=issuing, crl_url=crl_url,
        not_before=not_before, not_after=not_after,
    ).sign(issuing_key, hashes.SHA256())  # fmt: skip


def make_tsa_certificate(
    public_key: ec.EllipticCurvePublicKey,
    *,
    issuing_key: ec.EllipticCurvePrivateKey,
    issuing: x509.Certificate,
    organization: str,
    crl_url: str,
    not_before: datetime,
    not_after: datetime,
) -> x509.Certificate:
    """The hub time-stamping unit's certificate (RFC 3161 §2.3), issued by the issuing CA.

    RFC 3161 §2.3: exactly one extended key usage, id-kp-timeStamping, marked critical, so the key
    can sign nothing but time-stamp tokens in the eyes of a relying party. Key usage is
    digitalSignature + nonRepudiation, the only bits OpenSSL's timestamp-signing purpose accepts
    (``check_purpose_timestamp_sign`` in crypto/x509/v3_purp.c rejects any other).
    """
    subject = _name(f"{organization} Time-Stamping Authority", organization)
    return (
        _end_entity(
            public_key,
            subject=subject,
            issuing_key=issuing_key,
            issuing=issuing,
            crl_url=crl_url,
            not_before=not_before,
            not_after=not_after,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(issuing_key, hashes.SHA256())
    )


def _end_entity(
    public_key: ec.EllipticCurvePublicKey,
    *,
    subject: x509.Name,
    issuing_key: ec.EllipticCurvePrivateKey,
    issuing: x509.Certificate,
    crl_url: str,
    not_before: datetime,
    not_after: datetime,
) -> x509.CertificateBuilder:
    """What seal and TSA certificates share, before signing.

    Not a CA; digitalSignature + nonRepudiation (critical); SKI/AKI; validity inside the issuing
    CA's; and where relying parties find the issuing CA's CRL (RFC 5280 §4.2.1.13).
    """
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuing.subject)
        .public_key(public_key)
        .serial_number(random_serial())
        .not_valid_before(not_before)
        .not_valid_after(min(not_after, issuing.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuing_key.public_key()), critical=False)
        .add_extension(
            x509.CRLDistributionPoints(
                [x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)]
            ),
            critical=False,
        )
    )
