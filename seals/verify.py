"""PDF seal verification: one report per signature and an ETSI EN 319 102-1 verdict, using pyHanko.

pyHanko does the cryptography, path building, revocation checks and the difference analysis of
what changed after each signature; this module decides the verdict from its findings:

- TOTAL-FAILED: the file is not a PDF or a signature cannot be parsed (FORMAT_FAILURE), the signed
  bytes changed (HASH_FAILURE), the signature value is wrong (SIG_CRYPTO_FAILURE), the seal was
  revoked before the proven signing time (REVOKED), or the document was changed after sealing in
  a way a seal does not permit (FORMAT_FAILURE, with what changed).
- INDETERMINATE: no path to a trusted root (NO_CERTIFICATE_CHAIN_FOUND), the seal was revoked and
  nothing proves the signature is older (REVOKED_NO_POE), the certificate was expired at the
  proven signing time (OUT_OF_BOUNDS_NO_POE), or revocation could not be checked (TRY_LATER).
- TOTAL-PASSED otherwise.

The best signature time (ETSI EN 319 102-1 §5.6.2.1) is the time of a valid signature time-stamp
if there is one (B-T and above), else the validation time: a B-B seal revoked today fails today.
Hostile files get a verdict, never an exception: parsing is bounded by :data:`MAX_FILE_BYTES`, stream
decoding by :data:`DECODE_LIMITS` (zip bombs), and any error inside pyHanko becomes FORMAT_FAILURE.
tests/seals/test_hostile_pdfs.py measures the time and memory each kind of hostile file costs.
"""

from __future__ import annotations

import io
import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.decode_limits import DecodeLimits, DocumentDecodeBudget, StreamDecodeLimits
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.errors import NoDSSFoundError, SignatureValidationError
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import DocumentTimestampStatus, PdfSignatureStatus
from pyhanko_certvalidator import ValidationContext

log = logging.getLogger(__name__)
# pyHanko warns, with a traceback, about each suspicious change its analysis finds in a file. The verdict says
# what changed, so on the public endpoint these warnings would only let anyone write up to 16 tracebacks to
# the hub's log per upload.
logging.getLogger("pyhanko.sign.diff_analysis").setLevel(logging.ERROR)

PASSED, FAILED, INDETERMINATE = "TOTAL-PASSED", "TOTAL-FAILED", "INDETERMINATE"
MAX_FILE_BYTES = 20 * 1024 * 1024
_MIB = 1024 * 1024
# What decoding one uploaded file may produce. pyHanko's defaults for untrusted input allow 256 MiB per
# stream and 100x the file in all (2 GiB for a 20 MiB upload); a sealed licence is a few hundred KiB and
# verification decodes little besides object and xref streams and the DSS, so the hub allows far less.
DECODE_LIMITS = DecodeLimits(
    per_stream=StreamDecodeLimits(max_output_size=32 * _MIB),
    document_budget=DocumentDecodeBudget(base_allowance=64 * _MIB, max_ratio=4),
)
# The change analysis compares every revision with the next for every signature: its cost grows with
# signatures x revisions^2 and with the objects each revision writes (3,000 one-object revisions took 42 s;
# 300 copies of one signature 6 s; 200,000 objects in one revision 4.8 s a signature). A licence has one
# seal, a document time-stamp and a DSS per B-LTA renewal, and a few hundred objects, so far fewer than these.
MAX_SIGNATURES = 16
MAX_REVISIONS = 64
MAX_OBJECTS = 10_000  # written across all revisions
# Changes after a seal that leave what it sealed untouched (ETSI EN 319 142-1 §5.4: DSS and
# document time-stamps for B-LT/B-LTA; further seals filling their own signature fields).
PERMITTED_AFTER_SEAL = (ModificationLevel.NONE, ModificationLevel.LTA_UPDATES, ModificationLevel.FORM_FILLING)


@dataclass(frozen=True)
class TrustSettings:
    """Trust anchors (the hub root first, then roots of other hubs: 跨域验签) and revocation data."""

    roots: tuple[bytes, ...]  # DER certificates
    crls: tuple[bytes, ...] = ()  # DER CRLs the hub publishes (offline revocation checks)
    other_certs: tuple[bytes, ...] = ()  # intermediates that may be missing from a signature


@dataclass
class SignerInfo:
    common_name: str | None
    organization: str | None
    organization_identifier: str | None  # the department's USCC (X.520 organizationIdentifier)
    serial: str
    issuer: str
    not_after: str


@dataclass
class SignatureReport:
    field_name: str
    indication: str
    sub_indication: str | None
    detail: str
    intact: bool
    signature_valid: bool
    signer: SignerInfo | None
    chain_trusted: bool
    trust_anchor: str | None
    revocation: str  # good | revoked | unknown
    revoked_at: str | None
    claimed_signing_time: str | None
    timestamp_time: str | None
    timestamp_trusted: bool | None
    best_signature_time: str
    covers_whole_document: bool
    coverage: str
    modifications_after: str
    sub_filter: str | None


@dataclass
class FileReport:
    verdict: str
    sub_indication: str | None
    detail: str
    signatures: list[SignatureReport] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _time(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def _attr(name: asn1_x509.Name, key: str) -> str | None:
    value = name.native.get(key)
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value) if value is not None else None


def _signer(cert: asn1_x509.Certificate | None) -> SignerInfo | None:
    if cert is None:
        return None
    subject = cert.subject
    return SignerInfo(
        common_name=_attr(subject, "common_name"),
        organization=_attr(subject, "organization_name"),
        organization_identifier=_attr(subject, "organization_identifier"),
        serial=f"{cert.serial_number:x}",
        issuer=cert.issuer.human_friendly,
        not_after=_time(cert["tbs_certificate"]["validity"]["not_after"].native) or "",
    )


class Verifier:
    """Verifies sealed PDFs against a fixed set of trust anchors and CRLs."""

    def __init__(self, trust: TrustSettings, *, decode_limits: DecodeLimits = DECODE_LIMITS) -> None:
        self._decode_limits = decode_limits
        self._roots = [asn1_x509.Certificate.load(der) for der in trust.roots]
        self._crls = [asn1_crl.CertificateList.load(der) for der in trust.crls]
        self._others = [asn1_x509.Certificate.load(der) for der in trust.other_certs]

    def _context(self, moment: datetime | None, *, hard: bool, dss: DocumentSecurityStore | None) -> ValidationContext:
        settings: dict[str, Any] = {
            "trust_roots": self._roots,
            "other_certs": self._others,
            "crls": self._crls,
            "moment": moment,
            "best_signature_time": moment,
            "allow_fetching": False,  # offline: years later, without the network
            # A CRL issued after the signing time still says whether the seal was revoked then.
            "retroactive_revinfo": True,
            "revocation_mode": "hard-fail" if hard else "soft-fail",
        }
        if dss is not None:
            # B-LT/B-LTA (ETSI EN 319 142-1 §5.4): CRLs and certificates the document carries. They are
            # signed by their CAs, so who embedded them does not matter; trust still ends at our anchors.
            return dss.as_validation_context(settings)
        return ValidationContext(**settings)

    def verify(self, data: bytes, *, now: datetime | None = None) -> FileReport:
        read = self._read(data)
        if isinstance(read, str):
            return FileReport(FAILED, "FORMAT_FAILURE", read)
        embedded, dss = read
        if len(embedded) > MAX_SIGNATURES:
            detail = f"the file has {len(embedded)} signatures, more than a licence ever has ({MAX_SIGNATURES})"
            return FileReport(FAILED, "FORMAT_FAILURE", detail)
        if not embedded:
            return FileReport(FAILED, "FORMAT_FAILURE", "the document carries no seal (no signature)")
        reports = [self._one(sig, now or datetime.now(UTC), dss) for sig in embedded]
        for level in (FAILED, INDETERMINATE):
            worst = next((r for r in reports if r.indication == level), None)
            if worst is not None:
                return FileReport(level, worst.sub_indication, f"{worst.field_name}: {worst.detail}", reports)
        return FileReport(PASSED, None, "every seal is intact, trusted and unrevoked", reports)

    def _read(self, data: bytes) -> tuple[list[EmbeddedPdfSignature], DocumentSecurityStore | None] | str:
        """The signatures and DSS of a file, or why it is refused without analysis."""
        if len(data) > MAX_FILE_BYTES:
            return f"the file is larger than {MAX_FILE_BYTES} bytes"
        if not data.startswith(b"%PDF-"):
            return "not a PDF file"
        try:
            reader = PdfFileReader(io.BytesIO(data), strict=False, decode_limits=self._decode_limits)
            revisions = reader.xrefs.total_revisions
            if revisions > MAX_REVISIONS:
                return f"the file has {revisions} revisions, more than a licence ever has ({MAX_REVISIONS})"
            objects = sum(len(reader.xrefs.explicit_refs_in_revision(n)) for n in range(revisions))
            if objects > MAX_OBJECTS:
                return f"the file writes {objects} objects, more than a licence ever has ({MAX_OBJECTS})"
            embedded = list(reader.embedded_signatures)
            try:
                dss: DocumentSecurityStore | None = DocumentSecurityStore.read_dss(reader)
            except NoDSSFoundError:
                dss = None
        except Exception as exc:  # noqa: BLE001 - any parser failure on hostile input is a verdict
            log.info("unreadable PDF", extra={"error": type(exc).__name__})
            return "the PDF cannot be parsed"
        return embedded, dss

    def _one(self, sig: EmbeddedPdfSignature, now: datetime, dss: DocumentSecurityStore | None) -> SignatureReport:
        name = sig.field_name or "?"
        try:
            sub_filter = str(sig.sig_object.get("/SubFilter"))
            if sig.sig_object_type == "/DocTimeStamp":  # B-LTA: ETSI EN 319 142-1 §5.5
                doc_ts = validate_pdf_timestamp(sig, validation_context=self._context(now, hard=True, dss=dss))
                return _report(name, sub_filter, doc_ts, now, (doc_ts.timestamp, True))
            claimed_ts = _timestamp_time(sig)
            status = self._validate(sig, claimed_ts or now, dss)
            ts = status.timestamp_validity
            ts_ok = ts is not None and ts.intact and ts.valid and ts.trust_problem_indic is None
            if claimed_ts is not None and not ts_ok:
                # An untrusted time-stamp proves nothing: judge the seal as of now (§5.6.2.1).
                status = self._validate(sig, now, dss)
        except (SignatureValidationError, PdfError, ValueError, KeyError, TypeError) as exc:
            return _failed(name, "FORMAT_FAILURE", f"the signature cannot be processed: {exc}")
        except Exception as exc:  # noqa: BLE001 - hostile input must end in a verdict
            log.info("signature validation error", extra={"error": type(exc).__name__})
            return _failed(name, "FORMAT_FAILURE", "the signature cannot be processed")
        best = claimed_ts if claimed_ts is not None and ts_ok else now
        return _report(name, sub_filter, status, best, (claimed_ts, ts_ok) if claimed_ts else None)

    def _validate(
        self, sig: EmbeddedPdfSignature, moment: datetime, dss: DocumentSecurityStore | None
    ) -> PdfSignatureStatus:
        return validate_pdf_signature(
            sig,
            signer_validation_context=self._context(moment, hard=True, dss=dss),
            ts_validation_context=self._context(None, hard=False, dss=dss),
        )


def _timestamp_time(sig: EmbeddedPdfSignature) -> datetime | None:
    """GenTime of the signature time-stamp token (RFC 3161 §2.4.2), before it is validated."""
    unsigned = sig.signer_info["unsigned_attrs"]
    if not unsigned:
        return None
    for attr in unsigned:
        if attr["type"].native == "signature_time_stamp_token":
            token = attr["values"][0]
            tst_info = token["content"]["encap_content_info"]["content"].parsed
            gen_time: datetime = tst_info["gen_time"].native
            return gen_time
    return None


def _failed(name: str, sub: str, detail: str) -> SignatureReport:
    return SignatureReport(
        field_name=name, indication=FAILED, sub_indication=sub, detail=detail, intact=False,
        signature_valid=False, signer=None, chain_trusted=False, trust_anchor=None, revocation="unknown",
        revoked_at=None, claimed_signing_time=None, timestamp_time=None, timestamp_trusted=None,
        best_signature_time=_time(datetime.now(UTC)) or "", covers_whole_document=False, coverage="unknown",
        modifications_after="unknown", sub_filter=None,
    )  # fmt: skip


def _report(
    name: str,
    sub_filter: str,
    status: PdfSignatureStatus | DocumentTimestampStatus,
    best: datetime,
    ts_status: tuple[datetime, bool] | None,
) -> SignatureReport:
    indication, sub, detail = _indication(status, best if ts_status and ts_status[1] else None)
    revocation = "unknown"
    revoked_at = None
    if status.revocation_details is not None:
        revocation, revoked_at = "revoked", _time(status.revocation_details.revocation_date)
    elif status.trust_problem_indic is None and status.validation_path is not None:
        revocation = "good"
    path = status.validation_path
    anchor = path.trust_anchor.name.human_friendly if path is not None and hasattr(path.trust_anchor, "name") else None
    modification = status.modification_level.name.lower() if status.modification_level is not None else "unknown"
    return SignatureReport(
        field_name=name,
        indication=indication,
        sub_indication=sub,
        detail=detail,
        intact=status.intact,
        signature_valid=status.valid,
        signer=_signer(status.signing_cert),
        chain_trusted=path is not None,
        trust_anchor=anchor,
        revocation=revocation,
        revoked_at=revoked_at,
        claimed_signing_time=_time(getattr(status, "signer_reported_dt", None)),
        timestamp_time=_time(ts_status[0]) if ts_status else None,
        timestamp_trusted=ts_status[1] if ts_status else None,
        best_signature_time=_time(best) or "",
        covers_whole_document=_coverage(status) == "entire_file",
        coverage=_coverage(status),
        modifications_after=modification,
        sub_filter=sub_filter,
    )


def _indication(
    status: PdfSignatureStatus | DocumentTimestampStatus, proven_time: datetime | None
) -> tuple[str, str | None, str]:
    """ETSI EN 319 102-1 §5.1.3 indication for one signature; ``proven_time`` from a trusted time-stamp."""
    if not status.intact:
        return FAILED, "HASH_FAILURE", "the sealed bytes were changed"
    if not status.valid:
        return FAILED, "SIG_CRYPTO_FAILURE", "the signature value does not verify"
    level = status.modification_level
    if _coverage(status) != "entire_file" and (level not in PERMITTED_AFTER_SEAL or status.docmdp_ok is False):
        return FAILED, "FORMAT_FAILURE", f"the document was changed after sealing ({_diff(status)})"
    problem = status.trust_problem_indic
    if problem is not None:
        sub = str(getattr(problem, "name", problem))  # an AdESIndeterminate / AdESFailure member
        revoked = status.revocation_details
        # §5.6.2.1 / §5.5: with proof of existence before the revocation it stays valid (pyHanko
        # then reports no problem); proof of existence only after it turns REVOKED_NO_POE into REVOKED.
        if sub == "REVOKED" or (
            sub == "REVOKED_NO_POE" and revoked is not None and proven_time and revoked.revocation_date <= proven_time
        ):
            return FAILED, "REVOKED", "the seal certificate was revoked before the proven signing time"
        return INDETERMINATE, sub, f"the seal certificate could not be validated ({sub})"
    return PASSED, None, "intact, trusted and not revoked at the signing time"


def _coverage(status: PdfSignatureStatus | DocumentTimestampStatus) -> str:
    return status.coverage.name.lower() if status.coverage is not None else "unknown"


def _diff(status: PdfSignatureStatus | DocumentTimestampStatus) -> str:
    result = status.diff_result
    if result is None:
        return "modifications not analysed"
    return str(getattr(result, "failure_message", None) or getattr(result, "modification_level", "unknown"))
