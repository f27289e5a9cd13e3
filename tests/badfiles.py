"""Bad and unusual image files, made in-process with Pillow, numpy, zlib and struct.

Nothing is downloaded: the only outside input is a real photo (a trashnet JPEG) that the truncated
and corrupt cases are cut from. Each ``write_*`` function writes its files into a folder and returns
``{file name: expected outcome}``; an outcome is :class:`Reject` (the word or phrase the rejection
reason must contain) or :class:`Accept` (the oriented size, the format and a few RGB pixels the
decoded picture must show). Outcomes hold for the default limits of :class:`ImageLimits` /
``Settings``.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

Pixel = tuple[int, int, int]


@dataclass(frozen=True)
class Reject:
    reason: str


@dataclass(frozen=True)
class Accept:
    width: int
    height: int
    format: str
    #: (x, y) after EXIF orientation -> the RGB value expected there (within a small tolerance).
    pixels: dict[tuple[int, int], Pixel] = field(default_factory=dict)


Outcome = Reject | Accept

RED: Pixel = (255, 0, 0)
BLUE: Pixel = (0, 0, 255)
WHITE: Pixel = (255, 255, 255)

# ---- byte builders -----------------------------------------------------------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_header_only(width: int, height: int, *, color_type: int = 2) -> bytes:
    """A well-formed PNG whose IHDR declares ``width`` x ``height`` but whose IDAT holds only a
    few bytes: opening it is cheap, decoding it would need the declared size in memory."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + png_chunk(b"IEND", b"")
    )


def truncated(data: bytes, fraction: float = 0.6) -> bytes:
    return data[: int(len(data) * fraction)]


def scrambled_jpeg(data: bytes, seed: int = 7, span: int = 2000) -> bytes:
    """Overwrite ``span`` bytes in the middle of the scan data (after the SOS marker) with noise;
    the headers stay intact, so only a full decode finds the damage."""
    sos = data.index(b"\xff\xda")
    start = (sos + len(data)) // 2
    assert start + span < len(data) - 2, "photo too small to scramble"
    rng = random.Random(seed)
    noise = bytes(rng.randrange(256) for _ in range(span))
    return data[:start] + noise + data[start + span :]


def encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **params)
    return out.getvalue()


def cmyk_jpeg() -> bytes:
    return encode(Image.new("CMYK", (32, 16), (0, 255, 255, 0)), "JPEG", quality=95)


def gray16_png(width: int = 256, height: int = 64, top: int = 65535) -> bytes:
    """16-bit grayscale (mode I;16), a left-to-right ramp from 0 to ``top``."""
    ramp = np.arange(width, dtype=np.uint64) * top // (width - 1)
    arr = np.tile(ramp.astype(np.uint16), (height, 1))
    img = Image.fromarray(arr)
    assert img.mode == "I;16", img.mode
    return encode(img, "PNG")


def palette_png() -> bytes:
    """Palette image, left half index 1 (transparent), right half index 0 (red)."""
    img = Image.new("P", (16, 16), 0)
    img.putpalette([255, 0, 0, 0, 0, 255] + [0, 0, 0] * 254)
    img.paste(1, (0, 0, 8, 16))
    return encode(img, "PNG", transparency=1)


def rgba_png() -> bytes:
    """Left half opaque red, right half fully transparent black, one half-transparent black pixel."""
    arr = np.zeros((16, 16, 4), np.uint8)
    arr[:, :8] = (255, 0, 0, 255)
    arr[0, 15] = (0, 0, 0, 128)
    return encode(Image.fromarray(arr, "RGBA"), "PNG")


def gray_jpeg() -> bytes:
    return encode(Image.new("L", (24, 12), 77), "JPEG", quality=95)


def exif_rotated_jpeg() -> bytes:
    """Stored 40x20, left half red and right half blue, EXIF orientation 6 (rotate 90 clockwise to
    display): shown 20x40 with red on top and blue below."""
    img = Image.new("RGB", (40, 20), BLUE)
    img.paste(RED, (0, 0, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(img, "JPEG", quality=95, exif=exif.tobytes())


def animated_gif() -> bytes:
    """Two frames, red then blue: the first frame is the picture."""
    frames = [Image.new("RGB", (20, 10), c) for c in (RED, BLUE)]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


def ico_bytes() -> bytes:
    """A real icon file: Pillow can read it, but it is not a format tagtrain stores."""
    return encode(Image.new("RGB", (16, 16), RED), "ICO")


# ---- writers -----------------------------------------------------------------------------------


def rejected_bytes(photo: Path) -> dict[str, tuple[bytes, Reject]]:
    """Every file that must be rejected, by name, with its bytes and expected reason."""
    real = photo.read_bytes()
    return {
        "empty.jpg": (b"", Reject("empty")),
        "text.jpg": (b"hello, I am a shopping list, not a photo\n" * 3, Reject("not an image")),
        "truncated.jpg": (truncated(real, 0.6), Reject("truncated")),
        "corrupt.jpg": (scrambled_jpeg(real), Reject("corrupt")),
        "bomb.png": (png_header_only(30_000, 30_000), Reject("decompression bomb")),
        "too_wide.png": (png_header_only(25_000, 10), Reject("side limit")),
        "icon.png": (ico_bytes(), Reject("not accepted")),
    }


def accepted_bytes() -> dict[str, tuple[bytes, Accept]]:
    """Every valid-but-unusual file, by name, with its bytes and expected result."""
    return {
        "cmyk.jpg": (cmyk_jpeg(), Accept(32, 16, "JPEG", {(0, 0): RED, (31, 15): RED})),
        "gray16.png": (
            gray16_png(),
            Accept(
                256,
                64,
                "PNG",
                {(0, 0): (0, 0, 0), (128, 10): (128, 128, 128), (255, 63): WHITE},
            ),
        ),
        "palette_transparent.png": (
            palette_png(),
            Accept(16, 16, "PNG", {(0, 0): WHITE, (7, 15): WHITE, (8, 0): RED, (15, 15): RED}),
        ),
        "rgba.png": (
            rgba_png(),
            Accept(
                16,
                16,
                "PNG",
                {(0, 0): RED, (15, 15): WHITE, (15, 0): (127, 127, 127)},
            ),
        ),
        "gray.jpg": (gray_jpeg(), Accept(24, 12, "JPEG", {(0, 0): (77, 77, 77)})),
        "exif_rotated.jpg": (
            exif_rotated_jpeg(),
            Accept(20, 40, "JPEG", {(10, 5): RED, (10, 35): BLUE}),
        ),
        "animated.gif": (animated_gif(), Accept(20, 10, "GIF", {(0, 0): RED, (19, 9): RED})),
    }


def _write(folder: Path, files: dict[str, tuple[bytes, Outcome]]) -> dict[str, Outcome]:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
    return {name: outcome for name, (_, outcome) in files.items()}


def write_rejected(folder: Path, photo: Path) -> dict[str, Outcome]:
    """Write the files that must be rejected (truncated/corrupt ones are cut from ``photo``)."""
    return _write(folder, dict(rejected_bytes(photo)))


def write_accepted(folder: Path) -> dict[str, Outcome]:
    """Write the valid-but-unusual files."""
    return _write(folder, dict(accepted_bytes()))


def write_all(folder: Path, photo: Path) -> dict[str, Outcome]:
    return write_rejected(folder, photo) | write_accepted(folder)
