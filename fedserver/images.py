"""Pictures people upload (avatars, post pictures), decoded with Pillow and written again, so that
what we publish is the picture and nothing else: no EXIF (a phone puts its GPS position and serial
number there), no XMP, comments or text chunks, nothing appended after the image data. EXIF
orientation is applied first, so the picture stays the right way up. Pillow does the decoding and
encoding: hand-written image parsing of untrusted files is how image bugs become security bugs.

The work is bounded before anything is decoded: the header (Pillow opens lazily) gives the canvas
and the frame count, and a canvas over MAX_SIDE, more than MAX_FRAMES frames, or more than
max_pixels pixels summed over all frames is refused. Decoding cost grows with the pixels of every
frame, not with the file's size: a 2 KB GIF may declare 60 frames of 3000x3000, 540 million pixels
and half a minute of CPU. The server never calls clean_image itself: fedserver/image_worker.py runs
it in a separate process with CPU, memory and wall-clock limits."""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

# Pillow's format name -> (content type, file extension): what browsers show everywhere.
FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "GIF": ("image/gif", "gif"),
           "WEBP": ("image/webp", "webp")}
# A third of Pillow's decompression-bomb threshold (89 million): a 32-megapixel photo (6900x4600),
# or an animation of 400x400 over 200 frames. Decoding that many pixels costs about 2 s of CPU at
# most (GIF frames, the dearest per pixel, cost ~55 ns each on a 2026 laptop core).
MAX_PIXELS = 32_000_000
# WebP's own limit; no browser shows a wider picture usefully.
MAX_SIDE = 16_384
# Each frame costs Python-level work on top of its pixels, however small it is.
MAX_FRAMES = 1_000


class InvalidImage(ValueError):
    """Not a picture we take (message for the person)."""


@dataclass(frozen=True)
class CleanImage:
    data: bytes
    content_type: str
    extension: str
    width: int
    height: int


def clean_image(data: bytes, max_pixels: int = MAX_PIXELS) -> CleanImage:
    """The picture in data written again without metadata; raises InvalidImage. max_pixels bounds
    width x height x frames."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(FORMATS)) as image:
                frames = _check_bounds(image, max_pixels)
                return _rewrite_animation(image, frames, max_pixels) if frames > 1 else _rewrite(image)
    except InvalidImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own check, on opening and when a GIF frame grows the canvas.
        raise InvalidImage(f"the picture is too large: at most {_millions(max_pixels)} million pixels are taken") from None
    except UnidentifiedImageError:
        raise InvalidImage("the picture must be a PNG, JPEG, GIF or WebP image") from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise InvalidImage("the picture could not be read (damaged or cut short?)") from None


def _check_bounds(image: Image.Image, max_pixels: int) -> int:
    """The frame count, once the header's canvas and frames are within bounds (nothing decoded).
    A GIF's canvas is already grown to its first frame here: Pillow sizes it on opening."""
    width, height = image.size
    if width > MAX_SIDE or height > MAX_SIDE:
        raise InvalidImage(f"the picture may be at most {MAX_SIDE} pixels wide and high, this one is {width}x{height}")
    _check_pixels(width * height, max_pixels)
    # Counting frames reads the file's structure, not its pixels: for a GIF, Pillow skips over
    # each frame's data blocks (0.7 s for an 8 MB file of 490,000 empty frames); WebP and APNG
    # declare the count in a header.
    frames = getattr(image, "n_frames", 1)
    if frames > MAX_FRAMES:
        raise InvalidImage(f"an animation may have at most {MAX_FRAMES} frames, this one has {frames}")
    _check_pixels(width * height * frames, max_pixels, frames)
    return frames


def _check_pixels(pixels: int, max_pixels: int, frames: int = 1, *, counted_so_far: bool = False) -> None:
    if pixels > max_pixels:
        over = f" over its {frames} frames" if frames > 1 else ""
        has = "more than that" if counted_so_far else f"{_millions(pixels)} million"
        raise InvalidImage(f"the picture is too large: at most {_millions(max_pixels)} million pixels are taken, "
                           f"this one has {has}{over}")


def _millions(pixels: int) -> str:
    return f"{pixels / 1_000_000:.3g}"


def _rewrite(image: Image.Image) -> CleanImage:
    content_type, extension = FORMATS[image.format or ""]
    icc = image.info.get("icc_profile")  # colours, not personal: kept so the picture looks the same
    image.load()
    upright = ImageOps.exif_transpose(image)
    upright.info = {}  # what a plain save would carry over: comments, text chunks, dpi
    options: dict = {"icc_profile": icc} if icc else {}
    if image.format == "JPEG":
        options["quality"] = 90
    out = io.BytesIO()
    upright.save(out, format=image.format, **options)
    return CleanImage(out.getvalue(), content_type, extension, upright.width, upright.height)


def _rewrite_animation(image: Image.Image, frames: int, max_pixels: int) -> CleanImage:
    """Animated GIF/WebP/PNG: kept animated (people choose moving avatars on purpose), every frame
    with its own timing. The frames are decoded one by one, counting the pixels of the canvas as
    it is (a GIF frame may grow it past the header's size), so the bound holds for what is
    actually decoded."""
    image_format = image.format or ""
    content_type, extension = FORMATS[image_format]
    icc = image.info.get("icc_profile")
    loop = image.info.get("loop")
    decoded: list[Image.Image] = []
    durations: list[int] = []
    spent = 0
    for index in range(frames):
        image.seek(index)  # sizes the canvas for this frame; decoding waits for copy()
        spent += image.width * image.height
        _check_pixels(spent, max_pixels, frames, counted_so_far=True)
        frame = image.copy()
        durations.append(int(image.info.get("duration", 0) or 0))
        # Frames carry the same kinds of metadata as whole files (comments, XMP, EXIF in WebP);
        # only the transparent palette index is part of the picture.
        frame.info = {key: frame.info[key] for key in ("transparency",) if key in frame.info}
        decoded.append(frame)
    options: dict = {"save_all": True, "append_images": decoded[1:], "duration": durations}
    if loop is not None:
        options["loop"] = loop
    if icc:
        options["icc_profile"] = icc
    out = io.BytesIO()
    decoded[0].save(out, format=image_format, **options)
    width, height = decoded[0].size
    return CleanImage(out.getvalue(), content_type, extension, width, height)


