"""A corpus of hostile PDFs built from one genuine sealed file: what an attacker would upload to ``/verify``.

Each entry is made by hand from bytes, so the malformation is exactly the one named: a revision
appended after the seal (the way incremental-update attacks work), a trailer that lies, an object
nested 100,000 deep, a stream that inflates to gigabytes. pikepdf and pyHanko would refuse to write
most of these, which is why the revisions are written here rather than with a PDF library.
"""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers

GIB = 1024**3


@dataclass(frozen=True)
class Tail:
    """What the last revision's trailer says: where its xref is, the catalogue, the object count."""

    startxref: int
    root: int
    size: int


def tail(pdf: bytes) -> Tail:
    startxref = int(re.match(rb"startxref\s+(\d+)", pdf[pdf.rindex(b"startxref") :]).group(1))  # type: ignore[union-attr]
    trailer = pdf[pdf.rindex(b"trailer") :]
    root = int(re.search(rb"/Root\s+(\d+)\s+0\s+R", trailer).group(1))  # type: ignore[union-attr]
    size = int(re.search(rb"/Size\s+(\d+)", trailer).group(1))  # type: ignore[union-attr]
    return Tail(startxref, root, size)


def obj(pdf: bytes, number: int) -> bytes:
    """The body of the newest definition of object ``number`` (between ``obj`` and ``endobj``)."""
    found = list(re.finditer(rb"(?<![0-9])%d 0 obj\s*(.*?)\s*endobj" % number, pdf, flags=re.DOTALL))
    return found[-1].group(1)


def append_revision(
    pdf: bytes,
    objects: dict[int, bytes],
    *,
    prev: int | None = None,
    size: int | None = None,
    trailer_extra: bytes = b"",
) -> bytes:
    """``pdf`` plus an incremental update defining ``objects`` (number → body), with a classic xref."""
    last = tail(pdf)
    out = bytearray(pdf if pdf.endswith(b"\n") else pdf + b"\n")
    offsets = {}
    for number, body in sorted(objects.items()):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n"
    for number, offset in offsets.items():
        out += b"%d 1\n%010d 00000 n \n" % (number, offset)
    new_size = size if size is not None else max(last.size, max(objects, default=0) + 1)
    prev_at = last.startxref if prev is None else prev
    out += b"trailer\n<< /Size %d /Root %d 0 R /Prev %d %s>>\n" % (new_size, last.root, prev_at, trailer_extra)
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


def pages_number(pdf: bytes) -> int:
    """The page tree's root, named by the catalogue's /Pages."""
    return int(re.search(rb"/Pages\s+(\d+)\s+0\s+R", obj(pdf, tail(pdf).root)).group(1))  # type: ignore[union-attr]


def page_number(pdf: bytes) -> int:
    """The first page object: the first of the page tree root's /Kids."""
    return int(re.search(rb"/Kids\s*\[\s*(\d+)\s+0\s+R", obj(pdf, pages_number(pdf))).group(1))  # type: ignore[union-attr]


def with_contents(pdf: bytes, contents: bytes) -> bytes:
    """An appended revision giving the first page a new content stream (object body ``contents``)."""
    page, fresh = page_number(pdf), tail(pdf).size
    body = re.sub(rb"/Contents\s+\d+\s+0\s+R", b"/Contents %d 0 R" % fresh, obj(pdf, page))
    return append_revision(pdf, {page: body, fresh: contents})


def stream(data: bytes, dictionary: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n" % (len(data), dictionary) + data + b"\nendstream"


# ---------------------------------------------------------------------------------------------- payloads


@cache
def deflated_zeros(gib: int, layers: int = 1) -> bytes:
    """``gib`` GiB of zero bytes, deflated ``layers`` times: a few MB, or a few KB when nested."""
    chunk = bytes(64 * 1024 * 1024)
    packer = zlib.compressobj(9)
    parts = [packer.compress(chunk) for _ in range(gib * 16)]
    data = b"".join(parts) + packer.flush()
    for _ in range(layers - 1):
        data = zlib.compress(data, 9)
    return data


def nested(depth: int, opening: bytes, closing: bytes) -> bytes:
    return opening * depth + closing * depth


# -------------------------------------------------------------------------------------------- the corpus


def flip_signed_byte(pdf: bytes) -> bytes:
    start = pdf.index(b"BT /F1") if b"BT /F1" in pdf else len(pdf) // 4
    return pdf[:start] + bytes([pdf[start] ^ 0x01]) + pdf[start + 1 :]


def shadow_content(pdf: bytes) -> bytes:
    """Hide-and-replace: a later revision swaps the page content for a forged one."""
    return with_contents(pdf, stream(b"BT /F1 24 Tf 100 700 Td (Forged licence) Tj ET"))


def seal_signature_number(pdf: bytes) -> int:
    """The object number of the seal's signature dictionary (/Type /Sig)."""
    found = re.search(rb"(\d+) 0 obj\s*<<\s*/Type\s*/Sig\b", pdf)
    assert found is not None
    return int(found.group(1))


def with_signature_fields(pdf: bytes, values: list[int | bytes]) -> bytes:
    """An appended revision adding one signature field per value to the AcroForm's /Fields.

    A value is the signature dictionary the field's /V names: an existing object's number, or the body of a
    new object (a copy).
    """
    last = tail(pdf)
    catalogue = obj(pdf, last.root)
    old_form = re.search(rb"/AcroForm\s+(\d+)\s+0\s+R", catalogue)
    assert old_form is not None
    fields = re.search(rb"/Fields\s*\[([^\]]*)\]", obj(pdf, int(old_form.group(1))))
    assert fields is not None
    form, free = last.size, last.size + 1
    objects = {last.root: catalogue.replace(old_form.group(0), b"/AcroForm %d 0 R" % form)}
    widgets = []
    for n, value in enumerate(values):
        widget, free = free, free + 1
        target = value
        if isinstance(value, bytes):
            objects[free], target, free = value, free, free + 1
        objects[widget] = b"<< /FT /Sig /T (Copy%d) /V %d 0 R /Type /Annot /Subtype /Widget /Rect [0 0 0 0] >>" % (
            n,
            target,
        )
        widgets.append(b"%d 0 R" % widget)
    objects[form] = b"<< /Fields [%s %s] /SigFlags 3 >>" % (fields.group(1).strip(), b" ".join(widgets))
    return append_revision(pdf, objects)


def fake_second_signature(pdf: bytes) -> bytes:
    """Forged content plus a second signature field that reuses the first seal's /ByteRange and CMS.

    The copied signature is genuine over the first revision's bytes, so a verifier that only asks
    "is each signature intact?" would pass the forged page.
    """
    return with_signature_fields(shadow_content(pdf), [obj(pdf, seal_signature_number(pdf))])


def garbage_signature(pdf: bytes) -> bytes:
    """The seal's CMS replaced by random-looking DER that claims to be much longer than it is."""
    match = re.search(rb"/Contents\s*<([0-9a-fA-F]+)>", pdf)
    assert match is not None
    junk = (b"3084ffffffff" + b"a0" * (len(match.group(1)) // 2))[: len(match.group(1))]
    return pdf[: match.start(1)] + junk + pdf[match.end(1) :]


def byte_range_out_of_bounds(pdf: bytes) -> bytes:
    """The second signed range moved past the end of the file (the sealer pads /ByteRange with spaces)."""
    match = re.search(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\] *", pdf)
    assert match is not None
    replacement = b"/ByteRange [0 %d 99999999 99999999]" % int(match.group(2))
    width = match.end() - match.start()
    assert len(replacement) <= width
    return pdf[: match.start()] + replacement.ljust(width) + pdf[match.end() :]


def startxref_garbage(pdf: bytes) -> bytes:
    cut = pdf.rindex(b"startxref")
    return pdf[:cut] + b"startxref\n987654321987\n%%EOF\n"


def startxref_not_a_number(pdf: bytes) -> bytes:
    cut = pdf.rindex(b"startxref")
    return pdf[:cut] + b"startxref\n-1e309 (\n%%EOF\n"


def prev_self_loop(pdf: bytes) -> bytes:
    """A revision whose /Prev points at its own xref section: a reader that follows it never stops."""
    grown = append_revision(pdf, {tail(pdf).size: b"(filler)"})
    xref_at = tail(grown).startxref
    return append_revision(pdf, {tail(pdf).size: b"(filler)"}, prev=xref_at)


def prev_two_cycle(pdf: bytes) -> bytes:
    """Two appended revisions whose /Prev entries point at each other."""
    first = append_revision(pdf, {tail(pdf).size: b"(one)"})
    second = append_revision(first, {tail(first).size: b"(two)"})
    first_xref, second_xref = tail(first).startxref, tail(second).startxref
    old, new = b"/Prev %d " % tail(pdf).startxref, b"/Prev %d " % second_xref
    assert len(old) == len(new)  # same width: no offset after it moves
    return second[:first_xref] + second[first_xref:second_xref].replace(old, new, 1) + second[second_xref:]


def xref_claims_two_billion_objects(pdf: bytes) -> bytes:
    last = tail(pdf)
    out = pdf + b"xref\n0 2147483647\n0000000000 65535 f \n"
    return out + b"trailer\n<< /Size 2147483647 /Root %d 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (
        last.root,
        last.startxref,
        len(pdf),
    )


def truncated_in_xref(pdf: bytes) -> bytes:
    return pdf[: tail(pdf).startxref + 30]


def deep_arrays(pdf: bytes) -> bytes:
    """The page gets an entry nested 100,000 arrays deep (recursive-descent parsers overflow)."""
    page = page_number(pdf)
    body = obj(pdf, page).replace(b"/Type /Page", b"/Type /Page /Deep %d 0 R" % tail(pdf).size, 1)
    return append_revision(pdf, {page: body, tail(pdf).size: nested(100_000, b"[", b"]")})


def deep_dictionaries(pdf: bytes) -> bytes:
    page = page_number(pdf)
    body = obj(pdf, page).replace(b"/Type /Page", b"/Type /Page /Deep %d 0 R" % tail(pdf).size, 1)
    return append_revision(pdf, {page: body, tail(pdf).size: nested(100_000, b"<< /A ", b">>")})


def huge_string(pdf: bytes) -> bytes:
    """A 16 MiB literal string (under the 20 MiB upload bound) on the page."""
    page = page_number(pdf)
    body = obj(pdf, page).replace(b"/Type /Page", b"/Type /Page /Note %d 0 R" % tail(pdf).size, 1)
    return append_revision(pdf, {page: body, tail(pdf).size: b"(" + b"A" * (16 * 1024 * 1024) + b")"})


def length_two_to_the_forty(pdf: bytes) -> bytes:
    """A content stream that declares /Length 2**40 (a reader that trusts it allocates a terabyte)."""
    return with_contents(pdf, b"<< /Length 1099511627776 >>\nstream\nBT ET\nendstream")


def kids_loop(pdf: bytes) -> bytes:
    """The page tree's root lists itself among its kids."""
    pages = pages_number(pdf)
    body = re.sub(rb"/Kids\s*\[", b"/Kids [%d 0 R " % pages, obj(pdf, pages), count=1)
    return append_revision(pdf, {pages: body})


def parent_loop(pdf: bytes) -> bytes:
    """The page is its own parent."""
    page = page_number(pdf)
    body = re.sub(rb"/Parent\s+\d+\s+0\s+R", b"/Parent %d 0 R" % page, obj(pdf, page))
    return append_revision(pdf, {page: body})


def content_zip_bomb(pdf: bytes) -> bytes:
    """The page's new content stream inflates to 2 GiB (about 2 MiB deflated)."""
    return with_contents(pdf, stream(deflated_zeros(2), b"/Filter /FlateDecode "))


def nested_filter_zip_bomb(pdf: bytes) -> bytes:
    """Deflated twice: a few KiB that inflate to 2 MiB and then to 2 GiB."""
    return with_contents(pdf, stream(deflated_zeros(2, layers=2), b"/Filter [/FlateDecode /FlateDecode] "))


def xref_stream_zip_bomb(pdf: bytes) -> bytes:
    """The newest revision's cross-reference *stream* inflates to 2 GiB: reading the xref decodes it."""
    last = tail(pdf)
    data = deflated_zeros(2, layers=2)
    xref_at = len(pdf)
    entry = b"<< /Type /XRef /Size %d /W [1 4 2] /Index [0 1] " % (last.size + 1)
    entry += b"/Root %d 0 R /Prev %d " % (last.root, last.startxref)
    entry += b"/Filter [/FlateDecode /FlateDecode] /Length %d >>" % len(data)
    body = b"%d 0 obj\n" % last.size + entry + b"\nstream\n" + data + b"\nendstream\nendobj\n"
    return pdf + body + b"startxref\n%d\n%%%%EOF\n" % xref_at


def object_stream_zip_bomb(pdf: bytes) -> bytes:
    """An object stream (PDF 1.5 /ObjStm) that inflates to 2 GiB, holding the page's new dictionary."""
    last = tail(pdf)
    page = page_number(pdf)
    objstm = stream(deflated_zeros(2, layers=2), b"/Type /ObjStm /N 1 /First 10 /Filter [/FlateDecode /FlateDecode] ")
    out = bytearray(pdf + b"\n")
    objstm_at = len(out)
    out += b"%d 0 obj\n" % last.size + objstm + b"\nendobj\n"
    # A cross-reference stream saying: the page is object 0 of object stream ``last.size``.
    rows = b"\x02" + last.size.to_bytes(4, "big") + (0).to_bytes(2, "big")
    rows += b"\x01" + objstm_at.to_bytes(4, "big") + (0).to_bytes(2, "big")
    xref_at = len(out)
    xref = b"<< /Type /XRef /Size %d /W [1 4 2] /Index [%d 1 %d 1] /Root %d 0 R /Prev %d /Length %d >>" % (
        last.size + 2,
        page,
        last.size,
        last.root,
        last.startxref,
        len(rows),
    )
    out += b"%d 0 obj\n" % (last.size + 1) + xref + b"\nstream\n" + rows + b"\nendstream\nendobj\n"
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


def oversize(pdf: bytes) -> bytes:
    """21 MiB: over the verifier's 20 MiB bound, refused before parsing."""
    return pdf + b"%" + b"x" * (21 * 1024 * 1024) + b"\n"


def many_copied_signatures(pdf: bytes, count: int = 300) -> bytes:
    """``count`` signature fields, each naming the seal's signature: every one costs a full validation."""
    return with_signature_fields(pdf, [seal_signature_number(pdf)] * count)


def many_revisions(pdf: bytes, count: int = 3000) -> bytes:
    """``count`` tiny incremental updates after the seal: the change analysis walks every one."""
    for n in range(count):
        pdf = append_revision(pdf, {tail(pdf).size: b"(revision %d)" % n})
    return pdf


def many_objects(pdf: bytes, count: int = 200_000) -> bytes:
    """One revision after the seal adding ``count`` small unreferenced objects."""
    return append_revision(pdf, {tail(pdf).size + n: b"(o%d)" % n for n in range(count)})


def forger() -> signers.SimpleSigner:
    """A signer anyone can make: a self-signed certificate (its chain never reaches a hub root)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "临江市市场监督管理局")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30)).sign(key, hashes.SHA256())
    )  # fmt: skip
    private = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return signers.SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)),
        signing_key=asn1_keys.PrivateKeyInfo.load(private),
        cert_registry=None,  # type: ignore[arg-type]
    )


def at_the_caps(pdf: bytes) -> bytes:
    """The most work the verifier still accepts, every signature's change analysis walking every revision.

    15 more real signatures (16 in all), then 46 revisions of 200 objects each (63 revisions, ~9,400 objects).
    """
    signer = forger()
    for n in range(15):
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        pdf = signers.sign_pdf(writer, signers.PdfSignatureMetadata(field_name=f"Forged{n}"), signer=signer).getvalue()
    for _ in range(46):
        pdf = many_objects(pdf, 200)
    return pdf


# Name → builder from the genuine sealed file. The verdict of every one must not be TOTAL-PASSED.
HOSTILE: dict[str, Callable[[bytes], bytes]] = {
    "tampered: one flipped byte inside the signed range": flip_signed_byte,
    "incremental update: page content replaced after sealing": shadow_content,
    "incremental update: forged page plus a copied second signature": fake_second_signature,
    "signature: garbage CMS with an overlong DER length": garbage_signature,
    "signature: /ByteRange beyond the end of the file": byte_range_out_of_bounds,
    "xref: startxref beyond the end of the file": startxref_garbage,
    "xref: startxref not a number": startxref_not_a_number,
    "xref: /Prev points at its own section": prev_self_loop,
    "xref: two sections whose /Prev point at each other": prev_two_cycle,
    "xref: a section claiming 2**31 objects": xref_claims_two_billion_objects,
    "xref: file truncated inside the xref": truncated_in_xref,
    "nesting: arrays 100,000 deep": deep_arrays,
    "nesting: dictionaries 100,000 deep": deep_dictionaries,
    "huge: a 16 MiB string": huge_string,
    "huge: stream /Length 2**40": length_two_to_the_forty,
    "page tree: /Kids contains its own node": kids_loop,
    "page tree: a page is its own /Parent": parent_loop,
    "zip bomb: content stream inflating to 2 GiB": content_zip_bomb,
    "zip bomb: nested filters inflating to 2 GiB": nested_filter_zip_bomb,
    "zip bomb: xref stream inflating to 2 GiB": xref_stream_zip_bomb,
    "zip bomb: object stream inflating to 2 GiB": object_stream_zip_bomb,
    "work: 300 copies of the seal's signature": many_copied_signatures,
    "work: 1,000 revisions after the seal": lambda pdf: many_revisions(pdf, 1000),
    "work: 200,000 objects in one revision": many_objects,
    "work: at the caps (16 signatures, 63 revisions, 9,400 objects)": at_the_caps,
    "oversize: 21 MiB": oversize,
}

# Not derived from a sealed file.
NOT_PDFS: dict[str, bytes] = {
    "not a PDF: empty": b"",
    "not a PDF: a PNG": b"\x89PNG\r\n\x1a\n" + bytes(64),
    "not a PDF: header only": b"%PDF-1.7\n%%EOF\n",
    "not a PDF: binary noise": bytes(range(256)) * 64,
}
