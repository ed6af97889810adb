"""DER by hand for the CMS structures the sealer and the TSA assemble per document (X.690, RFC 5652).

Both the PAdES signature and the RFC 3161 token are a few fixed parts (certificates, the signer's
identifiers, the signed attributes other than the digest) around a few that change per call (the
digest, the signature, the TSTInfo). asn1crypto's generic encoder builds and validates an object
tree on every dump and costs more than the ECDSA signature, so the fixed parts are encoded once and
per call only byte strings are joined; the tests cross-check the output against asn1crypto.
"""

from __future__ import annotations

import hashlib

from asn1crypto import core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization

SEQUENCE, SET, INTEGER, OCTET_STRING = 0x30, 0x31, 0x02, 0x04
CONTEXT_0, CONTEXT_1, CONTEXT_4 = 0xA0, 0xA1, 0xA4  # [0] [1] [4], constructed
DIGEST_SIZE = 32  # SHA-256


def der_length(n: int) -> bytes:
    """X.690 §8.1.3 definite length: short form below 128, else the fewest long-form octets (§10.1)."""
    if n < 0x80:
        return bytes((n,))
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(raw),)) + raw


def tlv(tag: int, *content: bytes) -> bytes:
    body = b"".join(content)
    return bytes((tag,)) + der_length(len(body)) + body


def der_integer(value: int) -> bytes:
    """X.690 §8.3: minimal two's complement (a nonce from a request may be any INTEGER)."""
    size = (~value if value < 0 else value).bit_length() // 8 + 1
    return tlv(INTEGER, value.to_bytes(size, "big", signed=True))


def oid(dotted: str) -> bytes:
    """An OBJECT IDENTIFIER's DER (X.690 §8.19), encoded once per constant, never per call."""
    encoded: bytes = core.ObjectIdentifier(dotted).dump()
    return encoded


def attribute(attribute_type: bytes, value: bytes) -> bytes:
    """RFC 5652 §5.3 Attribute: a type and a SET of one value."""
    return tlv(SEQUENCE, attribute_type, tlv(SET, value))


OID_DATA = oid("1.2.840.113549.1.7.1")  # id-data, RFC 5652 §4
OID_SIGNED_DATA = oid("1.2.840.113549.1.7.2")  # RFC 5652 §5.1
OID_CONTENT_TYPE = oid("1.2.840.113549.1.9.3")  # RFC 5652 §11.1
OID_MESSAGE_DIGEST = oid("1.2.840.113549.1.9.4")  # RFC 5652 §11.2
OID_SIGNING_CERTIFICATE_V2 = oid("1.2.840.113549.1.9.16.2.47")  # RFC 5035 §5.4.1.1
OID_SIGNATURE_TIMESTAMP = oid("1.2.840.113549.1.9.16.2.14")  # RFC 3161 Appendix A
OID_SHA256 = "2.16.840.1.101.3.4.2.1"
SHA256_ALGORITHM = tlv(SEQUENCE, oid(OID_SHA256))  # parameters absent, RFC 5754 §2
ECDSA_SHA256_ALGORITHM = tlv(SEQUENCE, oid("1.2.840.10045.4.3.2"))  # parameters absent, RFC 5758 §3.2


def _issuer_serial_parts(cert: x509.Certificate) -> tuple[bytes, int]:
    """The issuer Name exactly as encoded in the certificate, and its serial number."""
    parsed = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    issuer: bytes = parsed.issuer.dump()
    return issuer, int(parsed.serial_number)


def issuer_and_serial(cert: x509.Certificate) -> bytes:
    """RFC 5652 §10.2.4 IssuerAndSerialNumber (a SignerInfo's sid, version 1)."""
    issuer, serial = _issuer_serial_parts(cert)
    return tlv(SEQUENCE, issuer, der_integer(serial))


def signing_certificate_v2(cert: x509.Certificate) -> bytes:
    """The signing-certificate-v2 attribute (RFC 5035 §5.4.1.1, RFC 5816 for TSAs).

    One ESSCertIDv2: hashAlgorithm left out because SHA-256 is its DEFAULT (X.690 §11.5), certHash
    over the whole certificate, issuerSerial with the issuer as a directoryName [4].
    """
    issuer, serial = _issuer_serial_parts(cert)
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()
    issuer_serial = tlv(SEQUENCE, tlv(SEQUENCE, tlv(CONTEXT_4, issuer)), der_integer(serial))
    ess_cert_id = tlv(SEQUENCE, tlv(OCTET_STRING, digest), issuer_serial)
    return attribute(OID_SIGNING_CERTIFICATE_V2, tlv(SEQUENCE, tlv(SEQUENCE, ess_cert_id)))


def split_signed_attributes(*fixed: bytes) -> tuple[bytes, bytes]:
    """The DER SET OF signed attributes around a SHA-256 message digest: (head up to the digest, tail).

    X.690 §11.6 orders the attributes by their encodings. The message-digest attribute has a fixed
    length (RFC 5652 §11.2) different from the others', so its position does not depend on the
    digest; both extremes are checked to be sure.
    """
    digest_prefix = attribute(OID_MESSAGE_DIGEST, tlv(OCTET_STRING, bytes(DIGEST_SIZE)))[:-DIGEST_SIZE]

    def order(fill: int) -> list[bytes]:
        return sorted([*fixed, digest_prefix + bytes((fill,)) * DIGEST_SIZE])

    low, high = order(0x00), order(0xFF)
    position = next(i for i, item in enumerate(low) if item.startswith(digest_prefix))
    if [a for a in low if a in fixed] != [a for a in high if a in fixed] or not high[position].startswith(
        digest_prefix
    ):
        msg = "signed attribute order depends on the digest"
        raise AssertionError(msg)  # pragma: no cover - impossible for fixed-length attributes
    header = tlv(SET, *low)[: -sum(map(len, low))]
    return header + b"".join(low[:position]) + digest_prefix, b"".join(low[position + 1 :])


def certificate_set(certificates: list[x509.Certificate]) -> bytes:
    """RFC 5652 §5.1 certificates [0] IMPLICIT CertificateSet, DER-ordered (X.690 §11.6), duplicates dropped."""
    encoded = {c.public_bytes(serialization.Encoding.DER) for c in certificates}
    return tlv(CONTEXT_0, *sorted(encoded))
