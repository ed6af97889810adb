"""What a seal verification trusts: the hub root, other hubs' roots (跨域验签), the CA and TSA certificates, CRLs."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy.orm import Session

from hub.errors import InvalidInput
from seals import service as pki
from seals.errors import TimestampUnitUnavailable
from seals.verify import TrustSettings


def load_roots(path: Path) -> tuple[bytes, ...]:
    """A PEM bundle of other hubs' root certificates (DER out); each must be a CA certificate."""
    try:
        certificates = x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read trusted roots from {path}: {exc}") from exc
    for cert in certificates:
        try:
            constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            constraints = None
        if constraints is None or not constraints.ca:
            raise InvalidInput(f"{path}: {cert.subject.rfc4514_string()} is not a CA certificate")
    return tuple(c.public_bytes(serialization.Encoding.DER) for c in certificates)


def trust_settings(session: Session, extra_roots: Sequence[bytes] = ()) -> TrustSettings:
    """The hub's anchors and current CRLs, read in the caller's unit of work (revocations apply at once)."""
    root = pki.get_ca_or_raise(session, pki.ROOT)
    issuing = pki.get_ca_or_raise(session, pki.ISSUING)
    others = [issuing.certificate]
    with suppress(TimestampUnitUnavailable):  # a hub without a TSA yet verifies B-B seals all the same
        others.append(pki.get_tsa_certificate_or_raise(session).certificate)
    crls = tuple(ca.crl for ca in (root, issuing) if ca.crl is not None)
    return TrustSettings(roots=(root.certificate, *extra_roots), crls=crls, other_certs=tuple(others))
