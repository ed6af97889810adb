"""Fast PAdES baseline sealing (B-B, B-T): one incremental update with a visible seal widget.

ETSI EN 319 142-1 §5 / §6: a signature dictionary with /SubFilter /ETSI.CAdES.detached whose
/Contents is a CAdES detached SignedData over the /ByteRange (the whole file but the /Contents hex
string), placed in a signature field whose widget shows the seal image. Everything that depends
only on the seal (certificates, signed-attribute template, appearance and image streams, the
signature dictionary's constant members) is prepared once in :class:`PreparedSeal`; per document
the work is: read the newest cross-reference table and three dictionaries, write the update,
hash the signed ranges, sign once (twice for B-T: the time-stamp) and copy bytes.

The update follows ISO 32000-1 §7.5.6 (incremental updates) and §12.8 (digital signatures): new
objects for the signature value, the merged field/widget, its appearance and image, a new or
updated /AcroForm with /SigFlags 3, the page with the widget in /Annots, and a classic
cross-reference section whose trailer links /Prev to the previous one. Earlier signatures stay
intact because nothing before the update is rewritten.
"""

from __future__ import annotations

import hashlib
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography import x509

from seals.cms import SignedDataTemplate
from seals.image import SealBitmap
from seals.pdfobj import PdfDict, PdfReader, PdfSyntaxError, PdfValue, Ref

_BYTERANGE_WIDTH = 42  # "[0 a b c]" padded; room for 10-digit offsets
_CERT_OVERHEAD = 600  # SignerInfo, attributes and structure around the certificates
_TIMESTAMP_RESERVE = 3000  # a token with its TSA certificate chain (hub TSA: ~1.6 KB)


class SealingFailed(ValueError):
    """The document cannot be sealed as given (not a PDF, damaged, or a layout the sealer refuses)."""


def _text_string(text: str) -> bytes:
    """ISO 32000-1 §7.9.2.2: a text string as UTF-16BE with BOM, written as a hex string."""
    return b"<feff" + text.encode("utf-16-be").hex().encode() + b">"


def _stream(dictionary: bytes, data: bytes) -> bytes:
    return dictionary[:-2] + b" /Length %d>>\nstream\n" % len(data) + data + b"\nendstream"


def _pdf_date(moment: datetime) -> bytes:
    return moment.astimezone(UTC).strftime("(D:%Y%m%d%H%M%SZ)").encode()  # §7.9.4


@dataclass(frozen=True)
class PreparedSeal:
    """Per-seal material, computed once and reused for every document this seal signs."""

    sign_digest: Callable[[bytes], bytes]
    template: SignedDataTemplate
    image: bytes  # image XObject dictionary + compressed stream; "/SMask %d 0 R" is filled per document
    smask: bytes
    reason: bytes
    location: bytes
    contents_size: int  # bytes reserved for the CMS (the hex string is twice as long)
    field_prefix: str

    @classmethod
    def build(
        cls,
        *,
        sign_digest: Callable[[bytes], bytes],
        certificate: x509.Certificate,
        chain: list[x509.Certificate],
        bitmap: SealBitmap,
        reason: str = "电子证照签章",
        location: str = "",
        timestamp_chain_size: int = _TIMESTAMP_RESERVE,
    ) -> PreparedSeal:
        template = SignedDataTemplate.build(certificate, chain)
        certs = len(template.outer_head)
        rgb = zlib.compress(bitmap.rgb, 6)
        alpha = zlib.compress(bitmap.alpha, 6)
        dims = b"/Width %d /Height %d /BitsPerComponent 8 /Filter /FlateDecode" % (bitmap.width, bitmap.height)
        image = _stream(b"<</Type /XObject /Subtype /Image /ColorSpace /DeviceRGB " + dims + b" /SMask %d 0 R>>", rgb)
        smask = _stream(b"<</Type /XObject /Subtype /Image /ColorSpace /DeviceGray " + dims + b">>", alpha)
        return cls(
            sign_digest=sign_digest,
            template=template,
            image=image,
            smask=smask,
            reason=_text_string(reason),
            location=_text_string(location),
            contents_size=certs + _CERT_OVERHEAD + timestamp_chain_size,
            field_prefix="Seal-" + hashlib.sha256(template.signer_head).hexdigest()[:8],
        )


@dataclass
class _Update:
    """The incremental update being written: objects in order, with their offsets."""

    base: int  # offset where the update starts (length of the original file)
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    offsets: dict[int, int] = field(default_factory=dict)

    def add(self, num: int, body: bytes) -> None:
        self.offsets[num] = self.base + self.size
        self.write(b"%d 0 obj\n" % num + body + b"\nendobj\n")

    def write(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.size += len(chunk)


def _xref(offsets: dict[int, int]) -> bytes:
    """§7.5.4: one subsection per run of consecutive object numbers, 20-byte entries."""
    parts = [b"xref\n"]
    nums = sorted(offsets)
    run: list[int] = []
    for num in nums:
        if run and num != run[-1] + 1:
            parts.append(_subsection(run, offsets))
            run = []
        run.append(num)
    parts.append(_subsection(run, offsets))
    return b"".join(parts)


def _subsection(run: list[int], offsets: dict[int, int]) -> bytes:
    return b"%d %d\n" % (run[0], len(run)) + b"".join(b"%010d 00000 n\r\n" % offsets[n] for n in run)


def _refs_with(existing: PdfValue, new: Ref) -> bytes:
    """``existing`` (an array of indirect references, §12.5.2 / §12.7.2) with ``new`` appended."""
    items = existing if isinstance(existing, list) else []
    if not all(isinstance(v, Ref) for v in items):
        raise SealingFailed("/Annots and /Fields must hold indirect references (ISO 32000-1 §12.5.2)")
    return b"[" + b" ".join([*(v.pdf() for v in items if isinstance(v, Ref)), new.pdf()]) + b"]"


class _Target:
    """What the update rewrites: the catalog, the page that gets the widget, the form and its fields."""

    def __init__(self, pdf: bytes, page_index: int) -> None:
        try:
            reader = PdfReader(pdf)
            root = reader.trailer.get("Root")
            size = reader.trailer.get("Size")
            if not isinstance(root, Ref):
                raise PdfSyntaxError("the trailer has no /Root reference")
            if not isinstance(size, int) or size < 1:
                raise PdfSyntaxError("the trailer has no valid /Size")
            self.catalog = reader.dict(root, "the catalog")
            self.page = reader.page_ref(page_index)
            self.page_dict = reader.dict(self.page, "the page")
            form_value = self.catalog.get("AcroForm")
            form = reader.resolve(form_value)
            annots_value = self.page_dict.get("Annots")
            annots = reader.resolve(annots_value)
        except ValueError as exc:  # PdfSyntaxError, PdfUnsupported
            raise SealingFailed(str(exc)) from exc
        if form is not None and not isinstance(form, PdfDict):
            raise SealingFailed("/AcroForm is not a dictionary")
        if isinstance(form, PdfDict) and isinstance(form.get("Fields"), Ref):
            raise SealingFailed("an indirect /Fields array is not supported by the fast sealer")
        if isinstance(annots_value, Ref) or (annots is not None and not isinstance(annots, list)):
            raise SealingFailed("an indirect or malformed /Annots array is not supported by the fast sealer")
        if "Encrypt" in reader.trailer:  # new objects would be written in the clear (§7.6)
            raise SealingFailed("encrypted PDFs are not sealed; remove the encryption first")
        form_ref = form_value if isinstance(form_value, Ref) else None
        if any(ref is not None and ref.gen != 0 for ref in (root, self.page, form_ref)):
            raise SealingFailed("objects with a non-zero generation number are not supported by the fast sealer")
        self.reader, self.root, self.size = reader, root, size
        self.form: PdfDict | None = form
        self.form_ref = form_ref
        self.fields: PdfValue = form.get("Fields") if form is not None else []
        self.annots: PdfValue = annots

    def trailer(self, size: int, xref_at: int) -> bytes:
        """§7.5.5: the new trailer links the previous section; /ID keeps its first half (§14.4)."""
        old = self.reader.trailer
        members = [b"/Size %d" % size, b"/Root " + self.root.pdf(), b"/Prev %d" % self.reader.startxref]
        if "Info" in old.raw:
            members.append(b"/Info " + old.raw["Info"])
        first_id = old.get("ID")
        if isinstance(first_id, list) and first_id and isinstance(first_id[0], bytes):
            members.append(b"/ID [" + first_id[0] + b" <" + secrets.token_hex(16).encode() + b">]")
        return b"trailer\n<<" + b" ".join(members) + b">>\nstartxref\n%d\n%%%%EOF\n" % xref_at


@dataclass(frozen=True)
class _Slots:
    """Absolute offsets of the two placeholders the signature fills in."""

    byte_range: int
    contents: int  # the '<' of the /Contents hex string
    hex_size: int


def _write_update(
    pdf: bytes,
    seal: PreparedSeal,
    target: _Target,
    rect: tuple[float, float, float, float],
    moment: datetime,
) -> tuple[bytearray, _Slots]:
    num = target.size
    sig, widget, appearance, image, smask = (Ref(num + i, 0) for i in range(5))
    form_ref = target.form_ref or Ref(num + 5, 0)
    next_num = num + 5 + (target.form_ref is None)
    update = _Update(base=len(pdf))
    if not pdf.endswith((b"\n", b"\r")):
        update.write(b"\n")  # §7.5.5: "%%EOF" ends the last line; objects start on a new one

    # The signature value (§12.8.1 Table 252); /ByteRange and /Contents are filled after hashing.
    hex_size = 2 * seal.contents_size
    head = b"<</Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached /M " + _pdf_date(moment)
    head += b" /Reason " + seal.reason + (b" /Location " + seal.location if seal.location != b"<feff>" else b"")
    head += b" /ByteRange "
    update.add(sig.num, head + b" " * _BYTERANGE_WIDTH + b" /Contents <" + b"0" * hex_size + b">>>")
    byte_range_at = update.offsets[sig.num] + len(b"%d 0 obj\n" % sig.num) + len(head)
    slots = _Slots(byte_range_at, byte_range_at + _BYTERANGE_WIDTH + len(b" /Contents "), hex_size)

    x1, y1, x2, y2 = rect
    count = len(target.fields) if isinstance(target.fields, list) else 0
    update.add(
        widget.num,
        b"<</Type /Annot /Subtype /Widget /FT /Sig /F 132 /T "  # §12.5.3: Print + Locked
        + _text_string(f"{seal.field_prefix}-{count + 1}")
        + b" /Rect [%.2f %.2f %.2f %.2f] /P %s /V %s /AP <</N %s>>>>"
        % (x1, y1, x2, y2, target.page.pdf(), sig.pdf(), appearance.pdf()),
    )
    width, height = x2 - x1, y2 - y1
    update.add(
        appearance.num,
        _stream(
            b"<</Type /XObject /Subtype /Form /BBox [0 0 %.2f %.2f] /Resources <</XObject <</Im0 %s>>>>>>"
            % (width, height, image.pdf()),
            b"q %.2f 0 0 %.2f 0 0 cm /Im0 Do Q" % (width, height),  # §8.3.4: image space to the widget
        ),
    )
    update.add(image.num, seal.image.replace(b"/SMask %d 0 R", b"/SMask " + smask.pdf(), 1))
    update.add(smask.num, seal.smask)

    # §12.7.2: the field joins /AcroForm /Fields; /SigFlags 3 = SignaturesExist | AppendOnly.
    form_members = {"Fields": _refs_with(target.fields, widget), "SigFlags": b"3"}
    form = target.form.serialise(form_members) if target.form is not None else None
    update.add(form_ref.num, form or b"<</Fields " + form_members["Fields"] + b" /SigFlags 3>>")
    if target.form_ref is None:  # a new (or formerly inline) form: the catalog points at it
        update.add(target.root.num, target.catalog.serialise({"AcroForm": form_ref.pdf()}))
    update.add(target.page.num, target.page_dict.serialise({"Annots": _refs_with(target.annots, widget)}))

    xref_at = update.base + update.size
    update.write(_xref(update.offsets))
    update.write(target.trailer(next_num, xref_at))
    return bytearray(b"".join(update.chunks)), slots


def seal_pdf(
    pdf: bytes,
    seal: PreparedSeal,
    *,
    rect: tuple[float, float, float, float],
    page_index: int = 0,
    timestamp: Callable[[bytes], bytes] | None = None,
    signing_time: datetime | None = None,
) -> bytes:
    """Append a PAdES signature with the seal widget at ``rect`` (points) on page ``page_index``.

    ``timestamp`` turns B-B into B-T: it maps the SHA-256 of the signature value to an RFC 3161
    token (the hub TSA in-process, or a client of a remote one).
    """
    target = _Target(pdf, page_index)
    body, slots = _write_update(pdf, seal, target, rect, signing_time or datetime.now(UTC))
    base = len(pdf)
    total = base + len(body)
    contents_end = slots.contents + slots.hex_size + 2
    byte_range = b"[0 %d %d %d]" % (slots.contents, contents_end, total - contents_end)
    if len(byte_range) > _BYTERANGE_WIDTH:
        raise SealingFailed("the document is too large for the signature's byte range field")
    at = slots.byte_range - base
    body[at : at + _BYTERANGE_WIDTH] = byte_range.ljust(_BYTERANGE_WIDTH)

    # The signed ranges: the original file, then the update around the /Contents hex string.
    contents = slots.contents - base
    digest = hashlib.sha256(pdf)
    view = memoryview(body)
    digest.update(view[:contents])
    digest.update(view[contents + slots.hex_size + 2 :])
    view.release()
    cms = seal.template.sign(digest.digest(), seal.sign_digest, timestamp)
    if len(cms) > seal.contents_size:
        raise SealingFailed("the signature is larger than the space reserved for it")
    hex_cms = cms.hex().encode()
    body[contents + 1 : contents + 1 + len(hex_cms)] = hex_cms
    return pdf + body
