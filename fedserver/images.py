"""Pictures people upload (avatars), decoded with Pillow and written again, so that what we publish
is the picture and nothing else: no EXIF (a phone puts its GPS position and serial number there),
no XMP, comments or text chunks, nothing appended after the image data. EXIF orientation is applied
first, so the picture stays the right way up. Decoding is bounded (MAX_PIXELS) against
decompression bombs. Pillow does the decoding and encoding: hand-written image parsing of
untrusted files is how image bugs become security bugs."""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

# Pillow's format name -> (content type, file extension): what browsers show everywhere.
FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "GIF": ("image/gif", "gif"),
           "WEBP": ("image/webp", "webp")}
MAX_PIXELS = 40_000_000


class InvalidImage(ValueError):
    """Not a picture we take (message for the person)."""


@dataclass(frozen=True)
class CleanImage:
    data: bytes
    content_type: str
    extension: str
    width: int
    height: int


def clean_image(data: bytes) -> CleanImage:
    """The picture in data written again without metadata; raises InvalidImage."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(FORMATS)) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise InvalidImage(f"the picture has more than {MAX_PIXELS // 1_000_000} million pixels")
                return _rewrite(image)
    except InvalidImage:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidImage("the picture must be a PNG, JPEG, GIF or WebP image") from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise InvalidImage("the picture could not be read (damaged or cut short?)") from None


def _rewrite(image: Image.Image) -> CleanImage:
    image_format = image.format or ""
    content_type, extension = FORMATS[image_format]
    icc = image.info.get("icc_profile")  # colours, not personal: kept so the picture looks the same
    out = io.BytesIO()
    if getattr(image, "n_frames", 1) > 1:
        # Animated GIF/WebP: every frame with its timing; frames carry no EXIF of their own.
        timing = {key: image.info[key] for key in ("duration", "loop") if key in image.info}
        image.info = {}
        image.save(out, format=image_format, save_all=True, **timing, **({"icc_profile": icc} if icc else {}))
        width, height = image.size
    else:
        image.load()
        upright = ImageOps.exif_transpose(image)
        upright.info = {}  # what a plain save would carry over: comments, text chunks, dpi
        options: dict = {"icc_profile": icc} if icc else {}
        if image_format == "JPEG":
            options["quality"] = 90
        upright.save(out, format=image_format, **options)
        width, height = upright.size
    return CleanImage(out.getvalue(), content_type, extension, width, height)


def write_file(path: Path, data: bytes) -> None:
    """Write an upload under its final name only once complete (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".part")
    partial.write_bytes(data)
    partial.replace(path)
