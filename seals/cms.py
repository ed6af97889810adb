"""CAdES detached SignedData for PAdES baseline signatures, assembled from a per-seal DER template.

RFC 5652 §5 SignedData with the ETSI EN 319 122-1 baseline signed attributes that PAdES requires
(ETSI EN 319 142-1 §5.2 / §6.3): content-type, message-digest and signing-certificate-v2, and no
signing-time (the claimed time is the PDF signature dictionary's /M). Everything but the document
digest, the signature value and the optional signature time-stamp is the same for every document
a seal signs, so it is encoded once (:class:`SignedDataTemplate`) and per document only a few byte
strings are joined; the output is checked against
asn1crypto, openssl cms, pyHanko and pdfsig in the tests (seals.der says why DER is written by hand).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509

from seals.der import (
    CONTEXT_0,
    CONTEXT_1,
    DIGEST_SIZE,
    ECDSA_SHA256_ALGORITHM,
    OCTET_STRING,
    OID_CONTENT_TYPE,
    OID_DATA,
    OID_SIGNATURE_TIMESTAMP,
    OID_SIGNED_DATA,
    SEQUENCE,
    SET,
    SHA256_ALGORITHM,
    attribute,
    certificate_set,
    der_integer,
    issuer_and_serial,
    signing_certificate_v2,
    split_signed_attributes,
    tlv,
)


@dataclass(frozen=True)
class SignedDataTemplate:
    """What every signature by one seal certificate shares, already DER-encoded."""

    attrs_head: bytes  # SET tag/length and the attributes sorted before message-digest's value
    attrs_tail: bytes  # the attributes after it
    signer_head: bytes  # SignerInfo: version, sid, digestAlgorithm
    outer_head: bytes  # SignedData: version, digestAlgorithms, encapContentInfo, certificates

    @classmethod
    def build(cls, signer: x509.Certificate, chain: list[x509.Certificate]) -> SignedDataTemplate:
        head, tail = split_signed_attributes(attribute(OID_CONTENT_TYPE, OID_DATA), signing_certificate_v2(signer))
        return cls(
            attrs_head=head,
            attrs_tail=tail,
            signer_head=der_integer(1) + issuer_and_serial(signer) + SHA256_ALGORITHM,
            outer_head=(
                der_integer(1)  # RFC 5652 §5.1: version 1 (issuerAndSerialNumber, id-data)
                + tlv(SET, SHA256_ALGORITHM)
                + tlv(SEQUENCE, OID_DATA)  # detached: no eContent (ETSI.CAdES.detached)
                + certificate_set([signer, *chain])
            ),
        )

    def signed_attributes(self, document_digest: bytes) -> bytes:
        """The DER SET the signature covers (RFC 5652 §5.4: tagged as SET OF for signing)."""
        if len(document_digest) != DIGEST_SIZE:
            msg = "the document digest is SHA-256"
            raise ValueError(msg)
        return self.attrs_head + document_digest + self.attrs_tail

    def assemble(self, signed_attributes: bytes, signature: bytes, timestamp_token: bytes | None = None) -> bytes:
        """ContentInfo(SignedData) for the PDF /Contents, with an optional signature time-stamp (B-T)."""
        unsigned = b""
        if timestamp_token is not None:
            # ETSI EN 319 122-1 §5.3: signature-time-stamp over the SignerInfo's signature value.
            unsigned = tlv(CONTEXT_1, attribute(OID_SIGNATURE_TIMESTAMP, timestamp_token))
        signer_info = tlv(
            SEQUENCE,
            self.signer_head,
            bytes((CONTEXT_0,)) + signed_attributes[1:],  # [0] IMPLICIT: same bytes, context tag (RFC 5652 §5.3)
            ECDSA_SHA256_ALGORITHM,
            tlv(OCTET_STRING, signature),
            unsigned,
        )
        signed_data = tlv(SEQUENCE, self.outer_head, tlv(SET, signer_info))
        return tlv(SEQUENCE, OID_SIGNED_DATA, tlv(CONTEXT_0, signed_data))

    def sign(
        self,
        document_digest: bytes,
        sign_digest: Callable[[bytes], bytes],
        timestamp: Callable[[bytes], bytes] | None = None,
    ) -> bytes:
        """One signature over the signed attributes; ``timestamp`` maps a SHA-256 imprint to a token."""
        attrs = self.signed_attributes(document_digest)
        signature = sign_digest(hashlib.sha256(attrs).digest())
        token = timestamp(hashlib.sha256(signature).digest()) if timestamp is not None else None
        return self.assemble(attrs, signature, token)
