"""Seal images: the generated round seal looks like one, uploads are checked and reduced to their pixels."""

from __future__ import annotations

import hashlib
import io
import math
import struct
import zlib
from collections.abc import Callable

import pytest
from PIL import Image, ImageDraw, PngImagePlugin

from seals.errors import SealImageInvalid, SealTextInvalid
from seals.image import (
    MAX_UPLOAD_BYTES,
    SEAL_RED,
    SealBitmap,
    bitmap_for_pdf,
    generate_seal_image,
    sanitise_seal_image,
)

NAME = "临江市市场监督管理局"
LABEL = "电子证照专用章"
CODE = "3301020000123"


def open_png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    image.load()
    return image


def chunk_types(png: bytes) -> list[bytes]:
    kinds, at = [], 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kinds.append(png[at + 4 : at + 8])
        at += 12 + length
    return kinds


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def is_seal_red(pixel: tuple[int, ...]) -> bool:
    r, g, b, a = pixel
    return a >= 200 and (r, g, b) == SEAL_RED


def polar(size: int, radius_fraction: float, degrees_from_top: float) -> tuple[int, int]:
    half = size / 2
    x = half + half * radius_fraction * math.sin(math.radians(degrees_from_top))
    y = half - half * radius_fraction * math.cos(math.radians(degrees_from_top))
    return int(x), int(y)


def ink_in(image: Image.Image, inside: Callable[[float, float], bool]) -> int:
    """Opaque pixels whose position (radius fraction, degrees clockwise from 12 o'clock) passes ``inside``."""
    half = image.width / 2
    alpha = image.getchannel("A").load()
    assert alpha is not None
    count = 0
    for y in range(image.height):
        for x in range(image.width):
            dx, dy = x + 0.5 - half, y + 0.5 - half
            radius = math.hypot(dx, dy) / half
            theta = math.degrees(math.atan2(dx, -dy)) % 360
            if inside(radius, theta) and alpha[x, y] >= 128:  # type: ignore[operator]
                count += 1
    return count


@pytest.fixture(scope="module")
def seal() -> Image.Image:
    return open_png(generate_seal_image(NAME, seal_name=LABEL, seal_code=CODE, size_px=256))


# --------------------------------------------------------------------------------------- generation


@pytest.mark.parametrize("size", [128, 256, 512])
def test_generated_seal_is_a_square_rgba_png_of_the_requested_size(size: int) -> None:
    image = open_png(generate_seal_image(NAME, size_px=size))
    assert image.mode == "RGBA"
    assert image.size == (size, size)


def test_generated_seal_is_transparent_outside_the_ring(seal: Image.Image) -> None:
    last = seal.width - 1
    for corner in [(0, 0), (last, 0), (0, last), (last, last), (3, 3)]:
        assert seal.getpixel(corner)[3] == 0  # type: ignore[index]
    assert ink_in(seal, lambda radius, _: radius > 1.0) == 0


def test_ring_is_solid_seal_red_all_the_way_round(seal: Image.Image) -> None:
    for degrees in range(0, 360, 5):
        assert is_seal_red(seal.getpixel(polar(seal.width, 0.94, degrees))), degrees  # type: ignore[arg-type]


def test_star_is_solid_red_and_centred(seal: Image.Image) -> None:
    size = seal.width
    for fraction, degrees in [(0, 0), (0.2, 0), (0.1, 90), (0.1, 270), (0.05, 180), (0.2, 72), (0.2, 288)]:
        assert is_seal_red(seal.getpixel(polar(size, fraction, degrees))), (fraction, degrees)  # type: ignore[arg-type]
    # Between two points of the star, at its outer radius, there is no ink.
    assert seal.getpixel(polar(size, 0.3, 36))[3] == 0  # type: ignore[index]
    # Mirror-symmetric about the vertical axis, so centred left to right.
    star = seal.crop((size // 4, size // 4, 3 * size // 4, 3 * size // 4 - size // 10)).getchannel("A")
    mirrored = star.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    diff = sum(abs(a - b) for a, b in zip(star.tobytes(), mirrored.tobytes(), strict=True))
    assert diff / (star.width * star.height) < 2


def upper_arc(radius: float, theta: float) -> bool:
    return 0.55 < radius < 0.88 and (theta > 240 or theta < 120)


def lower_arc(radius: float, theta: float) -> bool:
    return 0.7 < radius < 0.9 and 140 < theta < 220


def test_the_name_is_drawn_along_the_upper_arc() -> None:
    long_name = open_png(generate_seal_image(NAME, size_px=256))
    one_char = open_png(generate_seal_image("局", size_px=256))
    long_ink, short_ink = ink_in(long_name, upper_arc), ink_in(one_char, upper_arc)
    assert short_ink > 100  # one character is there too
    assert long_ink > 5 * short_ink
    # The name stays on the upper arc: nothing in the band the seal code uses.
    assert ink_in(long_name, lower_arc) == 0


def test_the_name_reads_left_to_right_starting_on_the_left() -> None:
    # "一" is a lone horizontal stroke, "口" a box: the first character sits on the left of the seal.
    left_first = open_png(generate_seal_image("口一一一", size_px=256))
    left_ink = ink_in(left_first, lambda r, t: 0.55 < r < 0.88 and 240 < t < 330)
    right_ink = ink_in(left_first, lambda r, t: 0.55 < r < 0.88 and 30 < t < 120)
    assert left_ink > 1.5 * right_ink


def test_the_seal_code_is_drawn_along_the_lower_arc() -> None:
    with_code = open_png(generate_seal_image(NAME, seal_code=CODE, size_px=256))
    assert ink_in(with_code, lower_arc) > 300


def test_the_seal_name_is_drawn_below_the_star() -> None:
    def under_star(radius: float, theta: float) -> bool:
        return 0.38 < radius < 0.62 and 150 < theta < 210

    assert ink_in(open_png(generate_seal_image(NAME, size_px=256)), under_star) == 0
    assert ink_in(open_png(generate_seal_image(NAME, seal_name=LABEL, size_px=256)), under_star) > 200


def test_different_text_gives_different_images() -> None:
    images = {
        generate_seal_image(NAME, size_px=128),
        generate_seal_image("临江市人民政府", size_px=128),
        generate_seal_image(NAME, seal_name=LABEL, size_px=128),
        generate_seal_image(NAME, seal_code=CODE, size_px=128),
        generate_seal_image(NAME, seal_code="3301020000124", size_px=128),
    }
    assert len(images) == 5


def test_generation_is_deterministic_and_carries_no_metadata() -> None:
    first = generate_seal_image(NAME, seal_name=LABEL, seal_code=CODE)
    assert generate_seal_image(NAME, seal_name=LABEL, seal_code=CODE) == first
    assert set(chunk_types(first)) == {b"IHDR", b"IDAT", b"IEND"}


def test_twenty_four_characters_fit_and_blank_optional_parts_are_left_out() -> None:
    name = "中华人民共和国临江市某区市场监督管理局行政审批科"
    assert len(name) == 24
    assert open_png(generate_seal_image(name, seal_name=LABEL, seal_code=CODE, size_px=128)).size == (128, 128)
    assert generate_seal_image(NAME, seal_name=" ", seal_code="", size_px=128) == generate_seal_image(NAME, size_px=128)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("临" * 25, {}),
        ("", {}),
        ("   ", {}),
        ("临江 市", {}),
        ("临江\u0000市", {}),
        ("临江市\U0001f600", {}),  # no glyph in the seal font: refused rather than drawn as tofu
        (NAME, {"seal_name": "专" * 13}),
        (NAME, {"seal_code": "33010200001234567"}),
        (NAME, {"seal_code": "3301-02"}),
        (NAME, {"seal_code": "abc"}),
        (NAME, {"size_px": 64}),
        (NAME, {"size_px": 4096}),
    ],
)
def test_text_that_cannot_be_drawn_is_refused(name: str, params: dict[str, object]) -> None:
    with pytest.raises(SealTextInvalid) as raised:
        generate_seal_image(name, **params)  # type: ignore[arg-type]
    assert raised.value.status == 422


# ---------------------------------------------------------------------------------------- PDF samples


def test_bitmap_for_pdf_splits_colour_and_alpha() -> None:
    bitmap = bitmap_for_pdf(generate_seal_image(NAME, size_px=200))
    assert isinstance(bitmap, SealBitmap)
    assert (bitmap.width, bitmap.height) == (200, 200)
    assert len(bitmap.rgb) == 200 * 200 * 3
    assert len(bitmap.alpha) == 200 * 200
    assert bitmap.alpha[0] == 0
    centre = 100 * 200 + 100
    assert bitmap.alpha[centre] == 255
    assert tuple(bitmap.rgb[centre * 3 : centre * 3 + 3]) == SEAL_RED


@pytest.mark.parametrize("data", [b"", b"not a png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40])
def test_bitmap_for_pdf_refuses_what_is_not_a_seal_png(data: bytes) -> None:
    with pytest.raises(SealImageInvalid):
        bitmap_for_pdf(data)


# ----------------------------------------------------------------------------------------- uploads


def stamp_on_white(size: tuple[int, int] = (300, 300)) -> Image.Image:
    image = Image.new("RGB", size, "white")
    w, h = size
    ImageDraw.Draw(image).ellipse((w // 6, h // 6, 5 * w // 6, 5 * h // 6), fill=SEAL_RED)
    return image


def test_a_valid_png_round_trips_pixel_for_pixel() -> None:
    original = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    ImageDraw.Draw(original).ellipse((20, 20, 180, 180), fill=(*SEAL_RED, 255))
    ImageDraw.Draw(original).rectangle((200, 50, 280, 150), fill=(200, 10, 30, 128))
    result = open_png(sanitise_seal_image(encode(original, "PNG")))
    assert result.mode == "RGBA"
    assert result.size == (300, 200)
    assert result.tobytes() == original.tobytes()


def test_a_jpeg_gets_its_white_made_transparent() -> None:
    result = open_png(sanitise_seal_image(encode(stamp_on_white(), "JPEG", quality=90)))
    assert result.mode == "RGBA"
    assert result.size == (300, 300)
    assert result.getpixel((2, 2))[3] == 0  # type: ignore[index]
    assert result.getpixel((298, 150))[3] == 0  # type: ignore[index]
    r, g, b, a = result.getpixel((150, 150))  # type: ignore[misc]
    assert a == 255
    assert r > 200 and g < 30 and b < 40


def test_a_png_without_alpha_is_treated_like_paper_too() -> None:
    result = open_png(sanitise_seal_image(encode(stamp_on_white(), "PNG")))
    assert result.getpixel((2, 2))[3] == 0  # type: ignore[index]
    assert result.getpixel((150, 150)) == (*SEAL_RED, 255)


def test_palette_and_sixteen_bit_pngs_are_accepted() -> None:
    palette = Image.new("P", (200, 200), 0)
    palette.putpalette([255, 255, 255, *SEAL_RED] + [0] * 762)
    ImageDraw.Draw(palette).rectangle((50, 50, 150, 150), fill=1)
    result = open_png(sanitise_seal_image(encode(palette, "PNG", transparency=0)))
    assert result.getpixel((10, 10))[3] == 0  # type: ignore[index]
    assert result.getpixel((100, 100)) == (*SEAL_RED, 255)

    grey = Image.new("I;16", (200, 200), 65535)
    ImageDraw.Draw(grey).rectangle((50, 50, 150, 150), fill=0)
    result = open_png(sanitise_seal_image(encode(grey, "PNG")))
    assert result.getpixel((10, 10))[3] == 0  # type: ignore[index]
    assert result.getpixel((100, 100)) == (0, 0, 0, 255)


def test_an_interlaced_png_is_accepted() -> None:
    # Pillow cannot write Adam7, so build one: seven passes of white RGB scanlines (ISO/IEC 15948 §8.2).
    width, height = 203, 130
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
    raw = b""
    for x0, y0, dx, dy in passes:
        columns, rows = -(-(width - x0) // dx), -(-(height - y0) // dy)
        raw += (b"\x00" + b"\xff" * 3 * columns) * rows
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 1)
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(raw))
    result = open_png(sanitise_seal_image(data + png_chunk(b"IEND", b"")))
    assert result.size == (width, height)
    assert result.getchannel("A").getextrema() == (0, 0)


def test_png_metadata_and_trailing_payloads_are_dropped() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret-text-payload")
    info.add_itxt("Description", "secret-itxt-payload", zip=True)
    exif = Image.Exif()
    exif[0x010E] = "secret-exif-payload"  # ImageDescription
    image = Image.new("RGBA", (200, 200), (*SEAL_RED, 255))
    data = encode(image, "PNG", pnginfo=info, exif=exif.tobytes(), dpi=(300, 300))
    data += b"PK\x03\x04secret-zip-polyglot<script>alert(1)</script>"
    assert b"secret-text-payload" in data
    assert b"eXIf" in data

    cleaned = sanitise_seal_image(data)
    for needle in [b"secret", b"PK\x03\x04", b"<script", b"tEXt", b"iTXt", b"zTXt", b"eXIf", b"pHYs"]:
        assert needle not in cleaned
    assert set(chunk_types(cleaned)) == {b"IHDR", b"IDAT", b"IEND"}
    assert open_png(cleaned).tobytes() == image.tobytes()


def test_jpeg_exif_and_icc_profile_are_dropped() -> None:
    exif = Image.Exif()
    exif[0x010E] = "secret-exif-payload"
    icc = b"\x00\x00\x02\x0csecret-icc-payload" + b"\x00" * 512
    data = encode(stamp_on_white(), "JPEG", exif=exif.tobytes(), icc_profile=icc)
    assert b"secret-exif-payload" in data
    cleaned = sanitise_seal_image(data + b"trailing-junk")
    for needle in [b"secret", b"Exif", b"iCCP", b"trailing-junk"]:
        assert needle not in cleaned
    assert set(chunk_types(cleaned)) == {b"IHDR", b"IDAT", b"IEND"}


def test_jpeg_orientation_is_applied_before_exif_is_dropped() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    data = encode(stamp_on_white((300, 150)), "JPEG", exif=exif.tobytes())
    assert open_png(sanitise_seal_image(data)).size == (150, 300)


# --------------------------------------------------------------------------------- refused uploads


def noise(length: int, seed: bytes = b"seal") -> bytes:
    """Incompressible bytes, the same every run."""
    return hashlib.shake_256(seed).digest(length)


def noise_png(size: tuple[int, int]) -> bytes:
    pixels = noise(size[0] * size[1] * 4)
    return encode(Image.frombytes("RGBA", size, pixels), "PNG")


def apng() -> bytes:
    first = Image.new("RGBA", (200, 200), (*SEAL_RED, 255))
    second = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    return encode(first, "PNG", save_all=True, append_images=[second], duration=100)


def png_declaring(width: int, height: int) -> bytes:
    """A tiny, otherwise valid PNG whose header declares the given size: a decompression bomb."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 4096, 9))
        + png_chunk(b"IEND", b"")
    )


def jpeg_declaring(width: int, height: int) -> bytes:
    data = bytearray(encode(stamp_on_white((200, 200)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def truncated_png() -> bytes:
    data = noise_png((300, 300))
    return data[: len(data) // 2]


def truncated_jpeg() -> bytes:
    data = encode(Image.frombytes("RGB", (300, 300), noise(300 * 300 * 3)), "JPEG", quality=95)
    return data[: len(data) // 2]


def bad_crc_png() -> bytes:
    data = bytearray(encode(stamp_on_white((200, 200)), "PNG"))
    data[data.index(b"IDAT") + 10] ^= 0xFF  # inside the first IDAT's data
    return bytes(data)


def png_with_idat(idat: bytes) -> bytes:
    """Well-formed chunks with correct CRCs around the given image data: only the decoder can tell."""
    ihdr = struct.pack(">IIBBBBB", 200, 200, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


REFUSED: dict[str, Callable[[], bytes]] = {
    "empty": lambda: b"",
    "random bytes": lambda: noise(5000, b"random"),
    "svg": lambda: (
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="300" height="300">'
        b'<circle cx="150" cy="150" r="140" fill="red"/><script>alert(1)</script></svg>'
    ),
    "pdf": lambda: b"%PDF-1.7\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n",
    "gif": lambda: encode(Image.new("P", (200, 200)), "GIF"),
    "webp": lambda: encode(Image.new("RGBA", (200, 200)), "WEBP"),
    "bmp": lambda: encode(Image.new("RGB", (200, 200)), "BMP"),
    "animated png": apng,
    "too many bytes": lambda: encode(Image.new("RGBA", (200, 200)), "PNG") + b"\x00" * MAX_UPLOAD_BYTES,
    "too small": lambda: encode(Image.new("RGBA", (127, 127), (*SEAL_RED, 255)), "PNG"),
    "too large": lambda: encode(Image.new("1", (2049, 2049)), "PNG"),
    "too wide": lambda: encode(Image.new("RGBA", (1000, 400)), "PNG"),
    "too tall": lambda: encode(Image.new("RGB", (200, 401)), "JPEG"),
    "truncated png": truncated_png,
    "truncated jpeg": truncated_jpeg,
    "png with a bad crc": bad_crc_png,
    "png with corrupt image data": lambda: png_with_idat(noise(3000, b"idat")),
    "png with too little image data": lambda: png_with_idat(zlib.compress(b"\x00" * 601 * 100)),
    "png with too much image data": lambda: png_with_idat(zlib.compress(b"\x00" * 601 * 201)),
    "png with an unknown row filter": lambda: png_with_idat(zlib.compress((b"\x09" + b"\x00" * 600) * 200)),
    "png signature only": lambda: b"\x89PNG\r\n\x1a\n",
    "png signature, jpeg body": lambda: b"\x89PNG\r\n\x1a\n" + encode(stamp_on_white(), "JPEG")[3:],
    "jpeg signature, png body": lambda: b"\xff\xd8\xff" + encode(stamp_on_white(), "PNG"),
    "png bomb": lambda: png_declaring(60000, 60000),
    "png bomb within pillow's limit": lambda: png_declaring(8000, 8000),
    "jpeg bomb": lambda: jpeg_declaring(60000, 60000),
    "jpeg with zero height": lambda: jpeg_declaring(200, 0),
}


@pytest.mark.parametrize("make", REFUSED.values(), ids=REFUSED.keys())
def test_unacceptable_uploads_are_refused_with_seal_image_invalid(make: Callable[[], bytes]) -> None:
    with pytest.raises(SealImageInvalid) as raised:
        sanitise_seal_image(make())
    assert raised.value.status == 422
    assert raised.value.code == "seal_image_invalid"
    assert "PNG or JPEG, at most 2 MiB, 128–2048 px per side" in raised.value.detail


@pytest.mark.parametrize("limit", [10_000, 30_000], ids=["bomb error", "bomb warning"])
def test_pillows_own_bomb_check_becomes_seal_image_invalid(monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
    # With a lower pixel limit a 200×200 image trips Pillow's check: as an error above twice the limit,
    # as a warning above it. Either way the caller sees our refusal, never a 500.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with pytest.raises(SealImageInvalid):
        sanitise_seal_image(encode(stamp_on_white((200, 200)), "PNG"))
