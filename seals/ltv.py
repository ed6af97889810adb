"""B-LT / B-LTA augmentation of sealed PDFs with pyHanko: DSS with certificates and CRLs, then a document time-stamp.

ETSI EN 319 142-1 §5.4 (B-LT: validation data in the Document Security Store) and §5.5 (B-LTA: a
document time-stamp over everything, renewable before its algorithms weaken). This is the slow,
general path and runs as a background job; the per-document sealing stays on the fast path.
"""

from __future__ import annotations

import io

from asn1crypto import crl as asn1_crl
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.signers.pdf_signer import PdfTimeStamper
from pyhanko.sign.timestamps.api import TimeStamper as PyHankoTimeStamper
from pyhanko.sign.validation import add_validation_info
from pyhanko_certvalidator import ValidationContext

from seals import tsa
from seals.pades import SealingFailed
from seals.verify import TrustSettings


class HubTimeStamper(PyHankoTimeStamper):
    """pyHanko's time-stamp client API answered by the hub TSA in-process (same RFC 3161 bytes as /v1/tsa)."""

    def __init__(self, stamper: tsa.TimeStamper) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._stamper = stamper

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        return tsp.TimeStampResp.load(self._stamper.respond(req.dump()))


def validation_context(trust: TrustSettings) -> ValidationContext:
    return ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(der) for der in trust.roots],
        other_certs=[asn1_x509.Certificate.load(der) for der in trust.other_certs],
        crls=[asn1_crl.CertificateList.load(der) for der in trust.crls],
        allow_fetching=False,
        revocation_mode="hard-fail",  # B-LT must carry complete revocation data or not be made
    )


def augment_to_lta(pdf: bytes, trust: TrustSettings, stamper: tsa.TimeStamper) -> bytes:
    """Add the DSS for every signature (B-LT), then a document time-stamp with its own data (B-LTA)."""
    context = validation_context(trust)
    try:
        current = pdf
        reader = PdfFileReader(io.BytesIO(current))
        for index in range(len(reader.embedded_signatures)):
            sig = PdfFileReader(io.BytesIO(current)).embedded_signatures[index]
            out = add_validation_info(sig, context, output=io.BytesIO())
            current = out.getvalue()
        writer = IncrementalPdfFileWriter(io.BytesIO(current))
        timestamped = PdfTimeStamper(HubTimeStamper(stamper)).timestamp_pdf(
            writer, "sha256", validation_context=context, output=io.BytesIO()
        )
        return bytes(timestamped.getvalue())
    except Exception as exc:  # pyHanko raises many types; the job reports one clear failure
        raise SealingFailed(f"B-LTA augmentation failed: {type(exc).__name__}: {exc}") from exc
