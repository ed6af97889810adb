"""CJK text for licence PDFs: cached Noto CJK faces, metrics and line breaking, CID-keyed CFF subsets, embedding."""

from __future__ import annotations

import hashlib
import struct
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import pikepdf
from fontTools.cffLib.transforms import desubroutinizeCharString  # type: ignore[import-untyped]
from fontTools.misc.psCharStrings import T2CharString, encodeIntCFF  # type: ignore[import-untyped]
from fontTools.ttLib import TTFont  # type: ignore[import-untyped]

from hub.errors import InvalidInput

NOTO_DIR = "/usr/share/fonts/opentype/noto"
SC_FACE_INDEX = 2  # Noto CJK collections order their faces JP, KR, SC, TC, HK (checked with TTCollection)


@dataclass(frozen=True)
class FontFace:
    """One face of an OpenType/CFF font collection, e.g. Noto Serif CJK SC inside its .ttc."""

    path: str
    index: int = SC_FACE_INDEX


SERIF_SC = FontFace(f"{NOTO_DIR}/NotoSerifCJK-Regular.ttc")
SERIF_SC_BOLD = FontFace(f"{NOTO_DIR}/NotoSerifCJK-Bold.ttc")
SANS_SC = FontFace(f"{NOTO_DIR}/NotoSansCJK-Regular.ttc")
SANS_SC_BOLD = FontFace(f"{NOTO_DIR}/NotoSansCJK-Bold.ttc")


class LicenceGlyphsMissing(InvalidInput):
    code = "licence_glyphs_missing"
    title = "The licence text has characters the licence font cannot show"


# Adobe TN #5176 (CFF) Table 9 / Table 10: Top DICT and Font DICT operators we write.
_OP_CHARSET = b"\x0f"
_OP_CHARSTRINGS = b"\x11"
_OP_PRIVATE = b"\x12"
_OP_FONTBBOX = b"\x05"
_OP_ROS = b"\x0c\x1e"
_OP_CIDCOUNT = b"\x0c\x22"
_OP_FDARRAY = b"\x0c\x24"
_OP_FDSELECT = b"\x0c\x25"
_OP_SUBRS = 19
_FIRST_CUSTOM_SID = 391  # TN #5176 Appendix A: 391 standard strings precede the String INDEX


class BaseFont:
    """A parsed CID-keyed CFF face, loaded once per process; subsets are cut from it per document.

    Only the ``cmap`` (Unicode to CID), advance widths and the CFF table are used: a PDF embeds the
    bare CFF program (ISO 32000-1 §9.9, FontFile3 /CIDFontType0C), not the OpenType wrapper.
    """

    def __init__(self, face: FontFace) -> None:
        # Everything is read here, so the file can close: the CFF table already lives in memory.
        with TTFont(face.path, fontNumber=face.index, lazy=True) as font:
            self.face = face
            self.postscript_name: str = font["name"].getDebugName(6)
            cff = font["CFF "].cff
            top = cff.topDictIndex[0]
            if getattr(top, "ROS", None) is None:
                msg = f"{face.path}#{face.index} is not a CID-keyed CFF font"
                raise ValueError(msg)
            glyph_cids = {name: _cid_of(name) for name in font.getGlyphOrder()}
            self.cmap: dict[int, int] = {code: glyph_cids[name] for code, name in font.getBestCmap().items()}
            scale = 1000 / font["head"].unitsPerEm  # PDF glyph space is 1/1000 em (ISO 32000-1 §9.2.4)
            self.advances: dict[int, int] = {
                glyph_cids[name]: round(advance * scale) for name, (advance, _lsb) in font["hmtx"].metrics.items()
            }
            os2 = font["OS/2"]
            self.ascent = round(os2.sTypoAscender * scale)
            self.descent = round(os2.sTypoDescender * scale)
            self.cap_height = round(os2.sCapHeight * scale)
            self.bbox: tuple[int, ...] = tuple(round(v * scale) for v in top.FontBBox)
            self.italic_angle = float(font["post"].italicAngle)
            self.serif = "Serif" in self.postscript_name
            self.cid_count: int = top.CIDCount
            self._charstrings: Any = top.CharStrings
            self._cid_names = {cid: name for name, cid in glyph_cids.items()}
            self._fd_select: Any = top.FDSelect
            self._glyph_index = {name: gid for gid, name in enumerate(font.getGlyphOrder())}
            raw = font.reader["CFF "]
            self._privates = [_private_without_subrs(raw, *fd.rawDict["Private"]) for fd in top.FDArray]
            ideographs = [fd.Private for fd in top.FDArray if fd.rawDict.get("FontName", "").endswith("-Ideographs")]
            self.stem_v = int(getattr(ideographs[0] if ideographs else top.FDArray[0].Private, "StdVW", 80))
        self._flat: dict[int, tuple[int, bytes]] = {}
        # fontTools decompiles charstrings lazily and in place: one renderer thread at a time per face.
        self._lock = threading.Lock()

    def cids(self, text: str) -> list[int]:
        """CIDs for ``text``; raises LicenceGlyphsMissing rather than let a viewer draw tofu."""
        try:
            return [self.cmap[ord(ch)] for ch in text]
        except KeyError:
            self.check_covers(text)
            raise

    def check_covers(self, text: str) -> None:
        missing = sorted({ch for ch in text if ord(ch) not in self.cmap})
        if missing:
            shown = ", ".join(f"U+{ord(ch):04X} {ch!r}" for ch in missing)
            raise LicenceGlyphsMissing(
                f"{self.postscript_name} has no glyph for {shown}; use characters from GB 18030 / the font's range",
                characters=[f"U+{ord(ch):04X}" for ch in missing],
            )

    def advance(self, cid: int) -> int:
        return self.advances.get(cid, 1000)

    def text_width(self, text: str, size: float) -> float:
        cmap, advances = self.cmap, self.advances
        return sum(advances.get(cmap.get(ord(ch), 0), 1000) for ch in text) * size / 1000

    def _flat_charstring(self, cid: int) -> tuple[int, bytes]:
        """The glyph's FD index and its charstring with every subroutine call inlined."""
        found = self._flat.get(cid)
        if found is not None:
            return found
        with self._lock:
            charstring = self._charstrings[self._cid_names[cid]]
            desubroutinizeCharString(charstring)
            flat = T2CharString(program=list(charstring.program))
            flat.compile()
            found = (self._fd_select[self._glyph_index[self._cid_names[cid]]], flat.bytecode)
            self._flat[cid] = found
        return found

    def subset(self, cids: Iterable[int]) -> FontSubset:
        return _subset(self, frozenset(cids) | {0})


@dataclass(frozen=True)
class FontSubset:
    """A CID-keyed CFF subset keeping the base font's CIDs, so content streams address glyphs by CID."""

    base: BaseFont
    cids: tuple[int, ...]
    name: str  # ISO 32000-1 §9.6.4: six uppercase letters, "+", PostScript name
    cff: bytes


@cache
def load_font(face: FontFace) -> BaseFont:
    """The parsed face, cached for the process (the collections are 20-30 MB; parsing takes ~0.4 s)."""
    return BaseFont(face)


@lru_cache(maxsize=256)
def _subset(base: BaseFont, cids: frozenset[int]) -> FontSubset:
    ordered = tuple(sorted(cids))
    digest = hashlib.sha256(repr((base.postscript_name, ordered)).encode()).digest()
    tag = "".join(chr(ord("A") + b % 26) for b in digest[:6])
    name = f"{tag}+{base.postscript_name}"
    return FontSubset(base=base, cids=ordered, name=name, cff=_build_cff(base, ordered, name))


def _build_cff(base: BaseFont, cids: tuple[int, ...], name: str) -> bytes:
    """Write a CID-keyed CFF (Adobe TN #5176) holding only ``cids``, with no subroutines.

    The charset keeps the original CIDs, so a viewer maps the content stream's CID to our GID
    through it (TN #5176 §13; ISO 32000-1 §9.7.4.2): no renumbering in the content stream.
    Only the font dicts the glyphs use are kept, each with its original Private DICT minus Subrs.
    """
    flat = [base._flat_charstring(cid) for cid in cids]  # noqa: SLF001 - the font's own helper
    used_fds = sorted({fd for fd, _ in flat})
    fd_map = {fd: i for i, fd in enumerate(used_fds)}

    strings = _index([b"Adobe", b"Identity"])
    charset = b"\x00" + b"".join(struct.pack(">H", cid) for cid in cids[1:])  # format 0; GID 0 is .notdef
    fd_select = b"\x00" + bytes(fd_map[fd] for fd, _ in flat)  # format 0
    charstrings = _index([code for _, code in flat])
    privates = [base._privates[fd] for fd in used_fds]  # noqa: SLF001

    def top_dict(charset_at: int, fd_select_at: int, charstrings_at: int, fd_array_at: int) -> bytes:
        return b"".join(
            [
                # ROS must come first in a CIDFont's Top DICT (TN #5176 §18).
                _int(_FIRST_CUSTOM_SID) + _int(_FIRST_CUSTOM_SID + 1) + _int(0) + _OP_ROS,
                _int(base.cid_count) + _OP_CIDCOUNT,
                b"".join(_int(v) for v in base.bbox) + _OP_FONTBBOX,
                _offset(charset_at) + _OP_CHARSET,
                _offset(fd_select_at) + _OP_FDSELECT,
                _offset(charstrings_at) + _OP_CHARSTRINGS,
                _offset(fd_array_at) + _OP_FDARRAY,
            ]
        )

    def font_dicts(private_at: int) -> list[bytes]:
        out = []
        for private in privates:
            out.append(_offset(len(private)) + _offset(private_at) + _OP_PRIVATE)
            private_at += len(private)
        return out

    # Offsets are written as 5-byte integers so every size is known before the layout is.
    header = b"\x01\x00\x04\x04"
    head = header + _index([name.encode("ascii")])
    top_size = len(_index([top_dict(0, 0, 0, 0)]))
    charset_at = len(head) + top_size + len(strings) + 2  # 2: the empty Global Subr INDEX
    fd_select_at = charset_at + len(charset)
    charstrings_at = fd_select_at + len(fd_select)
    fd_array_at = charstrings_at + len(charstrings)
    private_at = fd_array_at + len(_index(font_dicts(0)))
    top = _index([top_dict(charset_at, fd_select_at, charstrings_at, fd_array_at)])
    fd_array = _index(font_dicts(private_at))
    return b"".join(
        [head, top, strings, b"\x00\x00", charset, fd_select, charstrings, fd_array, *privates],
    )


def _cid_of(glyph_name: str) -> int:
    return 0 if glyph_name == ".notdef" else int(glyph_name.removeprefix("cid"))


def _int(value: int) -> bytes:
    return bytes(encodeIntCFF(value))


def _offset(value: int) -> bytes:
    return b"\x1d" + struct.pack(">l", value)  # TN #5176 Table 3: operand 29, a 4-byte integer


def _index(items: list[bytes]) -> bytes:
    """A CFF INDEX (TN #5176 §5): count, offset size, 1-based offsets, data."""
    if not items:
        return b"\x00\x00"
    end = 1 + sum(len(item) for item in items)
    off_size = 1 if end < 1 << 8 else 2 if end < 1 << 16 else 3 if end < 1 << 24 else 4
    offsets = [1]
    for item in items:
        offsets.append(offsets[-1] + len(item))
    packed = b"".join(offset.to_bytes(off_size, "big") for offset in offsets)
    return struct.pack(">HB", len(items), off_size) + packed + b"".join(items)


def _private_without_subrs(cff: bytes, size: int, offset: int) -> bytes:
    """The raw Private DICT with its Subrs operator dropped (the subset inlines every subroutine)."""
    data = cff[offset : offset + size]
    out = bytearray()
    i = start = 0
    while i < len(data):
        b0 = data[i]
        if b0 == 28:
            i += 3
        elif b0 == 29:
            i += 5
        elif b0 == 30:  # real: nibbles up to and including an 0xf nibble
            i += 1
            while data[i] & 0x0F != 0x0F and data[i] >> 4 != 0x0F:
                i += 1
            i += 1
        elif 32 <= b0 <= 246:
            i += 1
        elif 247 <= b0 <= 254:
            i += 2
        else:  # an operator ends the operands collected since ``start``
            i += 2 if b0 == 12 else 1
            if b0 != _OP_SUBRS:
                out += data[start:i]
            start = i
    return bytes(out)


# Line-breaking rules (kinsoku, GB/T 15834 usage): these never start a line, those never end one.
_NO_LINE_START = frozenset("、，。；：？！）》」』】〕〉”’…—·%,.;:?!)]}")
_NO_LINE_END = frozenset("（《「『【〔〈“‘([{")


@dataclass(frozen=True)
class Line:
    """One laid-out line: pieces of text at x offsets, so justified text needs no per-glyph positioning."""

    pieces: tuple[tuple[float, str], ...]  # (x offset in pt, text)
    width: float


def plain_line(font: BaseFont, text: str, size: float) -> Line:
    return Line(((0.0, text),), font.text_width(text, size))


def is_wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in {"W", "F"}


def _units(paragraph: str, font: BaseFont, size: float, width: float) -> list[str]:
    """Break opportunities: each ideograph and space stands alone; Latin words, numbers and URLs stay whole."""
    units: list[str] = []
    word = ""
    for ch in paragraph:
        if ch == " " or is_wide(ch):
            if word:
                units.append(word)
                word = ""
            units.append(ch)
        else:
            word += ch
    if word:
        units.append(word)
    # A word wider than the column may break anywhere.
    return [piece for unit in units for piece in (list(unit) if font.text_width(unit, size) > width else [unit])]


def wrap(font: BaseFont, text: str, size: float, width: float) -> list[Line]:
    """Greedy line breaking with kinsoku; lines broken for width are justified to the column's edge."""
    lines: list[Line] = []
    for paragraph in text.split("\n"):
        first = len(lines)
        current: list[str] = []
        used = 0.0  # advances add up exactly: the layout applies no kerning
        for unit in _units(paragraph, font, size, width):
            unit_width = font.text_width(unit, size)
            if current and used + unit_width > width + 0.01:
                done, current = _break(font, current, unit, size, width)
                lines.append(_justified(font, done, size, width))
                used = font.text_width("".join(current), size)
                if unit == " ":
                    continue
            current.append(unit)
            used += unit_width
        while current and current[-1] == " ":
            current.pop()
        if current or len(lines) == first:  # an empty paragraph still takes its line
            lines.append(_laid_out(font, current, size, 0.0))
    return lines


def _break(font: BaseFont, current: list[str], unit: str, size: float, width: float) -> tuple[list[str], list[str]]:
    """Split ``current`` before ``unit``: the finished line, and what goes down to start the next one."""
    current = list(current)
    while len(current) > 1 and current[-1] == " ":
        current.pop()  # a space at a break is dropped, never carried
    carry: list[str] = []
    # Take characters down with a closing mark until the new line starts acceptably.
    while unit[0] in _NO_LINE_START and len(current) > 1 and (not carry or carry[0][0] in _NO_LINE_START):
        carry.insert(0, current.pop())
    while len(current) > 1 and current[-1][-1] in _NO_LINE_END:
        carry.insert(0, current.pop())
    if carry and font.text_width("".join(carry) + unit, size) > width + 0.01:
        return current + carry, []  # what would go down cannot share a line with the unit: break here after all
    return current, carry


def _justified(font: BaseFont, units: list[str], size: float, width: float) -> Line:
    while units and units[-1] == " ":
        units = units[:-1]
    natural = font.text_width("".join(units), size)
    gaps = len(units) - 1
    extra = (width - natural) / gaps if gaps > 0 else 0.0
    return _laid_out(font, units, size, extra if 0 < extra <= size else 0.0)


def _laid_out(font: BaseFont, units: list[str], size: float, extra: float) -> Line:
    if not extra:
        text = "".join(units)
        return Line(((0.0, text),) if text else (), font.text_width(text, size))
    pieces, x = [], 0.0
    for unit in units:
        pieces.append((x, unit))
        x += font.text_width(unit, size) + extra
    return Line(tuple(pieces), x - extra)


def embed_font(pdf: pikepdf.Pdf, base: BaseFont, used: dict[int, str]) -> pikepdf.Dictionary:
    """A Type 0 font (ISO 32000-1 §9.7.6) over a CIDFontType0 subset of ``base``, for Identity-H codes.

    ``used`` maps each CID the content stream shows to the character it stands for; that becomes the
    ToUnicode CMap (§9.10.3), so text extraction and search give back the licence text.
    """
    subset = base.subset(used)
    font_file = pdf.make_stream(subset.cff, Subtype=pikepdf.Name.CIDFontType0C)  # §9.9 Table 126
    # §9.8.2 Table 123: Symbolic (bit 3), as CJK glyphs lie outside the standard Latin set; Serif (bit 2).
    flags = 4 | (2 if base.serif else 0)
    descriptor = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.FontDescriptor,
            FontName=pikepdf.Name("/" + subset.name),
            Flags=flags,
            FontBBox=pikepdf.Array(base.bbox),
            ItalicAngle=base.italic_angle,
            Ascent=base.ascent,
            Descent=base.descent,
            CapHeight=base.cap_height,
            StemV=base.stem_v,
            FontFile3=font_file,
        )
    )
    cid_font = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Font,
            Subtype=pikepdf.Name.CIDFontType0,
            BaseFont=pikepdf.Name("/" + subset.name),
            # Must match the CFF's ROS (Adobe-Identity-0) for Identity-H codes to mean CIDs (§9.7.3).
            CIDSystemInfo=pikepdf.Dictionary(
                Registry=pikepdf.String("Adobe"), Ordering=pikepdf.String("Identity"), Supplement=0
            ),
            FontDescriptor=descriptor,
            DW=1000,
            W=pikepdf.Array(_widths(base, subset.cids)),
        )
    )
    return pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Font,
            Subtype=pikepdf.Name.Type0,
            BaseFont=pikepdf.Name(f"/{subset.name}-Identity-H"),  # §9.7.6.1: CIDFont name, hyphen, CMap name
            Encoding=pikepdf.Name("/Identity-H"),
            DescendantFonts=pikepdf.Array([cid_font]),
            ToUnicode=pdf.make_stream(_to_unicode(used)),
        )
    )


def _widths(base: BaseFont, cids: Iterable[int]) -> list[Any]:
    """The /W array (ISO 32000-1 §9.7.4.3) for glyphs whose advance differs from /DW 1000."""
    out: list[Any] = []
    run: list[int] = []
    start = previous = -2
    for cid in cids:
        advance = base.advance(cid)
        if advance == 1000:
            continue
        if cid != previous + 1 and run:
            out += [start, pikepdf.Array(run)]
            run = []
        if not run:
            start = cid
        run.append(advance)
        previous = cid
    if run:
        out += [start, pikepdf.Array(run)]
    return out


def _to_unicode(used: dict[int, str]) -> bytes:
    """A ToUnicode CMap (ISO 32000-1 §9.10.3; Adobe TN #5411) from 2-byte CIDs to UTF-16BE."""
    entries = [f"<{cid:04X}> <{ch.encode('utf-16-be').hex().upper()}>" for cid, ch in sorted(used.items())]
    blocks = []
    for i in range(0, len(entries), 100):  # at most 100 mappings per bfchar block
        chunk = entries[i : i + 100]
        blocks.append(f"{len(chunk)} beginbfchar\n" + "\n".join(chunk) + "\nendbfchar")
    return (
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
        "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
        + "\n".join(blocks)
        + "\nendcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n"
    ).encode("ascii")
