"""Image validation and post-processing with Pillow.

Provider bytes are hostile until proven otherwise: `inspect_image` bounds their size, reads the
header and refuses decompression bombs before any pixel is decoded, then decodes them fully to
catch truncation. `postprocess` turns a raw image into the processed file and a WebP thumbnail.

Everything here is synchronous and CPU-bound; callers use `asyncio.to_thread`. Worker
processes import it too (see `workers.PRELOAD`), so it imports only Pillow and the standard
library: no models (pydantic), no spec.
"""

from __future__ import annotations

import io
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from PIL import Image, ImageOps

# The formats read and written here, loaded now: a format Pillow has not loaded makes it load
# every format it knows (43 modules, some 30 ms with the GIL held) at the first image, which
# stalled the event loop as a run began, and each worker process as it stored its first image.
from PIL import JpegImagePlugin, PngImagePlugin, WebPImagePlugin  # noqa: F401  # isort: skip

from .errors import BadResponseError
from .small_png import small_png, writes
from .storage import atomic_write

__all__ = [
    "MAX_IMAGE_BYTES",
    "MAX_PIXELS",
    "ImageInfo",
    "Output",
    "PlainOutput",
    "Processed",
    "check_image",
    "ends_whole",
    "inspect_image",
    "load_image",
    "postprocess",
    "process_bytes",
    "sniff_mime",
]

MAX_IMAGE_BYTES = 50 * 1024 * 1024
MAX_PIXELS = 4096 * 4096
"""The largest image accepted, from a provider or as a reference: image APIs make at most about
4K x 4K (16.8 million pixels, 64 MB decoded as RGBA). A 49-megapixel answer would take the
process near a gigabyte to decode; it is refused as a bad response before it is decoded."""

# Pillow's format name -> (our name, mime type, extension). MPO is a JPEG with extra frames
# (many phone cameras write it); Pillow's JPEG reader returns it as its own format.
_FORMATS: dict[str, tuple[str, str, str]] = {
    "PNG": ("png", "image/png", "png"),
    "JPEG": ("jpeg", "image/jpeg", "jpg"),
    "MPO": ("jpeg", "image/jpeg", "jpg"),
    "WEBP": ("webp", "image/webp", "webp"),
}
_OPENERS = ("PNG", "JPEG", "WEBP")
_RESAMPLE = Image.Resampling.LANCZOS
_THUMB_QUALITY = 75
_THUMB_METHOD = 2
"""libwebp's effort for a thumbnail (0-6; Pillow's default is 4): measured here, a 256 px
thumbnail takes 1.3 ms instead of 3.0 and is 6 % larger."""

# `warnings.catch_warnings` swaps process-wide state; the lock keeps our threads from
# interleaving it. Only the header read runs under it, so decoding stays parallel.
_OPEN_LOCK = threading.Lock()


class Output(Protocol):
    """What post-processing reads of a job's output: an `OutputSpec`, or its `PlainOutput`."""

    @property
    def format(self) -> str: ...
    @property
    def quality(self) -> int: ...
    @property
    def max_size(self) -> str | None: ...
    @property
    def fit(self) -> str: ...
    @property
    def thumbnail_px(self) -> int: ...


@dataclass(frozen=True, slots=True)
class PlainOutput:
    """An `OutputSpec`'s fields as plain values: what a worker process is sent, so that it
    does not import the spec's models (a fifth of a second) to read them."""

    format: str
    quality: int
    max_size: str | None
    fit: str
    thumbnail_px: int

    @classmethod
    def of(cls, output: Output) -> PlainOutput:
        return cls(output.format, output.quality, output.max_size, output.fit, output.thumbnail_px)

    def fields(self) -> tuple[str, int, str | None, str, int]:
        """The fields in their order (`dataclasses.astuple` copies each one: 4 us)."""
        return self.format, self.quality, self.max_size, self.fit, self.thumbnail_px


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageInfo:
    """What a valid image is."""

    format: str
    """`png`, `jpeg` or `webp`."""
    mime_type: str
    ext: str
    """File extension without the dot: `png`, `jpg` or `webp`."""
    width: int
    height: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Processed:
    """Where post-processing wrote its files, and the processed image's size."""

    image_path: Path
    thumb_path: Path
    width: int
    height: int


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Read the header only, refusing bombs and unknown formats before pixels are decoded."""
    try:
        with _OPEN_LOCK, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=_OPENERS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadResponseError("image is too large to decode safely (decompression bomb)") from None
    except Exception as error:
        raise BadResponseError(
            f"bytes are not a PNG, JPEG or WebP image ({error.__class__.__name__})"
        ) from None
    if image.format not in _FORMATS:
        image.close()
        raise BadResponseError(f"image format {image.format} is not PNG, JPEG or WebP")
    width, height = image.size
    if width < 1 or height < 1 or width * height > max_pixels:
        image.close()
        raise BadResponseError(
            f"image claims {width}x{height} pixels, over the limit of {max_pixels} "
            "(decompression bomb?)"
        )
    return image


def load_image(data: bytes, *, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode `data` fully (PNG, JPEG or WebP), or raise `BadResponseError`."""
    image = _open(data, max_pixels)
    try:
        image.load()
    except Exception as error:
        image.close()
        raise BadResponseError(
            f"image data is truncated or corrupt ({error.__class__.__name__}: {error})"
        ) from None
    return image


def _check_size(data: bytes, max_bytes: int) -> None:
    if not data:
        raise BadResponseError("image is empty (0 bytes)")
    if len(data) > max_bytes:
        raise BadResponseError(f"image is {len(data)} bytes, over the limit of {max_bytes}")


def inspect_image(
    data: bytes, *, max_bytes: int = MAX_IMAGE_BYTES, max_pixels: int = MAX_PIXELS
) -> ImageInfo:
    """Validate provider bytes as one PNG, JPEG or WebP image; raise `BadResponseError` if not."""
    info = _verified(data, max_bytes, max_pixels)
    with load_image(data, max_pixels=max_pixels):
        pass  # decoded whole: the pixels are there
    return info


def check_image(
    data: bytes, *, max_bytes: int = MAX_IMAGE_BYTES, max_pixels: int = MAX_PIXELS
) -> ImageInfo:
    """`inspect_image` without decoding the pixels: size, header, the format's own checks
    (PNG chunk checksums up to IEND) and its end (a JPEG's end-of-image marker, a WebP's RIFF
    length), so a truncated answer is still refused. It takes a fraction of a millisecond;
    decoding a 1024x1024 PNG takes about 12, which the slot would wait for. What is left for
    post-processing, which decodes anyway, is pixel data that passes every check and still
    cannot be decoded."""
    info = _verified(data, max_bytes, max_pixels)
    if not ends_whole(data, info.mime_type):
        name = info.format.upper()
        raise BadResponseError(f"{name} image data is truncated (it does not end as a {name} ends)")
    return info


def _verified(data: bytes, max_bytes: int, max_pixels: int) -> ImageInfo:
    """What the header says, once the size, the header and the format's own checks pass."""
    _check_size(data, max_bytes)
    with _open(data, max_pixels) as header:
        fmt = str(header.format)
        width, height = header.size
        try:
            header.verify()
        except Exception as error:
            raise BadResponseError(
                f"{fmt} image fails verification ({error.__class__.__name__}: {error})"
            ) from None
    name, mime_type, ext = _FORMATS[fmt]
    return ImageInfo(format=name, mime_type=mime_type, ext=ext, width=width, height=height)


def sniff_mime(data: bytes) -> str | None:
    """The image type the first bytes announce: png, jpeg, webp or gif; None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


def ends_whole(data: bytes, mime: str) -> bool:
    """Whether `data` ends the way a whole `mime` image ends (PNG's IEND chunk, JPEG's
    end-of-image marker, WebP's RIFF length, GIF's trailer): a truncated answer does not."""
    if mime == "image/png":
        return data.rstrip(b"\x00").endswith(b"IEND\xaeB`\x82")
    if mime == "image/jpeg":
        return data.rstrip(b"\x00").endswith(b"\xff\xd9")
    if mime == "image/webp":
        return len(data) >= 12 and int.from_bytes(data[4:8], "little") + 8 <= len(data)
    return data.rstrip(b"\x00").endswith(b";")


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in {"RGBA", "LA", "PA", "RGBa", "La"} or (
        image.mode == "P" and "transparency" in image.info
    )


def _to_output_mode(image: Image.Image, fmt: str) -> Image.Image:
    """RGB, or RGBA where the format keeps alpha; JPEG gets transparency flattened on white."""
    if not _has_alpha(image):
        return image if image.mode == "RGB" else image.convert("RGB")
    rgba = image.convert("RGBA")
    if fmt != "jpeg":
        return rgba
    flat = Image.new("RGB", rgba.size, "white")
    flat.paste(rgba, mask=rgba.getchannel("A"))
    return flat


def _parse_box(box: str) -> tuple[int, int]:
    width, _, height = box.partition("x")
    return int(width), int(height)


def _fit(image: Image.Image, output: Output) -> Image.Image:
    """`cover`: exactly the box, centre-cropped. `contain`: inside the box, never enlarged."""
    if output.max_size is None:
        return image
    box = _parse_box(output.max_size)
    if output.fit == "cover":
        return ImageOps.fit(image, box, method=_RESAMPLE, centering=(0.5, 0.5))
    if image.width <= box[0] and image.height <= box[1]:
        return image
    return ImageOps.contain(image, box, method=_RESAMPLE)


def _encode(image: Image.Image, fmt: str, quality: int, icc: bytes | None) -> bytes:
    options: dict[str, object] = {"icc_profile": icc} if icc else {}
    if fmt == "jpeg":
        options.update(quality=quality, optimize=True, progressive=True)
    elif fmt == "webp":
        options.update(quality=quality)
    elif not icc and writes(image):
        return small_png(image)
    else:
        options.update(optimize=True)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt.upper(), **options)
    return buffer.getvalue()


def _thumbnail(image: Image.Image, longest: int) -> bytes:
    """A WebP whose longest side is `longest` (smaller images are not enlarged)."""
    thumb = image.copy()
    thumb.thumbnail((longest, longest), _RESAMPLE)
    buffer = io.BytesIO()
    thumb.save(buffer, format="WEBP", quality=_THUMB_QUALITY, method=_THUMB_METHOD)
    return buffer.getvalue()


def postprocess(
    raw_path: Path,
    image_path: Path,
    thumb_path: Path,
    output: Output,
    root: Path | None = None,
) -> Processed:
    """Write the processed image and its thumbnail from the raw file, which is left untouched.

    Raises `BadResponseError` if the raw file is not a decodable image within the limits,
    `PermissionError` if a folder below `root` (the workspace) is a symbolic link.
    """
    return process_bytes(raw_path.read_bytes(), image_path, thumb_path, output, root)


def process_bytes(
    data: bytes,
    image_path: Path,
    thumb_path: Path,
    output: Output,
    root: Path | None = None,
) -> Processed:
    """`postprocess` for a raw image already in memory (the bytes just written to `raw/`)."""
    _check_size(data, MAX_IMAGE_BYTES)
    with load_image(data) as raw:
        icc = raw.info.get("icc_profile") if raw.mode in {"RGB", "RGBA"} else None
        upright = ImageOps.exif_transpose(raw)
    image = _fit(_to_output_mode(upright, output.format), output)
    # both can be made again from the raw file, which is durable: no fsync (see atomic_write)
    encoded = _encode(image, output.format, output.quality, icc)
    atomic_write(image_path, encoded, durable=False, root=root)
    atomic_write(thumb_path, _thumbnail(image, output.thumbnail_px), durable=False, root=root)
    return Processed(
        image_path=image_path, thumb_path=thumb_path, width=image.width, height=image.height
    )
