"""Video frames: the middle frame of a clip (VGG-SS evaluates each clip's middle frame), with PyAV
(the optional ``video`` extra; it bundles FFmpeg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avsynth.errors import SourceError


def middle_frame(path: str | Path) -> np.ndarray:
    """The frame at index ``n // 2`` of the first video stream (n frames: the header's count, else
    counted), uint8 H x W x 3.

    SourceError (naming the file) when PyAV is missing, the file does not decode or has no video,
    or its frames end before the middle one (a download cut short: the header states more)."""
    path = Path(path)
    try:
        import av  # PyAV, optional
    except ImportError as err:
        raise SourceError(path, "reading a video needs PyAV/FFmpeg (pip install av)") from err
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise SourceError(path, "container has no video stream")
            n = int(container.streams.video[0].frames or 0)
            if n <= 0:  # the header does not say: count the frames in a first pass
                n = sum(1 for _ in container.decode(video=0))
                container.seek(0)
            frame = None
            for i, f in enumerate(container.decode(video=0)):
                if i == n // 2:
                    frame = f.to_ndarray(format="rgb24")
                    break
    except SourceError:
        raise
    except (av.FFmpegError, OSError, ValueError) as err:
        raise SourceError(path, f"not a decodable video ({err})") from None
    if frame is None:
        raise SourceError(path, f"video ends before its middle frame (frame {n // 2} of {n}): cut short?")
    return np.ascontiguousarray(frame)


__all__ = ["middle_frame"]
