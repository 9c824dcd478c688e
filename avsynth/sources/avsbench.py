"""AVSBench readers: the semantic release (v1s / v1m / v2) and the old object release, and
:class:`AVSBenchSource` (root, subset, share of the videos → the video records a run trains on).
The AVS-V3 split files are read by :mod:`avsynth.sources.avs_v3`.

Semantic release (``ROOT/metadata.csv`` with columns vid, uid, s_min, s_sec, a_obj, split,
label): ``ROOT/{label}/{uid}/frames/{i}.jpg``, ``audio.wav`` and ``labels_rgb/{i}.png`` (colour
masks in a VOC-style palette of 71 colours, background black). v1s and v1m videos have 5 frames,
v2 videos 10; v1s train videos annotate frame 0 only, all other videos every frame (the rules of
the official ``avs_scripts/avss/color_dataloader.py``). Subsets: ``s4`` = v1s, ``ms3`` = v1m,
``v2`` = v2, ``avss`` / ``all`` = all three.

Object release (``avsbench_data/``): ``Single-source/s4_meta_data.csv`` (the official loader reads
the video name from the first column and uses the ``category`` and ``split`` columns) with
``s4_data/visual_frames/{split}/{category}/{name}/{name}_{i}.png``, ``gt_masks/...`` of the same
shape (train videos have mask 1 only), ``audio_wav/{split}/{category}/{name}.wav``; and
``Multi-sources/ms3_meta_data.csv`` with ``ms3_data/visual_frames/{name}/{name}.mp4_{i}.png``,
``gt_masks/{split}/{name}/{name}_{i}.png`` (5 masks) and ``audio_wav/{split}/{name}.wav``;
frames are numbered 1..5. The object release's precomputed ``audio_log_mel/{split}/[{category}/]
{name}.pkl`` files (VGGish log-mel examples [5, 1, 96, 64], what the official S4 / MS3 loaders read)
are used when present (:func:`load_log_mel_pkl`: a restricted unpickler that rebuilds torch tensors
and nothing else).

Masks: ``binary`` = any non-black pixel (any non-zero channel); ``semantic`` = class index of the
pixel's palette colour, a colour not in the palette decodes to background (0), as the official
``color_mask_to_label`` does. The palette is ``avss_classes.csv`` shipped beside this module, a
copy of ``shared/data/labels/avsbench_avss_classes.csv``: class names and order from AVSBench's
``label2idx.json`` (via YenanLiu/DDESeg, commit 1a7715c) and colours computed with the palette
function of OpenNLPLab/AVSBench ``avs_scripts/avss/color_dataloader.py`` (commit 35d0b42).

Resolution: ``224`` resizes frames to 224 x 224 with bilinear and masks with nearest-neighbour
(PIL), as the official test loaders; ``None`` keeps the native size (a mask whose size differs
from its frame is resized to it with nearest-neighbour). Audio: 16 kHz mono (mixed down and
resampled when needed) cut as the official preprocessing cuts it (``preprocess_s4.py`` /
``vggish_input.wavfile_to_examples``, see :data:`AUDIO_PREPROCESSING`): the clip's log-mel is framed
into non-overlapping 0.96 s VGGish examples and frame i gets example i, i.e. the samples
``[15360 i, 15360 i + 15600)`` (96 STFT frames of 400 samples at hop 160). A clip with fewer whole
examples than frames repeats its last one (as ``extract_one_log_mel`` pads to 5); frames added by
``pad_to`` get silence.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import pickle
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch
from PIL import Image
from torch.utils.data import Dataset

from avsynth.errors import AvsynthError, SourceError
from avsynth.sources.records import SkipCounter

SAMPLE_RATE = 16000
#: Samples between two VGGish examples (0.96 s at 16 kHz) and samples one example spans
#: (400 + 95 x 160: 96 STFT frames of 400 samples at hop 160).
EXAMPLE_HOP = 15360
EXAMPLE_SPAN = 15600
#: How avsynth cuts AVSBench audio per frame (named in every bench report).
AUDIO_PREPROCESSING = ("official AVSBench: frame i <- VGGish example i of audio.wav (the 0.96 s window "
                       "at 0.96*i s, last example repeated when the clip is short); the object "
                       "release's audio_log_mel/*.pkl used when present")
OFFICIAL_SIZE = 224
LABELS = ("v1s", "v1m", "v2")
SUBSET_LABELS = {"s4": ("v1s",), "ms3": ("v1m",), "v2": ("v2",), "avss": LABELS, "all": LABELS}
METADATA_COLUMNS = ("vid", "uid", "s_min", "s_sec", "a_obj", "split", "label")
FRAMES_PER_LABEL = {"v1s": 5, "v1m": 5, "v2": 10}
MODES = ("binary", "semantic")


# --------------------------------------------------------------------------- metadata


def read_csv_table(path: Path, required: Sequence[str]) -> pd.DataFrame:
    """A metadata CSV as a DataFrame of strings; a missing file or column is a SourceError."""
    if not path.is_file():
        raise SourceError(path, "metadata file not found")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise SourceError(path, f"cannot parse CSV: {err}") from err
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise SourceError(path, f"missing column(s) {', '.join(missing)}; found {list(df.columns)}")
    return df


def load_metadata(root: str | Path) -> pd.DataFrame:
    """The semantic release's ``metadata.csv`` (``root`` is its folder or the file itself).

    All columns are read as strings; ``label`` must be one of v1s / v1m / v2.
    """
    root = Path(root)
    path = root if root.suffix == ".csv" else root / "metadata.csv"
    df = read_csv_table(path, METADATA_COLUMNS)
    bad = sorted(set(df["label"]) - set(LABELS))
    if bad:
        raise SourceError(path, f"unknown label value(s) {bad}; expected {list(LABELS)}")
    if df["uid"].duplicated().any():
        dup = df.loc[df["uid"].duplicated(), "uid"].iloc[0]
        raise SourceError(path, f"uid {dup!r} appears more than once")
    return df


# --------------------------------------------------------------------------- video records


def annotated_frames(label: str, split: str) -> tuple[bool, ...]:
    """Which frames carry a mask: v1s train frame 0 only; otherwise every frame."""
    n = FRAMES_PER_LABEL[label]
    if label == "v1s" and split == "train":
        return (True,) + (False,) * (n - 1)
    return (True,) * n


@dataclass(frozen=True)
class AVSBenchVideo:
    """One AVSBench video: where its frames, masks and audio are and which frames are annotated."""

    uid: str
    label: str  # v1s / v1m / v2 (or "s4" / "ms3" for the object release)
    split: str
    a_obj: str  # the sounding object(s) (semantic release, '_'-joined) or the S4 category
    frame_paths: tuple[Path, ...]
    mask_paths: tuple[Path | None, ...]  # None where the frame is not annotated
    audio_path: Path
    log_mel_path: Path | None = None  # object release: precomputed VGGish examples (.pkl), if shipped

    @property
    def annotated(self) -> tuple[bool, ...]:
        return tuple(p is not None for p in self.mask_paths)

    @property
    def num_frames(self) -> int:
        return len(self.frame_paths)

    def files(self) -> list[Path]:
        """Every file the video needs."""
        return [*self.frame_paths, *(p for p in self.mask_paths if p is not None), self.audio_path]


def semantic_video(root: Path, row: dict) -> AVSBenchVideo:
    """The record of one metadata row of the semantic release."""
    base = root / row["label"] / row["uid"]
    ann = annotated_frames(row["label"], row["split"])
    return AVSBenchVideo(
        uid=row["uid"], label=row["label"], split=row["split"], a_obj=row["a_obj"],
        frame_paths=tuple(base / "frames" / f"{i}.jpg" for i in range(len(ann))),
        mask_paths=tuple(base / "labels_rgb" / f"{i}.png" if a else None for i, a in enumerate(ann)),
        audio_path=base / "audio.wav",
    )


def _select(df: pd.DataFrame, path: Path, split: str | None, uids: Iterable[str] | None,
            uid_col: str) -> pd.DataFrame:
    if uids is not None:
        wanted = list(dict.fromkeys(str(u) for u in uids))
        present = set(df[uid_col])
        unknown = [u for u in wanted if u not in present]
        if unknown:
            raise SourceError(path, f"{len(unknown)} requested uid(s) not in the metadata "
                                    f"(first: {unknown[:3]})")
        df = df[df[uid_col].isin(set(wanted))]
    if split is not None:
        df = df[df["split"] == split]
    return df


def _check_files(videos: list[AVSBenchVideo], on_missing: str, skipped: SkipCounter
                 ) -> list[AVSBenchVideo]:
    if on_missing not in ("error", "skip"):
        raise ValueError(f"on_missing must be 'error' or 'skip', got {on_missing!r}")
    kept = []
    for v in videos:
        missing = [p for p in v.files() if not p.is_file()]
        if not missing:
            kept.append(v)
        elif on_missing == "skip":
            skipped.skip("missing file", str(missing[0]))
        else:
            raise SourceError(missing[0], f"file of video {v.uid!r} not found "
                                          f"({len(missing)} of its files missing)")
    return kept


# --------------------------------------------------------------------------- media decoding


@lru_cache(maxsize=1)
def load_palette() -> tuple[tuple[str, ...], np.ndarray]:
    """AVSS class names and their RGB colours (uint8 [71, 3]) from the shipped palette."""
    with resources.files("avsynth.sources").joinpath("avss_classes.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    names = tuple(r["name"] for r in rows)
    colours = np.array([[int(r["r"]), int(r["g"]), int(r["b"])] for r in rows], dtype=np.uint8)
    return names, colours


def decode_rgb_labels(rgb: np.ndarray) -> np.ndarray:
    """Class-index map (int64 [H, W]) of an RGB palette mask; unknown colours -> 0 (background)."""
    _, colours = load_palette()
    codes = (colours[:, 0].astype(np.int64) << 16) | (colours[:, 1].astype(np.int64) << 8) | colours[:, 2]
    order = np.argsort(codes)
    sorted_codes = codes[order]
    px = rgb.astype(np.int64)
    pc = (px[..., 0] << 16) | (px[..., 1] << 8) | px[..., 2]
    pos = np.clip(np.searchsorted(sorted_codes, pc), 0, len(codes) - 1)
    found = sorted_codes[pos] == pc
    return np.where(found, order[pos], 0).astype(np.int64)


def binary_from_rgb(rgb: np.ndarray) -> np.ndarray:
    """Foreground (uint8 0/1 [H, W]) = any non-black pixel."""
    if rgb.ndim == 2:
        return (rgb != 0).astype(np.uint8)
    merged = rgb[..., 0].copy()
    for ch in range(1, rgb.shape[-1]):
        merged |= rgb[..., ch]
    return (merged != 0).astype(np.uint8)


def _open_rgb(path: Path) -> Image.Image:
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (OSError, ValueError) as err:
        raise SourceError(path, f"cannot decode image: {err}") from err


def load_frame(path: Path, resolution: int | None) -> np.ndarray:
    """RGB frame as uint8 [H, W, 3], resized bilinearly to resolution² when given."""
    im = _open_rgb(path)
    if resolution is not None and im.size != (resolution, resolution):
        im = im.resize((resolution, resolution), Image.BILINEAR)
    return np.asarray(im)


def load_mask(path: Path, mode: str, size_wh: tuple[int, int]) -> np.ndarray:
    """Binary (uint8) or class-index (int64) mask [H, W], nearest-resized to ``size_wh``."""
    im = _open_rgb(path)
    if im.size != size_wh:
        im = im.resize(size_wh, Image.NEAREST)
    rgb = np.asarray(im)
    return binary_from_rgb(rgb) if mode == "binary" else decode_rgb_labels(rgb)


def load_audio(path: Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Mono float32 waveform at ``sample_rate`` (channels averaged, resampled with soxr)."""
    try:
        wave, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        raise SourceError(path, f"cannot decode audio: {err}") from err
    wave = wave.mean(axis=1)
    if sr != sample_rate:
        import soxr

        wave = soxr.resample(wave, sr, sample_rate).astype(np.float32)
    return np.ascontiguousarray(wave, dtype=np.float32)


def example_count(num_samples: int) -> int:
    """Whole VGGish examples in ``num_samples`` samples at 16 kHz (``mel_features.frame`` rule)."""
    return 0 if num_samples < EXAMPLE_SPAN else 1 + (num_samples - EXAMPLE_SPAN) // EXAMPLE_HOP


def audio_windows(wave: np.ndarray, num_frames: int, pad_frames: int = 0) -> np.ndarray:
    """The official per-frame cut: frame i <- the samples of VGGish example ``min(i, n - 1)``
    (``[15360 j, 15360 j + 15600)``, n = the clip's whole examples), float32 [T + pad, 15600].

    Embedding window i gives exactly example i of ``wavfile_to_examples`` of the whole clip (the
    STFT frames are the same samples). A clip shorter than one example is zero-padded to one;
    the ``pad_frames`` extra frames (``pad_to``) are silence.
    """
    n = max(1, example_count(len(wave)))
    out = np.zeros((num_frames + pad_frames, EXAMPLE_SPAN), dtype=np.float32)
    for i in range(num_frames):
        chunk = wave[min(i, n - 1) * EXAMPLE_HOP:][:EXAMPLE_SPAN]
        out[i, : len(chunk)] = chunk
    return out


class _TensorUnpickler(pickle.Unpickler):
    """Rebuilds pickled torch tensors and nothing else (their storages through
    ``torch.load(weights_only=True)``); any other global is refused."""

    def find_class(self, module: str, name: str):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return torch._utils._rebuild_tensor_v2
        if (module, name) == ("torch.storage", "_load_from_bytes"):
            return lambda b: torch.load(io.BytesIO(b), weights_only=True)
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def load_log_mel_pkl(path: Path, num_frames: int) -> np.ndarray:
    """A precomputed ``audio_log_mel`` .pkl (a pickled torch tensor [N, 1, 96, 64]) as float32
    [num_frames, 96, 64]: frame i <- example ``min(i, N - 1)``."""
    try:
        with open(path, "rb") as fh:
            t = _TensorUnpickler(fh).load()
    except (OSError, pickle.UnpicklingError, EOFError, RuntimeError, ValueError) as err:
        raise SourceError(path, f"cannot read the log-mel pickle: {err}") from err
    if not isinstance(t, torch.Tensor) or t.dim() != 4 or tuple(t.shape[1:]) != (1, 96, 64) or t.shape[0] < 1:
        shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise SourceError(path, f"expected a log-mel tensor [N, 1, 96, 64], got {shape}")
    x = t.detach().float()[:, 0].numpy()
    return np.ascontiguousarray(x[[min(i, len(x) - 1) for i in range(num_frames)]])


# --------------------------------------------------------------------------- datasets


class _VideoDataset(Dataset):
    """Shared item assembly for both releases (frames, masks, audio)."""

    videos: list[AVSBenchVideo]
    resolution: int | None
    mode: str
    pad_to: int | None

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> dict:
        v = self.videos[index]
        frames = [load_frame(p, self.resolution) for p in v.frame_paths]
        h, w = frames[0].shape[:2]
        mask_dtype = np.uint8 if self.mode == "binary" else np.int64
        masks = [np.zeros((h, w), dtype=mask_dtype) if p is None else load_mask(p, self.mode, (w, h))
                 for p in v.mask_paths]
        for p, f in zip(v.frame_paths, frames):
            if f.shape[:2] != (h, w):
                raise SourceError(p, f"frame size {f.shape[1]}x{f.shape[0]} differs from the "
                                     f"video's first frame {w}x{h}")
        wave = load_audio(v.audio_path)
        t = len(frames)
        pad = max(0, (self.pad_to or 0) - t)
        frames_t = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()
        masks_t = torch.from_numpy(np.stack(masks))
        annotated = torch.tensor(v.annotated, dtype=torch.bool)
        padded = torch.zeros(t + pad, dtype=torch.bool)
        if pad:
            frames_t = torch.cat([frames_t, frames_t.new_zeros(pad, *frames_t.shape[1:])])
            masks_t = torch.cat([masks_t, masks_t.new_zeros(pad, *masks_t.shape[1:])])
            annotated = torch.cat([annotated, torch.zeros(pad, dtype=torch.bool)])
            padded[t:] = True
        item = {
            "uid": v.uid,
            "label": v.label,
            "split": v.split,
            "category": v.a_obj,
            "frames": frames_t,  # uint8 [T, 3, H, W]
            "masks": masks_t,  # uint8 0/1 or int64 class index [T, H, W]
            "annotated": annotated,  # bool [T]: frames with a real annotation
            "padded": padded,  # bool [T]: zero frames added by pad_to
            "audio": torch.from_numpy(wave),  # float32 [S] at 16 kHz
            "audio_windows": torch.from_numpy(audio_windows(wave, t, pad)),  # [T, 15600]
            "sample_rate": SAMPLE_RATE,
        }
        if v.log_mel_path is not None:  # the official loaders' precomputed examples [T, 96, 64]
            lm = np.zeros((t + pad, 96, 64), dtype=np.float32)
            lm[:t] = load_log_mel_pkl(v.log_mel_path, t)
            item["audio_log_mel"] = torch.from_numpy(lm)
        return item


def _check_common(resolution: int | None, mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if resolution is not None and resolution < 1:
        raise ValueError("resolution must be a positive int or None (native)")


class AVSBenchDataset(_VideoDataset):
    """Videos of the AVSBench semantic release as torch items (one item = one video).

    ``subset``: s4 / ms3 / v2 / avss / all; ``split``: train / val / test, or None for every
    split (use None with ``uids`` from an AVS-V3 split, which mixes AVSBench splits);
    ``resolution``: 224 (official) or None (native); ``mode``: binary or semantic (default:
    semantic for avss, binary otherwise); ``uids`` restricts to those videos (an unknown uid is an
    error); ``pad_to`` appends zero frames and background masks up to that many frames, as the
    official AVSS test loader does (it pads to 10 and evaluates the padding too:
    ``annotated | padded`` are the frames it scores); ``on_missing``: ``error`` raises a
    SourceError naming the first missing file, ``skip`` drops the video and counts it in
    ``self.skipped``.

    Items: uid, label, split, category (a_obj), frames uint8 [T, 3, H, W], masks [T, H, W],
    annotated / padded bool [T], audio float32 [S], audio_windows float32 [T, 15600] (frame i's
    VGGish example, :func:`audio_windows`), sample_rate.
    """

    def __init__(self, root: str | Path, subset: str = "s4", split: str | None = "test",
                 resolution: int | None = OFFICIAL_SIZE, mode: str | None = None,
                 uids: Iterable[str] | None = None, pad_to: int | None = None,
                 on_missing: str = "error"):
        if subset not in SUBSET_LABELS:
            raise ValueError(f"subset must be one of {list(SUBSET_LABELS)}, got {subset!r}")
        mode = mode or ("semantic" if subset == "avss" else "binary")
        _check_common(resolution, mode)
        self.root = Path(root)
        self.subset, self.split, self.resolution, self.mode, self.pad_to = (
            subset, split, resolution, mode, pad_to)
        df = load_metadata(self.root)
        df = _select(df, self.root / "metadata.csv", split, uids, "uid")
        df = df[df["label"].isin(SUBSET_LABELS[subset])]
        self.skipped = SkipCounter()
        videos = [semantic_video(self.root, row) for row in df.to_dict("records")]
        self.videos = _check_files(videos, on_missing, self.skipped)


class AVSBenchObjectDataset(_VideoDataset):
    """Videos of the old AVSBench object release (S4 / MS3, 224² PNG frames numbered 1..5).

    ``root`` is the ``avsbench_data`` folder holding ``Single-source/`` and/or ``Multi-sources/``.
    ``uids`` are video names. Items have the same keys as :class:`AVSBenchDataset` (binary masks
    only; S4 train videos annotate frame 1 only, as the official S4 loader reads one mask there).
    """

    def __init__(self, root: str | Path, subset: str = "s4", split: str | None = "test",
                 resolution: int | None = OFFICIAL_SIZE, uids: Iterable[str] | None = None,
                 on_missing: str = "error"):
        if subset not in ("s4", "ms3"):
            raise ValueError(f"subset must be 's4' or 'ms3', got {subset!r}")
        _check_common(resolution, "binary")
        self.root = Path(root)
        self.subset, self.split, self.resolution, self.mode, self.pad_to = (
            subset, split, resolution, "binary", None)
        top = self.root / ("Single-source" if subset == "s4" else "Multi-sources")
        path = top / f"{subset}_meta_data.csv"
        df = read_csv_table(path, ("category", "split") if subset == "s4" else ("split",))
        if df.columns[0] in ("category", "split"):
            raise SourceError(path, "the first column must hold the video name")
        df = df.rename(columns={df.columns[0]: "_name"})
        df = _select(df, path, split, uids, "_name")
        data = top / f"{subset}_data"
        self.skipped = SkipCounter()
        videos = [self._video(data, row) for row in df.to_dict("records")]
        self.videos = _check_files(videos, on_missing, self.skipped)

    def _video(self, data: Path, row: dict) -> AVSBenchVideo:
        name, split = row["_name"], row["split"]
        idx = range(1, 6)
        if self.subset == "s4":
            cat = row["category"]
            rel = Path(split) / cat / name
            frames = tuple(data / "visual_frames" / rel / f"{name}_{i}.png" for i in idx)
            masks = tuple(data / "gt_masks" / rel / f"{name}_{i}.png" if (split != "train" or i == 1)
                          else None for i in idx)
            audio = data / "audio_wav" / split / cat / f"{name}.wav"
            log_mel = data / "audio_log_mel" / split / cat / f"{name}.pkl"
        else:
            cat = row.get("category", "")
            frames = tuple(data / "visual_frames" / name / f"{name}.mp4_{i}.png" for i in idx)
            masks = tuple(data / "gt_masks" / split / name / f"{name}_{i}.png" for i in idx)
            audio = data / "audio_wav" / split / f"{name}.wav"
            log_mel = data / "audio_log_mel" / split / f"{name}.pkl"
        return AVSBenchVideo(uid=name, label=self.subset, split=split, a_obj=cat,
                             frame_paths=frames, mask_paths=masks, audio_path=audio,
                             log_mel_path=log_mel if log_mel.is_file() else None)


def collate_videos(batch: list[dict]) -> dict:
    """Collate dataset items: tensors of equal shape are stacked, everything else is listed."""
    out: dict = {}
    for key in batch[0]:
        vals = [b[key] for b in batch]
        if all(isinstance(v, torch.Tensor) for v in vals) and len({v.shape for v in vals}) == 1:
            out[key] = torch.stack(vals)
        else:
            out[key] = vals
    return out


# --------------------------------------------------------------------------- which videos


def is_object_release(root: str | Path) -> bool:
    """Whether ``root`` is the old AVSBench object release (``Single-source/`` / ``Multi-sources/``)."""
    root = Path(root)
    return not (root / "metadata.csv").is_file() and ((root / "Single-source").is_dir()
                                                      or (root / "Multi-sources").is_dir())


def avsbench_dataset(root: str | Path, subset: str, split: str | None, resolution: int | None,
                     uids: Sequence[str] | None = None) -> AVSBenchDataset | AVSBenchObjectDataset:
    """A binary AVSBench dataset: the semantic release (``metadata.csv``) or the old object
    release (detected); a missing file is an error naming it."""
    if is_object_release(root):
        return AVSBenchObjectDataset(root, subset, split, resolution=resolution, uids=uids)
    return AVSBenchDataset(root, subset, split, resolution=resolution, mode="binary", uids=uids)


@dataclass(frozen=True)
class AVSBenchSource:
    """AVSBench fine-tuning data: which release, subset, splits and which videos.

    ``root``: the semantic release folder (with ``metadata.csv``) or the object release's
    ``avsbench_data`` folder (with ``Single-source/`` / ``Multi-sources/``), detected.
    ``subset``: s4 or ms3 (v2 / avss also for the semantic release). ``fraction`` (0 < f <= 1) keeps
    that share of the train videos of each class; ``k_shot`` keeps k train videos per class;
    ``uids`` (e.g. an AVS-V3 k-shot file's) names the train videos explicitly, whatever AVSBench
    split they belong to; at most one of the three. ``val_uids`` likewise names the validation
    videos (default: every video of ``val_split``). ``train_resolution`` None = native frames; ``val_resolution`` 224 = the official
    evaluation size.
    """

    root: Path
    subset: str = "s4"
    train_split: str = "train"
    val_split: str = "val"
    fraction: float | None = None
    k_shot: int | None = None
    uids: tuple[str, ...] | None = None
    val_uids: tuple[str, ...] | None = None
    train_resolution: int | None = None
    val_resolution: int | None = 224

    def __post_init__(self) -> None:
        given = [x is not None for x in (self.fraction, self.k_shot, self.uids)]
        if sum(given) > 1:
            raise AvsynthError("choose at most one of fraction, k_shot and uids for AVSBench training")
        if self.fraction is not None and not 0 < self.fraction <= 1:
            raise AvsynthError(f"AVSBench fraction must be in (0, 1], got {self.fraction}")
        if self.k_shot is not None and self.k_shot < 1:
            raise AvsynthError(f"k_shot must be >= 1, got {self.k_shot}")

    def videos(self, split: str | None, uids: Sequence[str] | None = None) -> list[AVSBenchVideo]:
        """The video records of ``split`` (None: every split), all of them or only ``uids``."""
        root = Path(self.root)
        if not (root / "metadata.csv").is_file() and not is_object_release(root):
            raise SourceError(root, "not an AVSBench root: no metadata.csv (semantic release) and no "
                                    "Single-source/ or Multi-sources/ (object release)")
        return list(avsbench_dataset(root, self.subset, split, None, uids).videos)


def _seeded_order(keys: Sequence[str], seed: int, salt: str) -> list[str]:
    """``keys`` in a deterministic pseudo-random order (sha256 of seed, salt and key)."""
    return sorted(keys, key=lambda k: hashlib.sha256(f"{seed}:{salt}:{k}".encode()).hexdigest())


def select_videos(videos: Sequence[AVSBenchVideo], *, fraction: float | None = None,
                  k_shot: int | None = None, seed: int = 0) -> list[AVSBenchVideo]:
    """A seeded subset of ``videos``: per class (``a_obj``) ``ceil(fraction * n)`` or ``k_shot``
    videos (all of a class that has fewer). Order of the result: as in ``videos``."""
    if fraction is None and k_shot is None:
        return list(videos)
    by_class: dict[str, list[str]] = defaultdict(list)
    for v in videos:
        by_class[v.a_obj].append(v.uid)
    keep: set[str] = set()
    for cls, uids in by_class.items():
        n = min(len(uids), k_shot if k_shot is not None else max(1, math.ceil(fraction * len(uids))))
        keep.update(_seeded_order(uids, seed, cls)[:n])
    return [v for v in videos if v.uid in keep]


def read_uids_file(path: str | Path) -> tuple[str, ...]:
    """Video uids from a file: an AVSBench/AVS-V3 csv with a ``uid`` column, or one uid per line."""
    p = Path(path)
    if not p.is_file():
        raise SourceError(p, "uids file not found")
    lines = [ln.strip() for ln in p.read_text().splitlines() if ln.strip()]
    if lines and "," in lines[0]:
        rows = list(csv.DictReader(lines))
        if not rows or "uid" not in rows[0]:
            raise SourceError(p, "a csv uids file needs a 'uid' column")
        return tuple(r["uid"] for r in rows)
    return tuple(lines)
