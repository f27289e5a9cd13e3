"""decode_image / to_rgb / make_thumbnail on bad and unusual files (see tests/badfiles.py)."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tagtrain.errors import BadInput, InvalidImage
from tagtrain.media import ImageLimits, decode_image, make_thumbnail, to_rgb
from tests import badfiles
from tests.badfiles import Accept, Reject
from tests.conftest import trashnet_photos

LIMITS = ImageLimits()
PHOTO = trashnet_photos(1)[0]
REJECTED = badfiles.rejected_bytes(PHOTO)
ACCEPTED = badfiles.accepted_bytes()


def close_to(actual: object, expected: tuple[int, ...], tol: int = 4) -> bool:
    assert isinstance(actual, tuple | np.ndarray), actual
    return all(abs(int(a) - e) <= tol for a, e in zip(actual, expected, strict=True))


# ---- rejected ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_bad_file_is_rejected_with_its_name_and_reason(name: str) -> None:
    data, outcome = REJECTED[name]
    assert isinstance(outcome, Reject)
    with pytest.raises(InvalidImage) as caught:
        decode_image(data, f"folder/{name}", LIMITS)
    exc = caught.value
    assert isinstance(exc, BadInput) and exc.status == 422
    assert exc.name == f"folder/{name}"
    assert exc.message.startswith(f"folder/{name}: ")
    assert outcome.reason in exc.reason, exc.reason


def test_bomb_is_refused_from_the_header_without_decoding() -> None:
    """30000x30000 RGB would be 2.7 GB decoded: the refusal must come from the header, fast."""
    data, _ = REJECTED["bomb.png"]
    assert len(data) < 200
    started = time.perf_counter()
    with pytest.raises(InvalidImage) as caught:
        decode_image(data, "bomb.png", LIMITS)
    assert time.perf_counter() - started < 0.5
    assert "decompression bomb" in caught.value.reason
    assert "truncated" not in caught.value.reason


def test_configured_pixel_limit_refuses_before_decoding() -> None:
    data = badfiles.png_header_only(2000, 2000)
    with pytest.raises(InvalidImage) as caught:
        decode_image(data, "big.png", ImageLimits(max_pixels=1_000_000, max_side=20_000))
    assert "decompression bomb" in caught.value.reason
    assert "1,000,000-pixel limit" in caught.value.reason
    assert "2000x2000" in caught.value.reason


def test_side_limit_applies_under_the_pixel_limit() -> None:
    data = badfiles.png_header_only(3000, 10)
    with pytest.raises(InvalidImage) as caught:
        decode_image(data, "wide.png", ImageLimits(max_pixels=1_000_000, max_side=2000))
    assert "side limit" in caught.value.reason
    assert "3000x10" in caught.value.reason


def test_pixel_count_under_the_configured_limit_is_not_called_a_bomb() -> None:
    """9500x9500 = 90.25 Mpx is under the default 100 Mpx limit, though over Pillow's own
    warning threshold (~89.5 Mpx): the configured limit decides. (The IDAT is tiny, so the
    file then fails as truncated.)"""
    data = badfiles.png_header_only(9500, 9500, color_type=0)
    with pytest.raises(InvalidImage) as caught:
        decode_image(data, "big.png", LIMITS)
    assert "decompression bomb" not in caught.value.reason
    assert "truncated" in caught.value.reason


def test_truncated_real_photo_at_several_cuts() -> None:
    data = PHOTO.read_bytes()
    for fraction in (0.2, 0.5, 0.9, 0.99):
        with pytest.raises(InvalidImage, match="truncated"):
            decode_image(badfiles.truncated(data, fraction), "cut.jpg", LIMITS)


def test_corrupt_scan_data_fails_for_several_seeds() -> None:
    data = PHOTO.read_bytes()
    for seed in range(5):
        with pytest.raises(InvalidImage, match="corrupt"):
            decode_image(badfiles.scrambled_jpeg(data, seed), "bad.jpg", LIMITS)


def test_header_only_jpeg_is_rejected() -> None:
    data = PHOTO.read_bytes()
    header = data[: data.index(b"\xff\xda")]
    with pytest.raises(InvalidImage) as caught:
        decode_image(header, "head.jpg", LIMITS)
    assert "truncated" in caught.value.reason or "corrupt" in caught.value.reason


# ---- accepted ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_unusual_file_is_accepted_as_oriented_rgb(name: str) -> None:
    data, outcome = ACCEPTED[name]
    assert isinstance(outcome, Accept)
    info, rgb = decode_image(data, name, LIMITS)
    assert rgb.mode == "RGB"
    assert (info.width, info.height) == (outcome.width, outcome.height)
    assert rgb.size == (outcome.width, outcome.height)
    assert info.format == outcome.format
    assert info.mime == {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif"}[info.format]
    for (x, y), expected in outcome.pixels.items():
        got = rgb.getpixel((x, y))
        assert isinstance(got, tuple)
        assert close_to(got, expected), f"{name} at {(x, y)}: {got} != {expected}"


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_thumbnail_of_unusual_file_is_a_small_rgb_jpeg(name: str) -> None:
    data, _ = ACCEPTED[name]
    info, rgb = decode_image(data, name, LIMITS)
    thumb = Image.open(io.BytesIO(make_thumbnail(rgb, 16)))
    thumb.load()
    assert thumb.format == "JPEG"
    assert thumb.mode == "RGB"
    assert max(thumb.size) == min(16, max(info.width, info.height))
    # aspect kept: portrait stays portrait, landscape stays landscape
    assert (thumb.width >= thumb.height) == (info.width >= info.height)


def test_exif_rotated_thumbnail_is_portrait_with_red_on_top() -> None:
    data, _ = ACCEPTED["exif_rotated.jpg"]
    raw = Image.open(io.BytesIO(data))
    assert raw.size == (40, 20)  # stored landscape
    assert raw.getexif()[0x0112] == 6
    _info, rgb = decode_image(data, "r.jpg", LIMITS)
    thumb = Image.open(io.BytesIO(make_thumbnail(rgb, 32))).convert("RGB")
    assert thumb.size == (16, 32)
    assert close_to(thumb.getpixel((8, 4)), badfiles.RED, 12)
    assert close_to(thumb.getpixel((8, 28)), badfiles.BLUE, 12)


def test_16bit_gray_is_scaled_not_clipped_to_white() -> None:
    data, _ = ACCEPTED["gray16.png"]
    raw = Image.open(io.BytesIO(data))
    assert raw.mode.startswith("I")
    assert np.asarray(raw).max() == 65535
    _info, rgb = decode_image(data, "g.png", LIMITS)
    arr = np.asarray(rgb)
    assert (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all()
    assert not (arr == 255).all()
    assert abs(int(arr[:, 128, 0].mean()) - 128) <= 1  # mid-grey stays mid-grey
    row = arr[0, :, 0].astype(int)
    assert (np.diff(row) >= 0).all()  # the ramp stays monotonic
    assert row[0] == 0 and row[-1] == 255


def test_dark_16bit_gray_stays_dark() -> None:
    """A 16-bit picture whose samples all lie under 256 is nearly black (255/65535 = 0.4%)."""
    _info, rgb = decode_image(badfiles.gray16_png(top=255), "dark.png", LIMITS)
    assert np.asarray(rgb).max() <= 1


def test_16bit_thumbnail_is_not_white() -> None:
    data, _ = ACCEPTED["gray16.png"]
    _info, rgb = decode_image(data, "g.png", LIMITS)
    thumb = np.asarray(Image.open(io.BytesIO(make_thumbnail(rgb, 64))).convert("L"))
    assert 100 < thumb.mean() < 155


def test_animated_gif_uses_the_first_frame() -> None:
    data, _ = ACCEPTED["animated.gif"]
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 2
    _info, rgb = decode_image(data, "a.gif", LIMITS)
    assert close_to(np.asarray(rgb).reshape(-1, 3).mean(axis=0).round(), badfiles.RED, 2)


def test_real_photo_is_accepted_unchanged_in_size() -> None:
    info, rgb = decode_image(PHOTO.read_bytes(), PHOTO.name, LIMITS)
    assert (info.format, info.mime) == ("JPEG", "image/jpeg")
    assert rgb.mode == "RGB"
    assert rgb.size == (info.width, info.height)
    assert {info.width, info.height} == {384, 512}


# ---- to_rgb directly ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("img", "expected"),
    [
        (Image.new("RGBA", (4, 4), (0, 0, 0, 0)), (255, 255, 255)),
        (Image.new("RGBA", (4, 4), (0, 0, 255, 255)), (0, 0, 255)),
        (Image.new("LA", (4, 4), (0, 0)), (255, 255, 255)),
        (Image.new("LA", (4, 4), (50, 255)), (50, 50, 50)),
        (Image.new("L", (4, 4), 200), (200, 200, 200)),
        (Image.new("1", (4, 4), 1), (255, 255, 255)),
        (Image.new("CMYK", (4, 4), (0, 0, 0, 0)), (255, 255, 255)),
        (Image.new("CMYK", (4, 4), (0, 0, 0, 255)), (0, 0, 0)),
        (Image.new("I;16", (4, 4), 32896), (128, 128, 128)),
        (Image.new("I", (4, 4), 65535), (255, 255, 255)),
        (Image.new("I", (4, 4), 100), (100, 100, 100)),
        (Image.new("F", (4, 4), 64.0), (64, 64, 64)),
    ],
    ids=lambda v: getattr(v, "mode", None) or str(v),
)
def test_to_rgb_modes(img: Image.Image, expected: tuple[int, int, int]) -> None:
    rgb = to_rgb(img)
    assert rgb.mode == "RGB"
    assert rgb.size == img.size
    got = rgb.getpixel((1, 1))
    assert isinstance(got, tuple)
    assert close_to(got, expected, 1), f"{img.mode}: {got}"


def test_to_rgb_palette_with_transparency_flattens_on_white() -> None:
    pal = Image.open(io.BytesIO(badfiles.palette_png()))
    assert pal.mode == "P" and "transparency" in pal.info
    rgb = to_rgb(pal)
    assert rgb.getpixel((0, 0)) == (255, 255, 255)
    assert rgb.getpixel((15, 0)) == (255, 0, 0)


def test_to_rgb_returns_rgb_input_as_is() -> None:
    img = Image.new("RGB", (3, 3), (1, 2, 3))
    assert to_rgb(img) is img


# ---- thumbnails --------------------------------------------------------------------------------


def test_thumbnail_never_enlarges_and_keeps_aspect() -> None:
    small = Image.new("RGB", (10, 30), (9, 9, 9))
    assert Image.open(io.BytesIO(make_thumbnail(small, 256))).size == (10, 30)
    _info, rgb = decode_image(PHOTO.read_bytes(), PHOTO.name, LIMITS)
    thumb = Image.open(io.BytesIO(make_thumbnail(rgb, 128)))
    assert max(thumb.size) == 128
    ratio_in, ratio_out = rgb.width / rgb.height, thumb.width / thumb.height
    assert abs(ratio_in - ratio_out) < 0.02


def test_decode_leaves_the_bytes_alone() -> None:
    data, _ = ACCEPTED["cmyk.jpg"]
    before = bytes(data)
    decode_image(data, "c.jpg", LIMITS)
    assert data == before
    assert Image.open(io.BytesIO(data)).mode == "CMYK"  # original stays CMYK


def test_files_written_to_disk_match_the_in_memory_outcomes(tmp_path: Path) -> None:
    outcomes = badfiles.write_all(tmp_path, PHOTO)
    assert set(outcomes) == set(REJECTED) | set(ACCEPTED)
    for name, outcome in outcomes.items():
        data = (tmp_path / name).read_bytes()
        if isinstance(outcome, Reject):
            with pytest.raises(InvalidImage, match=outcome.reason):
                decode_image(data, name, LIMITS)
        else:
            info, _ = decode_image(data, name, LIMITS)
            assert (info.width, info.height) == (outcome.width, outcome.height)
