"""Seal images: draw the standard round red official seal, sanitise uploads, hand raw samples to the PDF sealer."""

from __future__ import annotations

import io
import math
import shutil
import subprocess
import unicodedata
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFont, ImageOps

from seals.errors import SealFontMissing, SealImageInvalid, SealTextInvalid

# The conventional seal red (CMYK 0/100/100/0 printed as sRGB 230,0,18).
SEAL_RED = (230, 0, 18)

MIN_SIDE, MAX_SIDE = 128, 2048
MAX_UPLOAD_BYTES = 2 * 1024 * 1024
MIN_ASPECT, MAX_ASPECT = 0.5, 2.0
MAX_NAME_CHARS = 24
MAX_LABEL_CHARS = 12
MAX_CODE_CHARS = 16  # GA 241-2000 印章编码 is 13 digits; a little room, but it must stay clear of the name

ALLOWED = "PNG or JPEG, at most 2 MiB, 128–2048 px per side, aspect ratio between 1:2 and 2:1, a single frame"

# 国发〔1999〕25号: seal text is Simplified Chinese in Song (宋体); Noto Serif CJK is a Song/Ming design,
# the sans face is only a fallback. TTC collections hold JP/KR/SC/TC/HK faces; we pick SC by name.
_FONT_FILES = (
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Bold.ttc",
    "/usr/share/fonts/google-noto-serif-cjk-fonts/NotoSerifCJK-Bold.ttc",
    "/usr/share/fonts/noto-cjk/NotoSerifCJK-Bold.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/google-noto-sans-cjk-fonts/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Bold.ttc",
)
_FONT_PROBE = "国印章"
_MISSING_GLYPH = "\U0010fffd"  # a private-use code point no font maps: renders as .notdef

# Layout in fractions of the seal radius R. 国发〔1999〕25号: a five-pointed star in the centre, the name
# round it 自左而右环行 (left to right, clockwise); the seal's use horizontal under the star and the
# 13-digit 印章编码 of the 印章治安管理 system (GA 241-2000) small along the lower arc, as engraved seals
# carry them. Proportions follow the common 42 mm round seal: a border of about 1.2 mm, a star about a
# third of the diameter.
_RING_OUTER = 0.975  # a margin so the resampling filter does not clip the ring
_RING_WIDTH = 0.065
_RING_INNER = _RING_OUTER - _RING_WIDTH
_STAR_RADIUS = 0.33
_STAR_INNER = math.cos(math.radians(72)) / math.cos(math.radians(36))  # regular pentagram
_NAME_GAP = 0.035  # between the ring and the name's em box
_NAME_EM_SHORT, _NAME_EM_LONG = 0.28, 0.21  # em size for 1–12 and for 24 characters
_LABEL_EM, _LABEL_CENTRE_Y, _LABEL_MAX_WIDTH = 0.16, 0.5, 0.88
_CODE_EM, _CODE_GAP, _CODE_PITCH = 0.115, 0.03, 1.15
_CJK_BASELINE = 0.38  # ideographic em box spans −0.12…0.88 em around the baseline: its centre is 0.38 em up


@dataclass(frozen=True)
class SealBitmap:
    """Raw 8-bit samples, row-major, of a seal image: what an image XObject with an /SMask needs."""

    width: int
    height: int
    rgb: bytes  # 3 bytes a pixel, for /ColorSpace /DeviceRGB
    alpha: bytes  # 1 byte a pixel, for the /SMask (ISO 32000-1 §11.6.5.3)


# ----------------------------------------------------------------------------------------------- fonts


def _family(path: str, index: int) -> str | None:
    try:
        font = ImageFont.truetype(path, 16, index=index)
    except OSError:
        return None
    return font.getname()[0]


def _sc_face(path: str) -> int | None:
    for index in range(16):
        family = _family(path, index)
        if family is None:
            return None
        if family.endswith(" SC") and "Mono" not in family:
            return index
    return None


def _fc_match() -> tuple[str, int] | None:
    fc_match = shutil.which("fc-match")
    if fc_match is None:
        return None
    try:
        found = subprocess.run(  # noqa: S603 — fixed arguments, no shell
            [fc_match, "-f", "%{file}\t%{index}", "Noto Serif CJK SC:bold"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    path, _, index = found.partition("\t")
    return (path, int(index or 0)) if path and Path(path).is_file() else None


@lru_cache(maxsize=1)
def _font_face() -> tuple[str, int]:
    for path in _FONT_FILES:
        if Path(path).is_file() and (index := _sc_face(path)) is not None:
            return path, index
    matched = _fc_match()
    # fontconfig answers with its best substitute even when no CJK font exists: check it really has the glyphs.
    if matched is not None and all(_has_glyph(_font_at(*matched, 32), ch) for ch in _FONT_PROBE):
        return matched
    raise SealFontMissing("no Simplified Chinese font found: install fonts-noto-cjk (Noto Serif CJK SC)")


@lru_cache(maxsize=64)
def _font_at(path: str, index: int, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size, index=index)


def _font(size: int) -> ImageFont.FreeTypeFont:
    return _font_at(*_font_face(), max(size, 1))


def _rendered(font: ImageFont.FreeTypeFont, text: str) -> bytes:
    size = int(font.size)
    canvas = Image.new("L", (size * 2, size * 2))
    ImageDraw.Draw(canvas).text((size / 2, size / 2), text, font=font, fill=255)
    return canvas.tobytes()


def _has_glyph(font: ImageFont.FreeTypeFont, char: str) -> bool:
    return _rendered(font, char) != _rendered(font, _MISSING_GLYPH)


# ------------------------------------------------------------------------------------------ validation


def _clean_text(text: str, what: str, limit: int) -> str:
    text = unicodedata.normalize("NFC", text).strip()
    if not 1 <= len(text) <= limit:
        raise SealTextInvalid(f"the {what} on a seal is 1–{limit} characters")
    font = _font(32)
    for char in text:
        if unicodedata.category(char)[0] in "CZ":
            raise SealTextInvalid(f"the {what} on a seal has no spaces or control characters")
        if not _has_glyph(font, char):
            raise SealTextInvalid(f"the seal font has no glyph for {char!r} in the {what}")
    return text


def _clean_code(code: str) -> str:
    code = code.strip()
    if not 1 <= len(code) <= MAX_CODE_CHARS or not all(c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ" for c in code):
        raise SealTextInvalid(f"a seal code is 1–{MAX_CODE_CHARS} digits or capital letters (GA 241-2000: 13 digits)")
    return code


# ------------------------------------------------------------------------------------------- drawing


def _glyph(char: str, font: ImageFont.FreeTypeFont, *, baseline: float, width: float) -> Image.Image:
    """One character on its own mask, centred on its em box, squeezed horizontally to ``width``."""
    em = float(font.size)
    advance = font.getlength(char)
    pad = math.ceil(em * 0.15)
    w, h = math.ceil(advance) + 2 * pad, math.ceil(em) + 2 * pad
    mask = Image.new("L", (w, h))
    ImageDraw.Draw(mask).text((w / 2, h / 2 + baseline), char, font=font, fill=255, anchor="ms")
    if width < advance:
        # Long names are set in condensed characters, as seal engravers do, rather than overlapping.
        mask = mask.resize((max(1, round(w * width / advance)), h), Image.Resampling.LANCZOS)
    return mask


def _place(canvas: Image.Image, glyph: Image.Image, *, radius: float, theta: float, upright_at: float) -> None:
    """Put a glyph's centre on the circle at ``theta`` (degrees clockwise from 12 o'clock).

    ``upright_at`` is where the glyph stands unrotated: 0 for the name (tops outward), 180 for the code (tops
    toward the centre), so both read left to right like a real seal held upright.
    """
    half = canvas.width / 2
    turned = glyph.rotate(upright_at - theta, resample=Image.Resampling.BILINEAR, expand=True)
    x = half + radius * math.sin(math.radians(theta))
    y = half - radius * math.cos(math.radians(theta))
    canvas.paste(255, (round(x - turned.width / 2), round(y - turned.height / 2)), turned)


def _draw_ring_and_star(canvas: Image.Image) -> None:
    r = canvas.width / 2
    draw = ImageDraw.Draw(canvas)
    outer, inner = r * _RING_OUTER, r * _RING_INNER
    draw.ellipse((r - outer, r - outer, r + outer, r + outer), fill=255)
    draw.ellipse((r - inner, r - inner, r + inner, r + inner), fill=0)
    points = []
    for k in range(10):
        angle = math.radians(-90 + 36 * k)  # one point straight up
        radius = r * _STAR_RADIUS * (1 if k % 2 == 0 else _STAR_INNER)
        points.append((r + radius * math.cos(angle), r + radius * math.sin(angle)))
    draw.polygon(points, fill=255)


def _draw_name(canvas: Image.Image, name: str) -> None:
    r = canvas.width / 2
    n = len(name)
    # 国发〔1999〕25号: the name runs 自左而右环行; longer names take more of the circle (210°–250°).
    # Very short names would scatter over that much circle: at most 50° a character.
    span = min(210 + 40 * min(max((n - 6) / 14, 0), 1), 50 * n)
    em = r * (_NAME_EM_SHORT - (_NAME_EM_SHORT - _NAME_EM_LONG) * min(max((n - 12) / 12, 0), 1))
    font = _font(round(em))
    radius = r * (_RING_INNER - _NAME_GAP) - em / 2
    slot = span / n
    # Width a character may take, measured halfway into its inner half: the arc is shorter there than at
    # the centre line, and a tenth of each slot is left as the gap between characters.
    pitch = (radius - em / 4) * math.radians(slot) * 0.9
    for i, char in enumerate(name):
        glyph = _glyph(char, font, baseline=_CJK_BASELINE * em, width=min(font.getlength(char), pitch))
        _place(canvas, glyph, radius=radius, theta=-span / 2 + slot * (i + 0.5), upright_at=0)


def _draw_label(canvas: Image.Image, label: str) -> None:
    r = canvas.width / 2
    em = r * _LABEL_EM
    font = _font(round(em))
    advance = font.getlength(label)
    pad = math.ceil(em * 0.15)
    w, h = math.ceil(advance) + 2 * pad, math.ceil(em) + 2 * pad
    line = Image.new("L", (w, h))
    ImageDraw.Draw(line).text((w / 2, h / 2 + _CJK_BASELINE * em), label, font=font, fill=255, anchor="ms")
    if advance > r * _LABEL_MAX_WIDTH:
        line = line.resize((round(w * r * _LABEL_MAX_WIDTH / advance), h), Image.Resampling.LANCZOS)
    centre_y = r + r * _LABEL_CENTRE_Y
    canvas.paste(255, (round(r - line.width / 2), round(centre_y - line.height / 2)), line)


def _draw_code(canvas: Image.Image, code: str) -> None:
    r = canvas.width / 2
    em = r * _CODE_EM
    font = _font(round(em))
    cap = -font.getbbox("0", anchor="ls")[1]
    radius = r * (_RING_INNER - _CODE_GAP) - em / 2
    advance = max(font.getlength(c) for c in "0123456789")
    step = math.degrees(advance * _CODE_PITCH / radius)
    first = 180 + step * (len(code) - 1) / 2  # left of 6 o'clock; left to right is counter-clockwise here
    for i, char in enumerate(code):
        glyph = _glyph(char, font, baseline=cap / 2, width=font.getlength(char))
        _place(canvas, glyph, radius=radius, theta=first - step * i, upright_at=180)


def generate_seal_image(
    department_name: str,
    *,
    seal_name: str | None = None,
    seal_code: str | None = None,
    size_px: int = 512,
) -> bytes:
    """A round red official seal as an RGBA PNG, transparent outside the ink; same input, same bytes."""
    name = _clean_text(department_name, "department name", MAX_NAME_CHARS)
    label = _clean_text(seal_name, "seal name", MAX_LABEL_CHARS) if seal_name and seal_name.strip() else None
    code = _clean_code(seal_code) if seal_code and seal_code.strip() else None
    if not MIN_SIDE <= size_px <= MAX_SIDE:
        raise SealTextInvalid(f"a seal image is {MIN_SIDE}–{MAX_SIDE} px square")
    # Draw at 2–4× and downsample: anti-aliased edges without a canvas larger than ~4k px.
    scale = max(2, min(4, 3072 // size_px))
    canvas = Image.new("L", (size_px * scale, size_px * scale))
    _draw_ring_and_star(canvas)
    _draw_name(canvas, name)
    if label is not None:
        _draw_label(canvas, label)
    if code is not None:
        _draw_code(canvas, code)
    alpha = canvas.resize((size_px, size_px), Image.Resampling.LANCZOS)
    image = Image.new("RGBA", alpha.size, (*SEAL_RED, 0))
    image.putalpha(alpha)
    return _encode_png(image)


# ---------------------------------------------------------------------------------------------- PNG IO

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8\xff"
_KEEP_CHUNKS = (b"IHDR", b"IDAT", b"IEND")  # pixels only: no tIME, tEXt, eXIf, iCCP, pHYs


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """ISO/IEC 15948 §5.3 chunks up to IEND, each CRC-checked; anything after IEND is ignored."""
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG")
    chunks: list[tuple[bytes, bytes]] = []
    at = len(_PNG_SIGNATURE)
    while True:
        if at + 12 > len(data):
            raise ValueError("truncated PNG")
        length = int.from_bytes(data[at : at + 4], "big")
        kind = data[at + 4 : at + 8]
        end = at + 8 + length
        if length > 0x7FFFFFFF or end + 4 > len(data):
            raise ValueError("truncated PNG")
        body = data[at + 8 : end]
        if zlib.crc32(kind + body) != int.from_bytes(data[end : end + 4], "big"):
            raise ValueError(f"bad CRC in PNG chunk {kind!r}")
        chunks.append((kind, body))
        at = end + 4
        if kind == b"IEND":
            return chunks


def _encode_png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=6)
    kept = [(kind, body) for kind, body in _png_chunks(out.getvalue()) if kind in _KEEP_CHUNKS]
    return _PNG_SIGNATURE + b"".join(
        len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big") for kind, body in kept
    )


# -------------------------------------------------------------------------------------------- uploads


# ISO/IEC 15948 §11.2.2 Table 11.1: samples a pixel per colour type, and the bit depths each allows.
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_PNG_DEPTHS = {0: {1, 2, 4, 8, 16}, 2: {8, 16}, 3: {1, 2, 4, 8}, 4: {8, 16}, 6: {8, 16}}
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _png_header(data: bytes) -> tuple[bytes, list[bytes]]:
    """IHDR and the IDAT bodies of a single-image PNG."""
    chunks = _png_chunks(data)
    if chunks[0][0] != b"IHDR" or len(chunks[0][1]) != 13:
        raise ValueError("PNG does not start with IHDR")
    kinds = {kind for kind, _ in chunks}
    if b"acTL" in kinds or b"fcTL" in kinds:
        raise ValueError("animated PNG (APNG)")
    idats = [body for kind, body in chunks if kind == b"IDAT"]
    if not idats:
        raise ValueError("PNG without image data")
    return chunks[0][1], idats


def _png_declared_size(data: bytes) -> tuple[int, int]:
    header, _ = _png_header(data)
    return int.from_bytes(header[0:4], "big"), int.from_bytes(header[4:8], "big")


def _png_raw_size(header: bytes) -> int:
    """Bytes the filtered scanlines inflate to (ISO/IEC 15948 §7.2, §8.2 Adam7): exactly, no more."""
    width, height = int.from_bytes(header[0:4], "big"), int.from_bytes(header[4:8], "big")
    depth, colour, compression, filtering, interlace = header[8:13]
    if colour not in _PNG_DEPTHS or depth not in _PNG_DEPTHS[colour] or compression or filtering or interlace > 1:
        raise ValueError("PNG header with an invalid format")
    bits = depth * _PNG_CHANNELS[colour]
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    total = 0
    for x0, y0, dx, dy in passes:
        columns, rows = -(-(width - x0) // dx), -(-(height - y0) // dy)
        if columns > 0 and rows > 0:
            total += rows * (1 + -(-(columns * bits) // 8))
    return total


def _check_png_data(data: bytes) -> None:
    """Inflate the image data in bounded steps and insist it is exactly as long as the header says.

    Pillow silently zero-fills a PNG whose zlib stream ends early; a short or overlong stream is refused
    here, and inflating never holds more than a megabyte at once however well the data compresses.
    """
    header, idats = _png_header(data)
    expected = _png_raw_size(header)
    inflater = zlib.decompressobj()
    total = 0
    try:
        for body in idats:
            pending = body
            while pending and not inflater.eof:
                total += len(inflater.decompress(pending, 1 << 20))
                pending = inflater.unconsumed_tail
                if total > expected:
                    raise ValueError("PNG image data longer than its header says")
        total += len(inflater.flush())
    except zlib.error:
        raise ValueError("PNG image data is corrupt") from None
    if not inflater.eof or total != expected:
        raise ValueError("PNG image data shorter than its header says")


# ITU-T T.81 Table B.1: start-of-frame markers (not DHT C4, JPG C8, DAC CC).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01}  # RSTn and TEM carry no length (T.81 §B.1.1.3)


def _jpeg_segments(data: bytes) -> Iterator[tuple[int, bytes]]:
    """T.81 §B.1.1 marker segments (marker, payload) up to and including the first start of scan."""
    at = 2
    while True:
        if at >= len(data) or data[at] != 0xFF:
            raise ValueError("malformed JPEG marker")
        while at < len(data) and data[at] == 0xFF:  # fill bytes (T.81 §B.1.1.2)
            at += 1
        if at + 3 > len(data):
            raise ValueError("truncated JPEG")
        marker = data[at]
        at += 1
        if marker in _JPEG_STANDALONE:
            continue
        if marker == 0xD9:
            raise ValueError("JPEG ends before any scan")
        length = int.from_bytes(data[at : at + 2], "big")
        if length < 2 or at + length > len(data):
            raise ValueError("truncated JPEG")
        yield marker, data[at + 2 : at + length]
        if marker == 0xDA:
            return
        at += length


def _jpeg_declared_size(data: bytes) -> tuple[int, int]:
    """The frame header's size; exactly one frame before the first scan is allowed (no hierarchical JPEG)."""
    frames = [payload for marker, payload in _jpeg_segments(data) if marker in _JPEG_SOF]
    if len(frames) != 1:
        raise ValueError("JPEG with no or several frames")
    if len(frames[0]) < 6:
        raise ValueError("short JPEG frame header")
    header = frames[0]  # T.81 §B.2.2: P, Y (lines), X (samples per line), …
    return int.from_bytes(header[3:5], "big"), int.from_bytes(header[1:3], "big")


def _check_size(width: int, height: int) -> None:
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise SealImageInvalid(f"the image is {width}×{height} px; allowed: {ALLOWED}")
    if not MIN_ASPECT <= width / height <= MAX_ASPECT:
        raise SealImageInvalid(f"the image's aspect ratio {width}:{height} is too extreme; allowed: {ALLOWED}")


def _decode(data: bytes, kind: str, declared: tuple[int, int]) -> Image.Image:
    """Open and fully decode, once the declared size has been checked against our limits."""
    # Pillow's own decompression-bomb check cannot fire after _check_size (2048² px is far below its
    # limit), but make it an error rather than a warning should a header ever disagree with ours.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image: Image.Image = Image.open(io.BytesIO(data), formats=[kind])
        if image.size != declared:
            raise ValueError("Pillow reads another size than the header declares")
        if image.format != kind:  # e.g. a multi-picture JPEG is reported as MPO
            raise ValueError(f"{image.format} is not {kind}")
        if getattr(image, "n_frames", 1) != 1 or getattr(image, "is_animated", False):
            raise ValueError("several frames")
        image.load()
        if kind == "JPEG":
            image = ImageOps.exif_transpose(image)  # keep the orientation a camera recorded before EXIF goes
    return image


# Channel minimum → alpha: 235 and paler is paper (transparent), 200 and darker is ink (opaque).
_PAPER, _INK = 235, 200
_WHITE_RAMP = [
    255 if v <= _INK else 0 if v >= _PAPER else round(255 * (_PAPER - v) / (_PAPER - _INK)) for v in range(256)
]


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in {"RGBA", "LA", "PA"} or "transparency" in image.info


def _white_to_transparent(image: Image.Image) -> Image.Image:
    """Paper white becomes transparent, ink stays opaque, with a short ramp so edges stay smooth."""
    rgb = image.convert("RGB")
    red, green, blue = rgb.split()
    palest = ImageChops.darker(ImageChops.darker(red, green), blue)  # a pixel is white only if every channel is
    rgba = rgb.convert("RGBA")
    rgba.putalpha(palest.point(_WHITE_RAMP))
    return rgba


def _to_rgba(image: Image.Image) -> Image.Image:
    if image.mode in {"I", "I;16", "I;16B", "I;16L", "I;16N"}:
        image = image.convert("I").point(lambda v: v * (1 / 257)).convert("L")  # 16-bit grey to 8-bit
    if _has_alpha(image):
        return image.convert("RGBA")
    return _white_to_transparent(image)


def _checked_rgba(data: bytes, *, jpeg: bool) -> Image.Image:
    """Every check, cheapest first and all before decoding pixels, then the decoded image as RGBA."""
    if not isinstance(data, bytes | bytearray) or not data:
        raise SealImageInvalid(f"no image data; allowed: {ALLOWED}")
    if len(data) > MAX_UPLOAD_BYTES:
        raise SealImageInvalid(f"the image is {len(data)} bytes; allowed: {ALLOWED}")
    data = bytes(data)
    if data.startswith(_PNG_SIGNATURE):
        kind, declared = "PNG", _png_declared_size
    elif jpeg and data.startswith(_JPEG_SIGNATURE):
        kind, declared = "JPEG", _jpeg_declared_size
    else:
        raise SealImageInvalid(f"not a PNG or JPEG image; allowed: {ALLOWED}")
    try:
        width, height = declared(data)
        _check_size(width, height)  # before any pixel is inflated: a bomb declares its size up front
        if kind == "PNG":
            _check_png_data(data)
    except ValueError as exc:
        raise SealImageInvalid(f"the image is refused: {exc}; allowed: {ALLOWED}") from None
    try:
        return _to_rgba(_decode(data, kind, (width, height)))
    # Hostile input: Pillow's decoders raise OSError, SyntaxError, zlib.error, DecompressionBombError,
    # struct.error, IndexError… — every one of them means "not an image we accept".
    except Exception as exc:  # noqa: BLE001
        raise SealImageInvalid(f"the image cannot be decoded ({type(exc).__name__}); allowed: {ALLOWED}") from None


def sanitise_seal_image(data: bytes) -> bytes:
    """An uploaded seal image, checked and re-encoded from its pixels alone as a fresh RGBA PNG.

    Only pixels survive: metadata (EXIF, ICC, text chunks), data after the end of the image and any
    polyglot payload are gone. Images without an alpha channel (JPEG) get their white made transparent.
    """
    rgba = _checked_rgba(data, jpeg=True)
    return _encode_png(Image.frombytes("RGBA", rgba.size, rgba.tobytes()))  # no info dict: only pixels


def bitmap_for_pdf(png: bytes) -> SealBitmap:
    """Split a stored seal PNG (generated or sanitised) into RGB and alpha samples for the PDF sealer.

    The blob is ours, but it is checked like an upload all the same: storage is outside this process.
    """
    rgba = _checked_rgba(png, jpeg=False)
    return SealBitmap(
        width=rgba.width,
        height=rgba.height,
        rgb=rgba.convert("RGB").tobytes(),
        alpha=rgba.getchannel("A").tobytes(),
    )
