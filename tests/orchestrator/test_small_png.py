"""The PNG writer for small pictures: whole PNGs of exactly the pixels given, used by the mock
and by post-processing where Pillow's writer would cost more than the picture."""

from __future__ import annotations

import io
import random
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

from orchestrator import imaging, small_png
from orchestrator.imaging import check_image, inspect_image, postprocess
from orchestrator.providers import mock_drawing
from orchestrator.spec import OutputSpec


def noise(mode: str, size: tuple[int, int]) -> Image.Image:
    rng = random.Random(f"{mode}{size}")
    return Image.frombytes(mode, size, rng.randbytes(size[0] * size[1] * len(mode)))


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
@pytest.mark.parametrize("size", [(1, 1), (3, 7), (16, 16), (64, 64), (1, 4096)])
def test_a_small_picture_is_a_whole_png_of_its_pixels(mode: str, size: tuple[int, int]) -> None:
    picture = noise(mode, size)
    assert small_png.writes(picture)
    data = small_png.small_png(picture)
    info = check_image(data)  # the checksums and the end, as a paid image is checked
    assert (info.format, info.width, info.height) == ("png", *size)
    inspect_image(data)
    with Image.open(io.BytesIO(data)) as read:
        assert (read.mode, read.size) == (mode, size)
        assert read.tobytes() == picture.tobytes()


@pytest.mark.parametrize(
    ("mode", "size"), [("RGB", (65, 64)), ("L", (8, 8)), ("P", (8, 8)), ("LA", (8, 8))]
)
def test_larger_pictures_and_other_modes_are_left_to_pillow(
    mode: str, size: tuple[int, int]
) -> None:
    assert not small_png.writes(Image.new(mode, size))


def test_a_picture_with_a_transparent_colour_keeps_it(tmp_path: Path) -> None:
    """An RGB PNG may mark one colour transparent (tRNS): Pillow writes the mark again."""
    raw = tmp_path / "raw.png"
    noise("RGB", (8, 8)).save(raw, transparency=(1, 2, 3))
    with Image.open(raw) as read:
        read.load()
        assert not small_png.writes(read)
    done = postprocess(raw, tmp_path / "out.png", tmp_path / "thumb.webp", OutputSpec(format="png"))
    with Image.open(done.image_path) as out:
        assert out.mode == "RGBA" or out.info.get("transparency") == (1, 2, 3)


def watch_writer(module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """What `module`'s `small_png` writes from now on, in order."""
    written: list[bytes] = []
    real = small_png.small_png

    def watched(image: Image.Image) -> bytes:
        written.append(real(image))
        return written[-1]

    monkeypatch.setattr(module, "small_png", watched)
    return written


def test_the_mock_writes_a_small_picture_with_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small pictures are drawn on the event loop: Pillow's PNG writer cost more than drawing."""
    written = watch_writer(mock_drawing, monkeypatch)
    small = mock_drawing.draw_png(seed="s", size=(16, 16), prompt="p", label="a", reference=None)
    assert written == [small]
    large = mock_drawing.draw_png(seed="s", size=(80, 80), prompt="p", label="a", reference=None)
    assert len(written) == 1 and inspect_image(large).width == 80


def test_post_processing_writes_a_small_png_output_with_it_and_keeps_the_pixels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = watch_writer(imaging, monkeypatch)
    picture = noise("RGB", (16, 12))
    raw = tmp_path / "raw.png"
    picture.save(raw)
    done = postprocess(raw, tmp_path / "out.png", tmp_path / "thumb.webp", OutputSpec(format="png"))
    assert written == [(tmp_path / "out.png").read_bytes()]
    with Image.open(done.image_path) as out:
        assert out.tobytes() == picture.tobytes()
    assert (tmp_path / "thumb.webp").stat().st_size > 0


def test_an_image_with_a_colour_profile_keeps_it(tmp_path: Path) -> None:
    """The small writer writes no metadata: an image with a profile goes to Pillow's."""
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    raw = tmp_path / "raw.png"
    noise("RGB", (8, 8)).save(raw, icc_profile=profile)
    done = postprocess(raw, tmp_path / "out.png", tmp_path / "thumb.webp", OutputSpec(format="png"))
    with Image.open(done.image_path) as out:
        assert out.info.get("icc_profile") == profile
