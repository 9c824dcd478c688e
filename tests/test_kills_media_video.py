"""media/video: a video whose frames are missing (a download cut short) is a one-line error
naming the file (issue 17: the survivors of `scripts/mutation.sh media/video` in its last error,
once worded "video has no frames", which a cut-short file with some frames left reached too).

The MP4 is written with its index in front (``movflags=faststart``), as streamed downloads are:
its header still states 6 frames when the media data after it is lost."""

from __future__ import annotations

import pytest

from avsynth.errors import SourceError
from avsynth.media import video

from .test_kills_media import _write_video


def _faststart_mp4(path, levels):
    av = pytest.importorskip("av")
    _write_video(path, levels, options={"movflags": "faststart"})
    with av.open(str(path)) as c:  # where each frame's data starts in the file
        return c.streams.video[0].frames, [p.pos for p in c.demux(video=0) if p.size]


SIX = [20, 60, 100, 140, 180, 220]


# no frame's data left / the first 2 of 6 frames left / the only frame of a 1-frame video cut
@pytest.mark.parametrize("levels, keep", [(SIX, 0), (SIX, 2), ([100], 0)])
def test_video_cut_before_its_middle_frame_is_an_error_naming_the_file(tmp_path, levels, keep):
    whole = tmp_path / "whole.mp4"
    frames, starts = _faststart_mp4(whole, levels)
    n = len(levels)
    assert frames == n and len(starts) == n and starts == sorted(starts)
    middle = levels[n // 2]  # frame 6 // 2 = 3 (level 140), or the only one, while the file is whole
    assert abs(float(video.middle_frame(whole).mean()) - middle) < 6
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: starts[keep]])  # the header and the first `keep` frames
    with pytest.raises(SourceError) as err:
        video.middle_frame(cut)
    assert str(err.value) == f"{cut}: video ends before its middle frame (frame {n // 2} of {n}): cut short?"
