"""Licence face rendering: licence data to the unsigned one-page PDF that the PAdES sealer seals."""

from __future__ import annotations

import io
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import pikepdf
import segno

from hub.clock import utcnow
from hub.codes import uscc_check_char
from hub.errors import InvalidInput
from licences.face import chinese_date
from licences.fonts import (
    SERIF_SC,
    SERIF_SC_BOLD,
    BaseFont,
    FontFace,
    Line,
    embed_font,
    is_wide,
    load_font,
    plain_line,
    wrap,
)
from licences.identifiers import make_identifier
from licences.xmp import build_xmp, pdf_date

MM = 72 / 25.4  # template lengths are millimetres; PDF user space is 1/72 inch (ISO 32000-1 §8.3.2.3)
PRODUCER = "licence-hub"
RGB = tuple[float, float, float]
Align = Literal["left", "centre", "right"]

REQUIRED_METADATA = (
    "certificate_identifier",
    "certificate_name",
    "certificate_number",
    "certificate_type_code",
    "certificate_type_name",
    "certificate_issuing_authority_name",
    "certificate_issuing_authority_code",
    "certificate_issue_date",
    "certificate_holder_name",
    "certificate_holder_code",
    "certificate_holder_type",
)
# The status changes after issue; the file would freeze a stale one, so only the QR page shows it.
NOT_EMBEDDED = frozenset({"status"})


class LicenceMetadataMissing(InvalidInput):
    code = "licence_metadata_missing"
    title = "The licence lacks metadata the PDF must carry"


class LicenceMetadataInvalid(InvalidInput):
    code = "licence_metadata_invalid"
    title = "The licence metadata cannot be rendered"


class LicenceFaceOverflow(InvalidInput):
    code = "licence_face_overflow"
    title = "The licence face does not fit on one page"


@dataclass(frozen=True)
class Box:
    """A rectangle in millimetres, lower-left origin."""

    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Border:
    colour: RGB = (0.62, 0.16, 0.12)
    inset: float = 8.0  # mm from the page edge to the outer line
    outer_width: float = 1.8  # pt
    inner_width: float = 0.6  # pt
    gap: float = 1.8  # mm between the two lines


@dataclass(frozen=True)
class FieldLayout:
    """The 照面 table: a label column and a value column inside ``box``; values wrap, labels justify."""

    box: Box
    label_width: float = 34.0  # mm
    gap: float = 5.0  # mm between label and value columns
    size: float = 12.0  # pt, labels and values
    min_size: float = 8.0  # pt: shrink this far before refusing a face that does not fit
    leading: float = 1.5  # line pitch as a multiple of the size
    row_gap: float = 2.0  # mm
    justify_labels: bool = True  # spread 名称 to the width of 法定代表人, as printed licences do


@dataclass(frozen=True)
class QrPlacement:
    x: float  # mm, lower-left corner of the symbol (without its quiet zone)
    y: float
    size: float = 26.0  # mm
    caption_size: float = 6.0  # pt
    caption_width: float = 44.0  # mm, centred under the symbol


@dataclass(frozen=True)
class IssuerPlacement:
    """The issuing authority's name and issue date; the seal widget is centred on them."""

    centre_x: float  # mm
    centre_y: float
    label: str | None = "发证机关"  # printed left of the name, outside the seal
    size: float = 12.0
    seal_diameter: float = 42.0  # mm


@dataclass(frozen=True)
class LicenceTemplate:
    """Page geometry and styling for a licence type; data only, so a licence type names one."""

    name: str
    fields: FieldLayout
    qr: QrPlacement
    issuer: IssuerPlacement
    page_width: float = 210.0  # mm (A4 portrait)
    page_height: float = 297.0
    title: str | None = None  # None: the licence's certificate_type_name
    subtitle: str | None = None
    title_baseline: float = 250.0  # mm
    title_size: float = 32.0
    title_tracking: float = 0.6  # em added between title characters
    title_colour: RGB = (0.0, 0.0, 0.0)
    number_label: str | None = "编号"
    number_at: tuple[float, float] = (182.0, 236.0)  # mm baseline anchor
    number_align: Align = "right"
    number_size: float = 10.5
    text_colour: RGB = (0.0, 0.0, 0.0)
    label_colour: RGB = (0.15, 0.15, 0.15)
    border: Border | None = field(default_factory=Border)
    notes_box: Box = Box(28.0, 16.0, 154.0, 16.0)  # notes stack upwards from its bottom
    notes_size: float = 7.5
    show_identifier: bool = True
    watermark_colour: RGB = (0.91, 0.86, 0.86)
    watermark_size: float = 18.0
    watermark_angle: float = 30.0  # degrees
    body_font: FontFace = SERIF_SC
    title_font: FontFace = SERIF_SC_BOLD


DEFAULT_TEMPLATE = LicenceTemplate(
    name="certificate-a4-portrait",
    fields=FieldLayout(box=Box(28.0, 100.0, 154.0, 126.0)),
    qr=QrPlacement(x=30.0, y=50.0, size=28.0),
    issuer=IssuerPlacement(centre_x=148.0, centre_y=66.0),
)
BUSINESS_LICENCE_TEMPLATE = LicenceTemplate(
    name="business-licence-a4-landscape",
    page_width=297.0,
    page_height=210.0,
    title_baseline=168.0,
    title_size=40.0,
    title_tracking=1.0,
    number_at=(24.0, 188.0),
    number_align="left",
    fields=FieldLayout(box=Box(28.0, 36.0, 172.0, 116.0), label_width=34.0, gap=6.0),
    qr=QrPlacement(x=246.0, y=152.0, size=26.0, caption_width=40.0),
    issuer=IssuerPlacement(centre_x=254.0, centre_y=62.0, label="登记机关"),
    notes_box=Box(28.0, 16.0, 241.0, 12.0),
    border=Border(inset=7.0),
)
TEMPLATES = {t.name: t for t in (DEFAULT_TEMPLATE, BUSINESS_LICENCE_TEMPLATE)}


@dataclass(frozen=True)
class LicenceDocument:
    metadata: dict[str, str]  # DESIGN.md §3 names
    face: list[tuple[str, str]]  # (label, value) in display order
    qr_url: str  # the hub's GET /v/{token} page
    watermark: str | None = None  # purpose-stamped copies (加注件)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RenderedPdf:
    pdf: bytes
    seal_rect: tuple[float, float, float, float]  # [llx lly urx ury] in points (ISO 32000-1 §7.9.5)
    page_index: int = 0


_ALLOWED_CONTROLS = frozenset("\n")


class _Canvas:
    """Collects content-stream operators (ISO 32000-1 §8, §9.4) and the glyphs each font must embed."""

    def __init__(self, fonts: dict[str, BaseFont]) -> None:
        self.fonts = fonts
        self.ops: list[str] = []
        self.used: dict[str, dict[int, str]] = {key: {} for key in fonts}

    def colour(self, rgb: RGB, *, stroke: bool = False) -> None:
        self.ops.append(f"{_n(rgb[0])} {_n(rgb[1])} {_n(rgb[2])} {'RG' if stroke else 'rg'}")

    def text(self, key: str, size: float, at: tuple[float, float], line: Line, *, scale: float = 100.0) -> None:
        pieces = [(offset, text) for offset, text in line.pieces if text]
        if not pieces:
            return
        font, used = self.fonts[key], self.used[key]
        x, y = at
        parts: list[str] = []
        cursor = 0.0
        for offset, text in pieces:
            if parts or offset:
                parts.append(_n((cursor - offset) * 1000 / size / (scale / 100)))  # §9.4.3: TJ moves left by n/1000
            cids = font.cids(text)
            for cid, ch in zip(cids, text, strict=True):
                used.setdefault(cid, ch)
            parts.append("<" + "".join(f"{cid:04X}" for cid in cids) + ">")
            cursor = offset + font.text_width(text, size) * scale / 100
        tz = f"{_n(scale)} Tz " if scale != 100.0 else ""
        reset = " 100 Tz" if scale != 100.0 else ""
        show = f"BT /{key} {_n(size)} Tf {tz}1 0 0 1 {_n(x)} {_n(y)} Tm [{' '.join(parts)}] TJ{reset} ET"
        if len(line.pieces) > 1 and all(is_wide(ch) for _, text in line.pieces for ch in text):
            # Spread-out CJK (a justified 名称) reads as gaps to extractors: §14.9.4 ActualText says what it is.
            actual = "".join(text for _, text in line.pieces).encode("utf-16-be").hex().upper()
            show = f"/Span <</ActualText <FEFF{actual}>>> BDC {show} EMC"
        self.ops.append(show)

    def aligned(self, key: str, size: float, at: tuple[float, float], line: Line, align: Align) -> None:
        shift = {"left": 0.0, "centre": line.width / 2, "right": line.width}[align]
        self.text(key, size, (at[0] - shift, at[1]), line)


def render_licence(
    doc: LicenceDocument, *, template: LicenceTemplate = DEFAULT_TEMPLATE, created_at: datetime | None = None
) -> RenderedPdf:
    """Lay out the licence face and write an unsigned PDF ready for an incremental PAdES update."""
    meta = _checked_metadata(doc)
    body, title_font = load_font(template.body_font), load_font(template.title_font)
    title = template.title or meta["certificate_type_name"]
    issued = _chinese_date(meta["certificate_issue_date"])
    notes = [*doc.notes, *([f"证照标识：{meta['certificate_identifier']}"] if template.show_identifier else [])]
    texts = [label + value for label, value in doc.face] + [doc.qr_url, *notes, issued, doc.watermark or ""]
    texts += [meta["certificate_issuing_authority_name"], meta["certificate_number"]]
    texts += [template.subtitle or "", f"{template.number_label}：", f"{template.issuer.label}："]
    for text in texts:
        _check_controls(text)
    body.check_covers("".join(texts).replace("\n", ""))
    title_font.check_covers(title)

    canvas = _Canvas({"F1": body, "F2": title_font})
    width, height = template.page_width * MM, template.page_height * MM
    _draw_border(canvas, template)
    if doc.watermark:
        _draw_watermark(canvas, template, doc.watermark)
    _draw_heading(canvas, template, title, meta["certificate_number"])
    _draw_face(canvas, template.fields, template, doc.face)
    seal_rect = _draw_issuer(canvas, template, meta["certificate_issuing_authority_name"], issued)
    _draw_qr(canvas, template.qr, template, doc.qr_url)
    _draw_notes(canvas, template, notes)

    moment = created_at or utcnow()
    doc_title = f"{meta['certificate_name']}（{meta['certificate_holder_name']}）"
    xmp = build_xmp(
        title=doc_title,
        creator=meta["certificate_issuing_authority_name"],
        identifier=meta["certificate_identifier"],
        producer=PRODUCER,
        created=moment,
        licence={k: v for k, v in meta.items() if k not in NOT_EMBEDDED},
    )
    pdf = _write_pdf(
        canvas,
        (width, height),
        xmp=xmp,
        title=doc_title,
        author=meta["certificate_issuing_authority_name"],
        moment=moment,
    )
    return RenderedPdf(pdf=pdf, seal_rect=seal_rect)


def _checked_metadata(doc: LicenceDocument) -> dict[str, str]:
    missing = [name for name in REQUIRED_METADATA if not str(doc.metadata.get(name) or "").strip()]
    if missing:
        raise LicenceMetadataMissing(f"licence metadata lacks {', '.join(missing)}", missing=missing)
    for name, value in doc.metadata.items():
        if not isinstance(value, str) or any(unicodedata.category(ch) == "Cc" for ch in value):
            raise LicenceMetadataInvalid(f"licence metadata {name} must be text without control characters")
    if not doc.qr_url.startswith(("https://", "http://")):
        raise LicenceMetadataInvalid("the QR code must link to the hub's http(s) status page")
    return dict(doc.metadata)


def _check_controls(text: str) -> None:
    bad = sorted(
        {f"U+{ord(ch):04X}" for ch in text if unicodedata.category(ch) == "Cc" and ch not in _ALLOWED_CONTROLS}
    )
    if bad:
        raise LicenceMetadataInvalid(f"licence text holds control characters {', '.join(bad)}")


def _chinese_date(value: str) -> str:
    try:
        return chinese_date(value)
    except ValueError:
        raise LicenceMetadataInvalid("certificate_issue_date must be an ISO 8601 date (YYYY-MM-DD)") from None


def _draw_border(canvas: _Canvas, template: LicenceTemplate) -> None:
    border = template.border
    if border is None:
        return
    width, height = template.page_width * MM, template.page_height * MM
    canvas.colour(border.colour, stroke=True)
    for inset, line_width in ((border.inset, border.outer_width), (border.inset + border.gap, border.inner_width)):
        d = inset * MM
        canvas.ops.append(f"{_n(line_width)} w {_n(d)} {_n(d)} {_n(width - 2 * d)} {_n(height - 2 * d)} re S")


def _draw_watermark(canvas: _Canvas, template: LicenceTemplate, text: str) -> None:
    """Diagonal light text tiled under the face (drawn first, so the face stays legible)."""
    width, height = template.page_width * MM, template.page_height * MM
    size = template.watermark_size
    font = canvas.fonts["F1"]
    unit = text + "　　"
    diagonal = math.hypot(width, height)
    repeats = max(1, math.ceil(diagonal / font.text_width(unit, size)) + 1)
    line = Line(((0.0, unit * repeats),), font.text_width(unit * repeats, size))
    angle = math.radians(template.watermark_angle)
    cos, sin = math.cos(angle), math.sin(angle)
    # §14.8.2.2: a watermark artifact, and §14.9.4: one ActualText for all its rows, so extraction
    # yields the purpose statement once instead of rotated fragments threaded through the face text.
    actual = text.encode("utf-16-be").hex().upper()
    canvas.ops.append(
        f"/Artifact <</Type /Pagination /Subtype /Watermark>> BDC /Span <</ActualText <FEFF{actual}>>> BDC q"
    )
    if template.border is not None:  # keep the watermark inside the frame
        d = (template.border.inset + template.border.gap) * MM
        canvas.ops.append(f"{_n(d)} {_n(d)} {_n(width - 2 * d)} {_n(height - 2 * d)} re W n")
    canvas.ops.append(f"{_n(cos)} {_n(sin)} {_n(-sin)} {_n(cos)} {_n(width / 2)} {_n(height / 2)} cm")
    canvas.colour(template.watermark_colour)
    pitch = size * 6
    for row in range(-math.ceil(diagonal / 2 / pitch), math.ceil(diagonal / 2 / pitch) + 1):
        canvas.text("F1", size, (-diagonal / 2 - (row % 2) * size * 3, row * pitch), line)
    canvas.ops.append("Q EMC EMC")


def _draw_heading(canvas: _Canvas, template: LicenceTemplate, title: str, number: str) -> None:
    width = template.page_width * MM
    title_font, size = canvas.fonts["F2"], template.title_size
    tracking = template.title_tracking * size
    pieces, x = [], 0.0
    for ch in title:
        pieces.append((x, ch))
        x += title_font.text_width(ch, size) + tracking
    line = Line(tuple(pieces), x - tracking)
    canvas.colour(template.title_colour)
    canvas.aligned("F2", size, (width / 2, template.title_baseline * MM), line, "centre")
    body = canvas.fonts["F1"]
    canvas.colour(template.text_colour)
    if template.subtitle:
        sub_size = size * 0.45
        sub = plain_line(body, template.subtitle, sub_size)
        canvas.aligned("F1", sub_size, (width / 2, template.title_baseline * MM - size * 1.1), sub, "centre")
    if template.number_label:
        line = plain_line(body, f"{template.number_label}：{number}", template.number_size)
        x, y = template.number_at
        canvas.aligned("F1", template.number_size, (x * MM, y * MM), line, template.number_align)


def _draw_face(
    canvas: _Canvas, layout: FieldLayout, template: LicenceTemplate, face: Sequence[tuple[str, str]]
) -> None:
    """The 照面 rows, shrunk in half-point steps down to ``min_size`` if the box cannot hold them."""
    font = canvas.fonts["F1"]
    box = layout.box
    label_w, value_w = layout.label_width * MM, (box.width - layout.label_width - layout.gap) * MM
    size = layout.size
    while True:
        lead = size * layout.leading
        rows = [
            (_label_lines(font, label, size, label_w, justify=layout.justify_labels), wrap(font, value, size, value_w))
            for label, value in face
        ]
        needed = sum(max(len(lines), len(values), 1) * lead for (lines, _), values in rows) + layout.row_gap * MM * (
            len(rows) - 1
        )
        if needed <= box.height * MM:
            break
        if size - 0.5 < layout.min_size:
            raise LicenceFaceOverflow(
                f"the licence face needs {needed / MM:.0f} mm but template {template.name} has {box.height:.0f} mm"
                f" even at {size:g} pt; shorten the longest values",
            )
        size -= 0.5
    top = (box.y + box.height) * MM
    first_baseline = (lead - size) / 2 + size * 0.88  # ideographs fill ~0.88 em above the baseline
    x_label, x_value = box.x * MM, (box.x + layout.label_width + layout.gap) * MM
    for (label_lines, scale), values in rows:
        canvas.colour(template.label_colour)
        for i, line in enumerate(label_lines):
            canvas.text("F1", size, (x_label, top - first_baseline - i * lead), line, scale=scale)
        canvas.colour(template.text_colour)
        for i, line in enumerate(values):
            canvas.text("F1", size, (x_value, top - first_baseline - i * lead), line)
        top -= max(len(label_lines), len(values), 1) * lead + layout.row_gap * MM


def _label_lines(font: BaseFont, label: str, size: float, width: float, *, justify: bool) -> tuple[list[Line], float]:
    """A label justified across the column; condensed (Tz, ISO 32000-1 §9.3.4) to 75 % or wrapped if longer."""
    natural = font.text_width(label, size)
    if natural > width:
        if natural * 0.75 <= width:
            return [Line(((0.0, label),), natural)], 100 * width / natural
        return wrap(font, label, size, width), 100.0
    if justify and len(label) > 1 and all(is_wide(ch) for ch in label):
        step = (width - natural) / (len(label) - 1)
        pieces, x = [], 0.0
        for ch in label:
            pieces.append((x, ch))
            x += font.text_width(ch, size) + step
        return [Line(tuple(pieces), width)], 100.0
    return [Line(((0.0, label),), natural)], 100.0


def _draw_issuer(
    canvas: _Canvas, template: LicenceTemplate, authority: str, issued: str
) -> tuple[float, float, float, float]:
    issuer = template.issuer
    font, size = canvas.fonts["F1"], issuer.size
    lines = [*wrap(font, authority, size, issuer.seal_diameter * 1.15 * MM), plain_line(font, issued, size)]
    lead = size * 1.6
    cx, cy = issuer.centre_x * MM, issuer.centre_y * MM
    first = cy + (len(lines) - 1) * lead / 2 - size * 0.38  # centre the block's x-height band on the seal
    if issuer.label:
        label = plain_line(font, f"{issuer.label}：", size)
        canvas.colour(template.label_colour)
        canvas.aligned("F1", size, (cx - lines[0].width / 2 - size * 0.5, first), label, "right")
    canvas.colour(template.text_colour)
    for i, line in enumerate(lines):
        canvas.aligned("F1", size, (cx, first - i * lead), line, "centre")
    r = issuer.seal_diameter * MM / 2
    return (round(cx - r, 2), round(cy - r, 2), round(cx + r, 2), round(cy + r, 2))


def _draw_qr(canvas: _Canvas, qr: QrPlacement, template: LicenceTemplate, url: str) -> None:
    """The status-page URL as a vector QR symbol (ISO/IEC 18004, level M), with the URL under it."""
    symbol = segno.make(url, error="m", micro=False, boost_error=False)
    matrix = symbol.matrix
    count = len(matrix)
    module = qr.size * MM / count
    x0, y0 = qr.x * MM, qr.y * MM
    quiet = 4 * module  # ISO/IEC 18004 §6.3.8: a four-module quiet zone
    canvas.ops.append("/QRCode BMC q 1 1 1 rg")  # §14.6 marked content, so a checker can find the symbol
    canvas.ops.append(
        f"{_n(x0 - quiet)} {_n(y0 - quiet)} {_n(qr.size * MM + 2 * quiet)} {_n(qr.size * MM + 2 * quiet)} re f"
    )
    canvas.ops.append(f"0 0 0 rg {_n(module)} 0 0 {_n(module)} {_n(x0)} {_n(y0)} cm")
    rects = []
    for r, row in enumerate(matrix):
        y = count - 1 - r
        c = 0
        while c < count:
            if row[c]:
                start = c
                while c < count and row[c]:
                    c += 1
                rects.append(f"{start} {y} {c - start} 1 re")
            c += 1
    canvas.ops.append(" ".join(rects) + " f Q EMC")
    font, size = canvas.fonts["F1"], qr.caption_size
    canvas.colour(template.label_colour)
    centre = x0 + qr.size * MM / 2
    for i, line in enumerate(wrap(font, url, size, qr.caption_width * MM)):
        canvas.aligned("F1", size, (centre, y0 - quiet + size * 0.2 - (i + 1) * size * 1.25), line, "centre")


def _draw_notes(canvas: _Canvas, template: LicenceTemplate, notes: Sequence[str]) -> None:
    box, size = template.notes_box, template.notes_size
    font, lead = canvas.fonts["F1"], size * 1.45
    lines = [line for note in notes for line in wrap(font, note, size, box.width * MM)]
    if len(lines) * lead > box.height * MM + size:
        raise LicenceFaceOverflow(f"{len(lines)} note lines do not fit template {template.name}; shorten the notes")
    canvas.colour(template.label_colour)
    for i, line in enumerate(lines):
        canvas.text("F1", size, (box.x * MM, box.y * MM + (len(lines) - 1 - i) * lead), line)


def _write_pdf(
    canvas: _Canvas, size: tuple[float, float], *, xmp: bytes, title: str, author: str, moment: datetime
) -> bytes:
    """One page under a one-level page tree, saved with a classic xref table for incremental updates."""
    pdf = pikepdf.new()
    page = pdf.add_blank_page(page_size=size)
    fonts = {key: embed_font(pdf, canvas.fonts[key], used) for key, used in canvas.used.items() if used}
    page.obj.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary({f"/{k}": v for k, v in fonts.items()}))
    page.obj.Contents = pdf.make_stream("\n".join(canvas.ops).encode("ascii"))
    # ISO 32000-1 §14.3.2: XMP in the catalog, left uncompressed so tools without a PDF parser find it.
    pdf.Root.Metadata = pdf.make_stream(xmp, Type=pikepdf.Name.Metadata, Subtype=pikepdf.Name.XML)
    pdf.Root.Lang = pikepdf.String("zh-CN")  # §14.9.2: the natural language, for text-to-speech and search
    pdf.Root.ViewerPreferences = pikepdf.Dictionary(DisplayDocTitle=True)  # §12.2: show dc:title, not a file name
    # §14.3.3: the Info dictionary says the same as the XMP; pikepdf writes non-Latin text as UTF-16BE with BOM.
    pdf.trailer.Info = pdf.make_indirect(
        pikepdf.Dictionary(
            Title=pikepdf.String(title),
            Author=pikepdf.String(author),
            Creator=pikepdf.String(PRODUCER),
            Producer=pikepdf.String(PRODUCER),
            CreationDate=pikepdf.String(pdf_date(moment)),
            ModDate=pikepdf.String(pdf_date(moment)),
        )
    )
    out = io.BytesIO()
    # No object streams and no linearisation: qpdf then writes a classic xref table (§7.5.4), which
    # the sealer's incremental update (§7.5.6) extends; the /ID is a digest of the content.
    pdf.save(
        out,
        min_version="1.7",
        object_stream_mode=pikepdf.ObjectStreamMode.disable,
        compress_streams=True,
        linearize=False,
        deterministic_id=True,
        fix_metadata_version=False,
    )
    return out.getvalue()


def _n(value: float) -> str:
    """A PDF real (ISO 32000-1 §7.3.3): fixed point, no exponent, trimmed."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in {"-0", ""} else text


def sample_business_licence(serial: int = 0) -> LicenceDocument:
    """A realistic 营业执照 for demos and benchmarks; ``serial`` makes each one a distinct licence.

    Serial 0 carries DESIGN.md §3's test-vector identifier; the holder's USCC has a valid GB 32100 check.
    """
    identifier = str(make_identifier("11100000000013338W032", ISSUER_SAMPLE_USCC, str(2430599 + serial)))
    holder_code = f"91330100MA2{serial % 1_000_000:06d}"
    holder_code += uscc_check_char(holder_code)
    holder = "临江市示例科技有限公司" if serial == 0 else f"临江市示例第{serial}科技有限公司"
    metadata = {
        "certificate_identifier": identifier,
        "certificate_name": "营业执照",
        "certificate_number": holder_code,
        "certificate_type_code": "11100000000013338W032",
        "certificate_type_name": "营业执照",
        "certificate_version": "001",
        "certificate_issuing_authority_name": "临江市市场监督管理局",
        "certificate_issuing_authority_code": ISSUER_SAMPLE_USCC,
        "certificate_issue_date": "2024-03-18",
        "certificate_validity_start": "2024-03-18",
        "certificate_validity_end": "9999-12-31",
        "certificate_holder_name": holder,
        "certificate_holder_code": holder_code,
        "certificate_holder_type": "001",
    }
    face = [
        ("统一社会信用代码", holder_code),
        ("名称", holder),
        ("类型", "有限责任公司（自然人投资或控股）"),
        ("法定代表人", "张三"),
        ("注册资本", "壹佰万元整"),
        ("成立日期", "2024年03月18日"),
        ("营业期限", "2024年03月18日至长期"),
        ("住所", "浙江省临江市滨江区示例路88号3幢1201室"),
        ("经营范围", _SAMPLE_SCOPE),
    ]
    return LicenceDocument(
        metadata=metadata,
        face=face,
        qr_url=f"https://hub.example.gov.cn/v/sample-{serial:06d}",
        notes=["国家企业信用信息公示系统网址：https://www.gsxt.gov.cn"],
    )


ISSUER_SAMPLE_USCC = "11220000013544541J"
_SAMPLE_SCOPE = (
    "一般项目：技术服务、技术开发、技术咨询、技术交流、技术转让、技术推广；软件开发；信息系统集成服务；"
    "数据处理和存储支持服务；计算机软硬件及辅助设备零售（除依法须经批准的项目外，凭营业执照依法自主开展经营活动）。"
)
