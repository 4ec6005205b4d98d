"""Decoding and resizing single images with Pillow, the same way for every source."""

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
# Pillow's ways to say "bad file"; an image of more than twice Image.MAX_IMAGE_PIXELS (about 179 million
# pixels, e.g. 20000x20000) is refused as a decompression bomb rather than decoded into gigabytes.
UNREADABLE = (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError)
TOO_LARGE = f"too large to decode safely (over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} million pixels)"


def to_rgb(image):
    """Any Pillow image (grayscale, palette, RGBA, 16-bit) as 8-bit RGB."""
    if image.mode.startswith("I"):  # 16-bit grayscale ("I;16", or "I"): map 0..65535 to 0..255
        pixels = np.asarray(image, dtype=np.int64) // 257
        image = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))  # flatten onto white
        image = Image.alpha_composite(background, image)
    return image.convert("RGB")


def read_image(source, size):
    """Reads an image (a path or encoded bytes) as (size, size, 3) uint8 RGB, and its shorter side
    before resizing.

    Images of another size are resized with Pillow's antialiased bilinear filter, without
    keeping the aspect ratio (as a square-input model needs).
    """
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
        shorter_side = min(image.size)
        image = to_rgb(image)
        if image.size != (size, size):
            image = image.resize((size, size), Image.BILINEAR)
        return np.asarray(image, dtype=np.uint8), shorter_side


def try_read_image(source, size):
    """`read_image`, or (None, why) for a file Pillow cannot or will not read: TOO_LARGE or "unreadable"."""
    try:
        return read_image(source, size)
    except Image.DecompressionBombError:
        return None, TOO_LARGE
    except UNREADABLE:
        return None, "unreadable"


def load_image(source, size):
    """`read_image` without the original size."""
    return read_image(source, size)[0]


def resize_images(images, size):
    """A (n, H, W, 3) uint8 batch resized to (n, size, size, 3), as `load_image` would."""
    if images.shape[1:3] == (size, size):
        return images
    return np.stack([np.asarray(Image.fromarray(i).resize((size, size), Image.BILINEAR)) for i in images])
