"""The hub's RFC 3161 time-stamping unit: TimeStampTokens assembled from precomputed DER, and the TSP responder."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from asn1crypto import core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.x509.oid import ExtendedKeyUsageOID

from hub.clock import utcnow
from seals.der import (
    CONTEXT_0,
    CONTEXT_4,
    ECDSA_SHA256_ALGORITHM,
    OCTET_STRING,
    OID_CONTENT_TYPE,
    OID_SIGNED_DATA,
    SEQUENCE,
    SET,
    SHA256_ALGORITHM,
    attribute,
    certificate_set,
    der_integer,
    issuer_and_serial,
    oid,
    signing_certificate_v2,
    split_signed_attributes,
    tlv,
)
from seals.errors import TimestampImprintInvalid

log = logging.getLogger(__name__)

# The hub TSA's policy (RFC 3161 §2.4.2 TSAPolicyId). An OID under 2.25 is a UUID written as one
# integer arc (ITU-T X.667 | ISO/IEC 9834-8): unique without registering a private enterprise
# arc, which a hub deployed by any government body may not have. Fixed once; never regenerate it,
# tokens already issued name it.
HUB_TSA_POLICY = "2.25.189647491288962867353348630418090565752"

SignDigest = Callable[[bytes], bytes]
"""Signs a SHA-256 digest, returning a DER ECDSA-Sig-Value (RFC 3279 §2.2.3); the key stays in its store."""

_GENERALIZED_TIME, _UTF8_STRING, _BIT_STRING = 0x18, 0x0C, 0x03
_NULL = b"\x05\x00"

# PKIStatus (RFC 3161 §2.4.2) and PKIFailureInfo bit numbers.
GRANTED, REJECTION = 0, 2
BAD_ALG, BAD_REQUEST, BAD_DATA_FORMAT = 0, 2, 5
UNACCEPTED_POLICY, UNACCEPTED_EXTENSION, SYSTEM_FAILURE = 15, 16, 25


def _named_bit(bit: int) -> bytes:
    """BIT STRING with one named bit set; X.690 §11.2.2 drops trailing zero bits."""
    data = bytearray(bit // 8 + 1)
    data[bit // 8] = 0x80 >> (bit % 8)
    return tlv(_BIT_STRING, bytes((7 - bit % 8,)) + bytes(data))


def _generalized_time(moment: datetime) -> bytes:
    """RFC 3161 §2.4.2 genTime: UTC with "Z", millisecond precision, no trailing fraction zeros."""
    text = f"{moment.year:04d}{moment.month:02d}{moment.day:02d}{moment.hour:02d}{moment.minute:02d}{moment.second:02d}"
    if millis := moment.microsecond // 1000:
        text += f".{millis:03d}".rstrip("0")  # a zero fraction is omitted with its decimal point
    return tlv(_GENERALIZED_TIME, (text + "Z").encode("ascii"))


_OID_TST_INFO = oid("1.2.840.113549.1.9.16.1.4")  # id-ct-TSTInfo, RFC 3161 §2.4.2

# Imprint hash algorithms accepted (RFC 3161 §2.4.1 leaves the list to the TSA; SHA-1 and MD5 are
# refused as no longer collision resistant, RFC 3161 §2.1 item 6), by OID and by name.
_DIGESTS = {
    "2.16.840.1.101.3.4.2.1": ("sha256", 32),
    "2.16.840.1.101.3.4.2.2": ("sha384", 48),
    "2.16.840.1.101.3.4.2.3": ("sha512", 64),
}
_DIGEST_OIDS = {name: oid for oid, (name, _) in _DIGESTS.items()}
_DIGEST_SIZES = dict(_DIGESTS.values())


def _algorithm(dotted: str, *, null_parameters: bool = False) -> bytes:
    """AlgorithmIdentifier; RFC 5754 §2: SHA-2 parameters are generated absent (NULL accepted)."""
    return tlv(SEQUENCE, oid(dotted), _NULL if null_parameters else b"")


# (name, NULL parameters?) -> AlgorithmIdentifier DER, so a request's exact imprint is echoed.
_IMPRINT_ALGORITHMS = {
    (name, null): _algorithm(oid, null_parameters=null) for name, oid in _DIGEST_OIDS.items() for null in (False, True)
}


def software_signer(private_key: ec.EllipticCurvePrivateKey) -> SignDigest:
    """A ``sign_digest`` for a key held in memory (the hub's own TSA key, decrypted once)."""
    algorithm = ec.ECDSA(utils.Prehashed(hashes.SHA256()))

    def sign_digest(digest: bytes) -> bytes:
        return private_key.sign(digest, algorithm)

    return sign_digest


class _Rejected(Exception):
    """Internal control flow of :meth:`TimeStamper.respond`; never leaves this module."""

    def __init__(self, failure: int, text: str) -> None:
        super().__init__(text)
        self.failure = failure
        self.text = text


def rejection(failure: int, text: str) -> bytes:
    """TimeStampResp with status rejection (RFC 3161 §2.4.2), a PKIFreeText and one PKIFailureInfo bit."""
    status = (
        der_integer(REJECTION)
        + tlv(SEQUENCE, tlv(_UTF8_STRING, text.encode()))  # PKIFreeText, RFC 4210 §5.1.1
        + _named_bit(failure)
    )
    return tlv(SEQUENCE, tlv(SEQUENCE, status))


_GRANTED_STATUS = tlv(SEQUENCE, der_integer(GRANTED))


class TimeStamper:
    """An RFC 3161 time-stamping unit: one certificate, one key (behind ``sign_digest``), one policy.

    Immutable after construction and safe to share between threads; build it once per process.
    """

    def __init__(
        self,
        certificate: x509.Certificate,
        chain: Sequence[x509.Certificate],
        sign_digest: SignDigest,
        *,
        policy: str = HUB_TSA_POLICY,
        clock: Callable[[], datetime] = utcnow,
        accuracy_seconds: int = 1,
    ) -> None:
        """``chain``: the certificates sent when a request sets certReq (the TSA's own is always among them).

        ``accuracy_seconds`` is the claim written into every TSTInfo (RFC 3161 §2.4.2 accuracy);
        one second is the usual commitment of a TSU clock kept to UTC by NTP (ETSI EN 319 421).
        """
        public_key = _check_certificate(certificate)
        if accuracy_seconds < 1:
            raise ValueError("accuracy is claimed in whole seconds, at least 1")
        self.certificate = certificate
        self.policy = policy
        self._sign = sign_digest
        self._clock = clock
        self._self_test(public_key, sign_digest)

        parsed = asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))
        self.certificates = tuple(
            sorted({certificate, *chain}, key=lambda c: c.public_bytes(serialization.Encoding.DER))
        )
        self._certificates = certificate_set(list(self.certificates))  # RFC 5652 §5.1, DER order
        # TSTInfo fields that never change: version 1, policy (RFC 3161 §2.4.2).
        self._tst_head = der_integer(1) + oid(policy)
        # accuracy; ordering stays absent (DEFAULT FALSE): stamps within a millisecond are unordered.
        self._accuracy = tlv(SEQUENCE, der_integer(accuracy_seconds))
        # tsa [0] GeneralName directoryName [4] (both explicit: each tags a CHOICE, which X.680 forbids implicitly),
        # the subject of the signing certificate as RFC 3161 §2.4.2 requires of this hint.
        self._tsa_name = tlv(CONTEXT_0, tlv(CONTEXT_4, parsed.subject.dump()))
        # RFC 5816 lets a TSA name itself with signingCertificateV2 instead of RFC 3161's SHA-1 one.
        content_type = attribute(OID_CONTENT_TYPE, _OID_TST_INFO)  # RFC 5652 §11.1, RFC 3161 §2.4.2
        self._signed_attributes_head, self._signed_attributes_tail = split_signed_attributes(
            content_type, signing_certificate_v2(certificate)
        )
        # SignerInfo (RFC 5652 §5.3): version 1 for issuerAndSerialNumber, digest SHA-256.
        self._signer_head = der_integer(1) + issuer_and_serial(certificate) + SHA256_ALGORITHM
        # SignedData: version 3 because eContentType is not id-data (RFC 5652 §5.1); one digest algorithm.
        self._signed_data_head = der_integer(3) + tlv(SET, SHA256_ALGORITHM)

    @staticmethod
    def _self_test(public_key: ec.EllipticCurvePublicKey, sign_digest: SignDigest) -> None:
        """Refuse a key that does not match the certificate: every token would fail verification."""
        digest = hashlib.sha256(b"licence-hub TSA self-test").digest()
        try:
            public_key.verify(sign_digest(digest), digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        except InvalidSignature as exc:
            raise ValueError("sign_digest does not sign for the TSA certificate's key") from exc

    def stamp_digest(
        self,
        message_imprint: bytes,
        *,
        hash_algorithm: str = "sha256",
        nonce: int | None = None,
        cert_req: bool = True,
    ) -> bytes:
        """A DER TimeStampToken (RFC 3161 §2.4.2) over ``message_imprint``, a digest made with ``hash_algorithm``.

        The PAdES sealer passes the SHA-256 of a signature value (ETSI EN 319 122-1 §5.3
        signature-time-stamp); ``cert_req`` puts the TSA chain into the token (RFC 3161 §2.4.1).
        """
        size = _DIGEST_SIZES.get(hash_algorithm)
        if size is None:
            raise TimestampImprintInvalid(f"imprint hash must be one of {', '.join(_DIGEST_SIZES)}")
        if len(message_imprint) != size:
            raise TimestampImprintInvalid(f"a {hash_algorithm} imprint is {size} bytes, not {len(message_imprint)}")
        return self._token(_IMPRINT_ALGORITHMS[hash_algorithm, False], bytes(message_imprint), nonce, cert_req)

    def _token(self, imprint_algorithm: bytes, imprint: bytes, nonce: int | None, cert_req: bool) -> bytes:
        moment = self._clock()
        if moment.utcoffset() is None:
            raise ValueError("the TSA clock must return timezone-aware datetimes")
        if moment.tzinfo is not UTC:
            moment = moment.astimezone(UTC)
        # RFC 3161 §2.4.2 serialNumber: unique per token; 127 random bits, odd so never zero.
        serial = int.from_bytes(secrets.token_bytes(16), "big") | 1
        tst_info = tlv(
            SEQUENCE,
            self._tst_head
            + tlv(SEQUENCE, imprint_algorithm + tlv(OCTET_STRING, imprint))  # messageImprint, echoed
            + der_integer(serial)
            + _generalized_time(moment)
            + self._accuracy
            + (b"" if nonce is None else der_integer(nonce))  # RFC 3161 §2.4.2: the request's nonce, unchanged
            + self._tsa_name,
        )
        # Signed attributes, DER SET as signed (RFC 5652 §5.4), then [0] IMPLICIT inside SignerInfo.
        signed = self._signed_attributes_head + hashlib.sha256(tst_info).digest() + self._signed_attributes_tail
        signature = self._sign(hashlib.sha256(signed).digest())
        signer_info = tlv(
            SEQUENCE,
            self._signer_head
            + bytes((CONTEXT_0,))
            + signed[1:]
            + ECDSA_SHA256_ALGORITHM
            + tlv(OCTET_STRING, signature),
        )
        # encapContentInfo: eContent [0] EXPLICIT OCTET STRING holding the TSTInfo (RFC 5652 §5.2).
        encapsulated = tlv(SEQUENCE, _OID_TST_INFO + tlv(CONTEXT_0, tlv(OCTET_STRING, tst_info)))
        signed_data = tlv(
            SEQUENCE,
            self._signed_data_head + encapsulated + (self._certificates if cert_req else b"") + tlv(SET, signer_info),
        )
        return tlv(SEQUENCE, OID_SIGNED_DATA + tlv(CONTEXT_0, signed_data))  # ContentInfo, RFC 5652 §3

    def respond(self, request_der: bytes) -> bytes:
        """Answer a DER TimeStampReq with a DER TimeStampResp (RFC 3161 §2.4.1–2.4.2); never raises on input.

        Anything refused gets status rejection with the PKIFailureInfo bit that says why.
        """
        try:
            imprint_algorithm, imprint, nonce, cert_req = self._read_request(bytes(request_der))
        except _Rejected as refused:
            return rejection(refused.failure, refused.text)
        try:
            token = self._token(imprint_algorithm, imprint, nonce, cert_req)
        except Exception:  # a key store or clock failure: RFC 3161 §2.4.2 systemFailure, not a crash
            log.exception("the time-stamping unit could not issue a token")
            return rejection(SYSTEM_FAILURE, "the time-stamping unit could not sign; retry later")
        return tlv(SEQUENCE, _GRANTED_STATUS + token)

    def _read_request(self, der: bytes) -> tuple[bytes, bytes, int | None, bool]:
        """(imprint AlgorithmIdentifier to echo, imprint, nonce, certReq), or :class:`_Rejected`."""
        try:
            request = tsp.TimeStampReq.load(der, strict=True)  # strict: trailing bytes are an error
            _ = request.native  # asn1crypto parses lazily: decode every field now, inside this try
            version = request["version"].native
            hash_algorithm = request["message_imprint"]["hash_algorithm"]
            algorithm = hash_algorithm["algorithm"].dotted
            parameters = hash_algorithm["parameters"].dump()
            imprint = request["message_imprint"]["hashed_message"].native
            policy = request["req_policy"]
            requested_policy = None if isinstance(policy, core.Void) else policy.dotted
            nonce = request["nonce"].native
            cert_req = bool(request["cert_req"].native)
            extensions = not isinstance(request["extensions"], core.Void)
        except Exception as exc:  # hostile bytes may fail anywhere in the decoder, with any exception
            raise _Rejected(BAD_DATA_FORMAT, "the body is not a DER TimeStampReq (RFC 3161 section 2.4.1)") from exc
        if version != "v1":
            raise _Rejected(BAD_REQUEST, "only TimeStampReq version 1 is supported")
        if algorithm not in _DIGESTS or parameters not in {b"", _NULL}:
            raise _Rejected(BAD_ALG, "the imprint hash must be SHA-256, SHA-384 or SHA-512")
        name, size = _DIGESTS[algorithm]
        if not isinstance(imprint, bytes) or len(imprint) != size:  # RFC 3161 §2.1 item 7
            raise _Rejected(BAD_ALG, f"a {name} imprint is {size} bytes")
        if requested_policy is not None and requested_policy != self.policy:
            raise _Rejected(UNACCEPTED_POLICY, f"this TSA issues tokens under policy {self.policy} only")
        if extensions:  # RFC 3161 §2.4.1: none is recognised, so any extension is refused
            raise _Rejected(UNACCEPTED_EXTENSION, "no request extensions are supported")
        return _IMPRINT_ALGORITHMS[name, parameters == _NULL], imprint, nonce, cert_req


def _check_certificate(certificate: x509.Certificate) -> ec.EllipticCurvePublicKey:
    """RFC 3161 §2.3: the TSA certificate's only extended key usage is id-kp-timeStamping, critical."""
    try:
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound as exc:
        raise ValueError("a TSA certificate needs the extended key usage id-kp-timeStamping") from exc
    if not usage.critical or list(usage.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
        raise ValueError("a TSA certificate's only extended key usage is id-kp-timeStamping, critical")
    public_key = certificate.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise TypeError("the TSA certificate must carry an EC public key")
    if public_key.curve.name != ec.SECP256R1.name:
        raise ValueError("the hub TSA signs with ECDSA P-256 and SHA-256 (RFC 5480 §4)")
    return public_key
