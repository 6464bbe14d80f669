"""Thumbnails and blurhash placeholders of pictures already cleaned by fedserver/images.py, made in
the image worker's child process (fedserver/image_worker.py) like the cleaning itself: they decode
the picture again, which is CPU work that must not run on the server's event loop.

The thumbnail is a still WebP (first frame) no wider or higher than the asked side; the blurhash
(https://blurha.sh, what Mastodon sends as an attachment's `blurhash`) is computed from a 32 px copy;
the blur picture is that blurhash decoded back to a 32 px PNG, so a page can show a sensitive
picture's colours behind a click without any script."""
from __future__ import annotations

import io
from dataclasses import dataclass

import blurhash
from PIL import Image

# Blurhash components (Mastodon uses 4x4); the picture is shrunk first, the cost is in its pixels.
BLURHASH_X = BLURHASH_Y = 4
BLURHASH_SOURCE_SIDE = 32
BLUR_PICTURE_SIDE = 32


@dataclass(frozen=True)
class Preview:
    data: bytes  # WebP
    width: int
    height: int
    blurhash: str
    blur_png: bytes


def make_preview(clean_data: bytes, side: int) -> Preview:
    """The thumbnail, blurhash and blur picture of a cleaned picture (raises what Pillow raises)."""
    with Image.open(io.BytesIO(clean_data)) as image:
        image.seek(0)
        image.draft("RGB", (side, side))  # JPEG: decode at a reduced scale when it can
        frame = image.convert("RGBA" if _has_alpha(image) else "RGB")
    thumb = frame.copy()
    thumb.thumbnail((side, side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    thumb.save(out, format="WEBP", quality=80, method=4)
    small = frame.convert("RGB")
    small.thumbnail((BLURHASH_SOURCE_SIDE, BLURHASH_SOURCE_SIDE), Image.Resampling.BILINEAR)
    rows = [[list(small.getpixel((x, y))) for x in range(small.width)] for y in range(small.height)]
    hash_ = blurhash.encode(rows, components_x=BLURHASH_X, components_y=BLURHASH_Y)
    return Preview(out.getvalue(), thumb.width, thumb.height, hash_, blur_picture(hash_, small.width, small.height))


def blur_picture(hash_: str, width: int, height: int) -> bytes:
    """The blurhash drawn as a small PNG with the picture's proportions."""
    scale = BLUR_PICTURE_SIDE / max(width, height, 1)
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    pixels = blurhash.decode(hash_, w, h)
    image = Image.new("RGB", (w, h))
    image.putdata([tuple(int(c) for c in pixel[:3]) for row in pixels for pixel in row])
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
