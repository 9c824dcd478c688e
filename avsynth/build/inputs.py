"""What a row reads, checked: one way to turn an unreadable or rejected input into a counted skip,
and the per-worker image cache with its size check (shared by single-source, mixed and off-screen
rows)."""

from __future__ import annotations

from pathlib import Path

from avsynth.errors import SourceError
from avsynth.media.checks import Rejected
from avsynth.sources.records import SkipCounter


def counted(skips: SkipCounter, unreadable: str, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, or None after counting why in ``skips``: a :class:`SourceError`
    under ``unreadable`` (e.g. "unreadable audio file"), a :class:`Rejected` under its reason."""
    try:
        return fn(*args, **kwargs)
    except SourceError as err:
        skips.skip(unreadable, str(err))
    except Rejected as rej:
        skips.skip(rej.reason, rej.detail)
    return None


def checked_image(cache: dict, path: Path, width: int, height: int, skips: SkipCounter):
    """The decoded image at ``path`` (one image cached per worker: rows of an image are rarely far
    apart, so memory stays flat), or None after a counted skip when it is unreadable or its size
    differs from the annotation's ``width`` x ``height``."""
    from avsynth.media.image import read_image

    def read():
        image = cache.get(path)
        if image is None:
            cache.clear()
            image = read_image(path)
            cache[path] = image
        return image

    image = counted(skips, "unreadable image file", read)
    if image is None:
        return None
    if (image.width, image.height) != (width, height):
        skips.skip("image size differs from its annotation",
                   f"{path}: {image.width}x{image.height} vs {width}x{height}")
        return None
    return image
