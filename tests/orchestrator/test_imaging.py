"""Image validation and post-processing."""

from __future__ import annotations

import io
import random
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image

from orchestrator.errors import BadResponseError
from orchestrator.imaging import ImageInfo, check_image, inspect_image, postprocess
from orchestrator.spec import OutputSpec


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def noise(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """Random pixels, so the compressed data is large and truncation hits pixel data."""
    rng = random.Random(7)
    return Image.frombytes(mode, size, rng.randbytes(size[0] * size[1] * len(mode)))


def with_ihdr_size(png: bytes, width: int, height: int) -> bytes:
    """`png` with its header claiming another size (the CRC fixed, so only the size lies)."""
    ihdr = bytearray(png[12:29])  # chunk type + 13 data bytes
    ihdr[4:12] = struct.pack(">II", width, height)
    crc = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return png[:12] + bytes(ihdr) + crc + png[33:]


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("PNG", ImageInfo(format="png", mime_type="image/png", ext="png", width=30, height=20)),
        ("JPEG", ImageInfo(format="jpeg", mime_type="image/jpeg", ext="jpg", width=30, height=20)),
        ("WEBP", ImageInfo(format="webp", mime_type="image/webp", ext="webp", width=30, height=20)),
    ],
)
def test_accepts_png_jpeg_webp(fmt: str, expected: ImageInfo) -> None:
    assert inspect_image(encode(Image.new("RGB", (30, 20), "red"), fmt)) == expected


def test_accepts_mpo_as_jpeg() -> None:
    frames = [Image.new("RGB", (30, 20), "red"), Image.new("RGB", (30, 20), "blue")]
    mpo = encode(frames[0], "MPO", save_all=True, append_images=frames[1:])
    assert inspect_image(mpo).format == "jpeg"


def test_rejects_other_formats() -> None:
    gif = encode(Image.new("P", (10, 10)), "GIF")
    with pytest.raises(BadResponseError, match="not a PNG, JPEG or WebP"):
        inspect_image(gif)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_rejects_truncated(fmt: str) -> None:
    data = encode(noise((64, 64)), fmt)
    with pytest.raises(BadResponseError):
        inspect_image(data[: len(data) * 2 // 3])


def corrupt_idat_with_good_crc(png: bytes) -> bytes:
    """`png` with its pixel data scrambled and its IDAT checksum made to match: every check but
    decoding passes."""
    start = png.index(b"IDAT") - 4
    length = struct.unpack(">I", png[start : start + 4])[0]
    body = bytearray(png[start + 8 : start + 8 + length])
    body[len(body) // 2 :] = bytes(len(body) - len(body) // 2)  # zeros: no valid deflate
    crc = struct.pack(">I", zlib.crc32(b"IDAT" + bytes(body)))
    return png[: start + 8] + bytes(body) + crc + png[start + 12 + length :]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_check_image_agrees_with_inspect_image_on_whole_images(fmt: str) -> None:
    data = encode(noise((64, 48)), fmt)
    assert check_image(data) == inspect_image(data)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9, 0.999])
def test_check_image_refuses_truncated_images_without_decoding(fmt: str, keep: float) -> None:
    data = encode(noise((64, 64)), fmt)
    with pytest.raises(BadResponseError, match=r"truncated|verification|not a PNG"):
        check_image(data[: int(len(data) * keep)])


def test_check_image_accepts_a_jpeg_padded_after_its_end() -> None:
    data = encode(noise((32, 32)), "JPEG")
    assert check_image(data + b"\0" * 16).format == "jpeg"


def test_check_image_leaves_undecodable_pixels_to_post_processing() -> None:
    """The one thing `check_image` does not see: pixel data that passes every checksum but
    cannot be decoded. `inspect_image`, which decodes, refuses it."""
    data = corrupt_idat_with_good_crc(encode(noise((64, 64)), "PNG"))
    assert check_image(data).width == 64
    with pytest.raises(BadResponseError, match="truncated or corrupt"):
        inspect_image(data)


def test_rejects_corrupt_png_data() -> None:
    data = bytearray(encode(noise((16, 16)), "PNG"))
    data[-20] ^= 0xFF  # inside the IDAT chunk's data
    with pytest.raises(BadResponseError):
        inspect_image(bytes(data))


def test_rejects_png_with_bad_checksum() -> None:
    # The pixels decode fine; only verify() notices the IDAT chunk's CRC is wrong.
    data = bytearray(encode(Image.new("RGB", (16, 16), "red"), "PNG"))
    data[-13] ^= 0xFF  # last byte of the IDAT CRC (IEND is the final 12 bytes)
    with pytest.raises(BadResponseError, match="verification"):
        inspect_image(bytes(data))


def test_rejects_random_bytes_and_empty() -> None:
    with pytest.raises(BadResponseError, match="not a PNG"):
        inspect_image(random.Random(1).randbytes(4096))
    with pytest.raises(BadResponseError, match="empty"):
        inspect_image(b"")


def test_rejects_too_many_bytes() -> None:
    data = encode(Image.new("RGB", (30, 20)), "PNG")
    with pytest.raises(BadResponseError, match="over the limit"):
        inspect_image(data, max_bytes=len(data) - 1)
    assert inspect_image(data, max_bytes=len(data)).width == 30


def test_rejects_bomb_beyond_pillow_limit() -> None:
    bomb = with_ihdr_size(encode(Image.new("1", (8, 8)), "PNG"), 20000, 20000)
    with pytest.raises(BadResponseError, match="decompression bomb"):
        inspect_image(bomb)


def test_rejects_bomb_in_pillow_warning_range() -> None:
    # 9500x9500 is over Pillow's warning limit (~89M pixels) but under its error limit.
    bomb = with_ihdr_size(encode(Image.new("1", (8, 8)), "PNG"), 9500, 9500)
    with pytest.raises(BadResponseError, match="decompression bomb"):
        inspect_image(bomb)


def test_refuses_by_header_before_decoding() -> None:
    # The pixel data is for 8x8, so a decode would fail differently: the header check comes first.
    bomb = with_ihdr_size(encode(Image.new("1", (8, 8)), "PNG"), 8000, 8000)
    with pytest.raises(BadResponseError, match="claims 8000x8000"):
        inspect_image(bomb)


def test_max_pixels_is_a_parameter() -> None:
    data = encode(Image.new("RGB", (100, 100)), "PNG")
    with pytest.raises(BadResponseError, match="claims 100x100"):
        inspect_image(data, max_pixels=9_999)
    assert inspect_image(data, max_pixels=10_000).height == 100


def run(tmp_path: Path, raw: bytes, **output: object) -> tuple[Image.Image, Image.Image]:
    raw_path = tmp_path / "raw" / "item.png"
    raw_path.parent.mkdir(exist_ok=True)
    raw_path.write_bytes(raw)
    spec = OutputSpec.model_validate(output)
    done = postprocess(raw_path, tmp_path / "out" / "item.img", tmp_path / "t" / "item.webp", spec)
    assert raw_path.read_bytes() == raw, "the raw file must stay untouched"
    image = Image.open(io.BytesIO(done.image_path.read_bytes()))
    thumb = Image.open(io.BytesIO(done.thumb_path.read_bytes()))
    assert (done.width, done.height) == image.size
    return image, thumb


@pytest.mark.parametrize(
    ("source", "fit", "expected"),
    [
        ((400, 200), "cover", (100, 100)),
        ((400, 200), "contain", (100, 50)),
        ((50, 20), "cover", (100, 100)),
        ((50, 20), "contain", (50, 20)),
        ((120, 300), "contain", (40, 100)),
    ],
)
def test_fit(tmp_path: Path, source: tuple[int, int], fit: str, expected: tuple[int, int]) -> None:
    raw = encode(Image.new("RGB", source, "blue"), "PNG")
    image, _ = run(tmp_path, raw, max_size="100x100", fit=fit, format="png")
    assert image.size == expected


def test_no_box_keeps_size(tmp_path: Path) -> None:
    image, _ = run(tmp_path, encode(Image.new("RGB", (123, 45)), "PNG"), format="png")
    assert image.size == (123, 45)


def test_cover_crops_the_centre(tmp_path: Path) -> None:
    source = Image.new("RGB", (300, 100), "red")
    source.paste((0, 0, 255), (100, 0, 200, 100))  # a blue middle third
    image, _ = run(tmp_path, encode(source, "PNG"), max_size="50x50", fit="cover", format="png")
    assert image.size == (50, 50)
    # Resampling may blend the outermost pixels; everything inside is the blue middle.
    inner = image.convert("RGB").crop((3, 3, 47, 47))
    assert inner.getcolors() == [(44 * 44, (0, 0, 255))]


@pytest.mark.parametrize(
    ("fmt", "pillow_name"), [("jpeg", "JPEG"), ("png", "PNG"), ("webp", "WEBP")]
)
def test_output_formats(tmp_path: Path, fmt: str, pillow_name: str) -> None:
    image, thumb = run(tmp_path, encode(noise((80, 60)), "PNG"), format=fmt, quality=70)
    assert image.format == pillow_name
    image.load()
    assert thumb.format == "WEBP"


def close_to(pixel: object, expected: tuple[int, ...]) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(a - b) <= 8 for a, b in zip(pixel, expected, strict=True))


def test_rgba_to_jpeg_flattens_on_white(tmp_path: Path) -> None:
    source = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    source.paste((255, 0, 0, 255), (0, 0, 20, 40))
    image, _ = run(tmp_path, encode(source, "PNG"), format="jpeg", quality=95)
    assert image.mode == "RGB"
    assert close_to(image.getpixel((35, 20)), (255, 255, 255))
    assert close_to(image.getpixel((5, 20)), (255, 0, 0))


def test_rgba_to_png_keeps_alpha(tmp_path: Path) -> None:
    source = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    image, _ = run(tmp_path, encode(source, "PNG"), format="png")
    assert image.mode == "RGBA"
    assert image.getpixel((1, 1)) == (0, 0, 0, 0)


@pytest.mark.parametrize(("source", "expected"), [((400, 200), (64, 32)), ((90, 300), (19, 64))])
def test_thumbnail_longest_side(
    tmp_path: Path, source: tuple[int, int], expected: tuple[int, int]
) -> None:
    _, thumb = run(tmp_path, encode(Image.new("RGB", source), "PNG"), thumbnail_px=64)
    assert thumb.size == expected
    assert max(thumb.size) == 64


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    raw = encode(Image.new("RGB", (40, 20)), "JPEG", exif=exif.tobytes())
    image, _ = run(tmp_path, raw, format="png")
    assert image.size == (20, 40)


def test_corrupt_raw_raises_bad_response(tmp_path: Path) -> None:
    with pytest.raises(BadResponseError):
        run(tmp_path, b"\x89PNG\r\n\x1a\nnot really")


def test_leaves_no_temp_files(tmp_path: Path) -> None:
    run(tmp_path, encode(Image.new("RGB", (50, 50)), "PNG"))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["item.img"]
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["item.webp"]


def test_an_image_larger_than_any_image_api_makes_is_refused_before_decoding() -> None:
    import io

    from PIL import Image

    from orchestrator.errors import BadResponseError
    from orchestrator.imaging import MAX_PIXELS

    buffer = io.BytesIO()
    Image.new("L", (7000, 7000)).save(buffer, "PNG")  # 49 megapixels, a small file
    with pytest.raises(BadResponseError):
        inspect_image(buffer.getvalue())
    assert MAX_PIXELS == 4096 * 4096
    buffer = io.BytesIO()
    Image.new("L", (4096, 4096)).save(buffer, "PNG")
    assert inspect_image(buffer.getvalue()).width == 4096


def test_checking_and_processing_images_loads_only_their_formats(tmp_path: Path) -> None:
    """Pillow loads every format it knows (43 modules, some 30 ms with the GIL held) the first
    time it meets one it has not loaded; WebP was one. That stalled the event loop as a run
    began, and each store worker at its first image."""
    script = f"""
import io, sys
from pathlib import Path
from PIL import Image
from orchestrator.imaging import PlainOutput, check_image, process_bytes
buffer = io.BytesIO()
Image.new("RGB", (16, 16), "red").save(buffer, "PNG")
check_image(buffer.getvalue())
out = Path({str(tmp_path)!r})
process_bytes(buffer.getvalue(), out / "a.jpg", out / "a.webp", PlainOutput("jpeg", 80, None,
    "cover", 256))
print(len(Image.SAVE), "WEBP" in Image.SAVE, "PIL.TiffImagePlugin" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "a.webp").stat().st_size > 0
    formats, webp, tiff = done.stdout.split()
    assert int(formats) < 15 and webp == "True"  # what it uses, not all Pillow knows
    assert tiff == "False"
