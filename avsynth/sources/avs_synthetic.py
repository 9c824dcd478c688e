"""Read the official AVS-Synthetic release (for import; reads only).

Release layout (DESIGN §3)::

    annotations.csv                     one row per instance, with a ``split`` column
                                        (train / validate / test)
    images/{img_id}.jpg
    masks/{inst_id}.png
    audios/{audio_name}.wav
    category_for_vggsound_audios.pkl    class id -> list of audio names (the train audio pool)

Apart from ``split`` the column names are not documented, so each field is found by a list of
accepted header aliases (``FIELD_ALIASES``); a missing field is a SourceError naming the file,
the missing fields and the headers seen. Train rows may have no audio name: their audio is drawn
from the pool. The pickle is read with a restricted unpickler that admits builtin containers and
scalars only.
"""

from __future__ import annotations

import io
import math
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import soundfile as sf

from avsynth.errors import SourceError
from avsynth.sources._files import DirIndex, csv_rows, decode_mask, image_size, mask_box_area
from avsynth.sources.records import ImageInstance, MaskRef, SkipCounter

SOURCE = "avs-synthetic"
ANNOTATIONS = "annotations.csv"
POOL_FILE = "category_for_vggsound_audios.pkl"
LICENSE = (
    "AVS-Synthetic release: images and masks from LVIS/COCO (COCO image licences) or Open Images "
    "(CC BY 2.0); audio from VGGSound (CC BY 4.0)"
)

# Normalised header (lower case, spaces/dashes -> underscores) -> field. First match wins.
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "split": ("split", "subset", "set"),
    "instance_id": (
        "inst_id", "instance_id", "ins_id", "inst", "instance", "instance_name", "mask_id",
        "mask_name", "ann_id", "annotation_id", "seg_id",
    ),
    "image_id": ("img_id", "image_id", "image", "img", "image_name", "img_name", "video_name"),
    "class_name": (
        "class_name", "cls_name", "category", "category_name", "class", "label", "label_name",
        "cls", "name", "object",
    ),
    "class_id": (
        "class_id", "cls_id", "category_id", "cat_id", "label_id", "class_idx", "cls_idx",
        "label_idx",
    ),
    "source": ("source", "dataset", "source_dataset", "datatset", "data_source", "origin", "src"),
    "audio": (
        "audio", "audio_name", "audio_id", "audio_file", "audio_path", "wav", "wav_name",
        "sound", "sound_name", "vggsound_id",
    ),
}  # fmt: skip
REQUIRED_FIELDS = ("split", "instance_id", "image_id", "class_name", "class_id", "audio")
SPLIT_NAMES = {
    "train": "train", "training": "train",
    "validate": "validation", "validation": "validation",
    "val": "validation", "valid": "validation",
    "test": "test", "testing": "test",
}  # fmt: skip
_SAFE_BUILTINS = frozenset(
    {"list", "dict", "set", "frozenset", "tuple", "str", "bytes", "int", "float", "bool", "complex"}
)

SKIP_SPLIT = "avs-synthetic: unknown split"
SKIP_MALFORMED = "avs-synthetic: malformed row"
SKIP_IMAGE_MISSING = "avs-synthetic: image file missing"
SKIP_IMAGE_UNREADABLE = "avs-synthetic: image file unreadable"
SKIP_MASK_MISSING = "avs-synthetic: mask file missing"
SKIP_MASK_UNREADABLE = "avs-synthetic: mask file unreadable"
SKIP_MASK_EMPTY = "avs-synthetic: mask is empty"
SKIP_NO_AUDIO = "avs-synthetic: evaluation row without audio name"
SKIP_AUDIO_MISSING = "avs-synthetic: audio file missing"
SKIP_AUDIO_UNREADABLE = "avs-synthetic: audio file unreadable"
SKIP_POOL_MISSING = "avs-synthetic: pool audio file missing"


@dataclass(frozen=True)
class AVSSyntheticRow:
    """One instance of the release: its split, class, image + mask, and (evaluation) audio."""

    split: str  # "train" | "validation" | "test"
    category: str  # class name as the release spells it
    category_id: int  # class id as the release numbers it
    source_dataset: str
    instance: ImageInstance  # image path and size, mask PNG, bbox and area measured from the mask
    audio_name: str | None  # None: train row, audio drawn from the pool
    audio_path: Path | None


@dataclass
class AVSSyntheticRelease:
    """An AVS-Synthetic release as read: rows, the train audio pool and counted skips."""

    root: Path
    rows: list[AVSSyntheticRow]
    audio_pool: dict[int, list[str]]
    columns: dict[str, str] = field(default_factory=dict)  # field -> header used
    skips: SkipCounter = field(default_factory=SkipCounter)

    @property
    def categories(self) -> dict[int, str]:
        """Class id -> class name, as the rows name them."""
        return dict(sorted({r.category_id: r.category for r in self.rows}.items()))

    def audio_path(self, name: str) -> Path:
        return self.root / "audios" / _wav_name(name)


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles builtin containers and scalars only; any other global is refused."""

    def find_class(self, module: str, name: str):
        # protocol <= 2 pickles (and Python 2 ones) name the module "__builtin__"
        if module in ("builtins", "__builtin__") and name in _SAFE_BUILTINS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")


def safe_unpickle(path: Path):
    """Load a pickle made of builtin containers/scalars, or raise SourceError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(path, "pickle file not found")
    try:
        data = path.read_bytes()
        return RestrictedUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError as err:
        msg = str(err)
        if msg.startswith("refusing"):
            raise SourceError(
                path, f"{msg}: only builtin containers and scalars are allowed"
            ) from None
        raise SourceError(path, f"not a valid pickle: {msg}") from None
    except (OSError, EOFError, ValueError, TypeError, AttributeError, IndexError) as err:
        raise SourceError(path, f"not a valid pickle: {type(err).__name__}: {err}") from None


def read_audio_pool(path: Path) -> dict[int, list[str]]:
    """``category_for_vggsound_audios.pkl``: class id -> audio names (ids coerced to int)."""
    data = safe_unpickle(path)
    if not isinstance(data, dict):
        raise SourceError(
            path, f"expected a dict class id -> audio names, found {type(data).__name__}"
        )
    pool: dict[int, list[str]] = {}
    for key, names in data.items():
        cid = _as_int(key)
        if cid is None:
            raise SourceError(path, f"class id {key!r} is not an integer")
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, (list, tuple, set, frozenset)) or not all(
            isinstance(n, str) for n in names
        ):
            raise SourceError(path, f"class {key!r}: expected a list of audio names")
        values = sorted(names) if isinstance(names, (set, frozenset)) else list(names)
        pool[cid] = [n.strip() for n in values if n.strip()]
    return dict(sorted(pool.items()))


def _as_int(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        f = float(str(value).strip())
    except ValueError:
        return None
    return int(f) if math.isfinite(f) and f == int(f) else None


def _wav_name(name: str) -> str:
    return name if name.lower().endswith(".wav") else f"{name}.wav"


def _norm(header: str) -> str:
    return header.strip().lower().replace(" ", "_").replace("-", "_")


def detect_columns(path: Path, header: list[str]) -> dict[str, int]:
    """Field -> column index, found in the header by ``FIELD_ALIASES``.

    SourceError naming the file, the missing fields and the headers seen if any is missing."""
    normed = [_norm(h) for h in header]
    found: dict[str, int] = {}
    for fname, aliases in FIELD_ALIASES.items():
        for alias in aliases:
            if alias in normed and normed.index(alias) not in found.values():
                found[fname] = normed.index(alias)
                break
    missing = [f for f in REQUIRED_FIELDS if f not in found]
    if missing:
        hints = "; ".join(f"{f}: one of {', '.join(FIELD_ALIASES[f][:6])}" for f in missing)
        raise SourceError(
            path,
            f"cannot find the fields {missing} among the headers {header} (accepted: {hints})",
        )
    return found


def read_release(
    root: Path, skips: SkipCounter | None = None, *, check_audio: bool = True
) -> AVSSyntheticRelease:
    """Read an AVS-Synthetic release tree. Rows are sorted
    by (split, image id, instance id). Bad rows and missing files are counted skips."""
    root = Path(root)
    skips = skips if skips is not None else SkipCounter()
    if not root.is_dir():
        raise SourceError(root, "AVS-Synthetic release directory not found")
    csv_path = root / ANNOTATIONS
    rows_iter = csv_rows(csv_path, "AVS-Synthetic annotations")
    _, header = next(rows_iter)
    col = detect_columns(csv_path, header)
    pool = read_audio_pool(root / POOL_FILE)
    files = _ReleaseFiles(root, check_audio)
    rows: list[AVSSyntheticRow] = []
    for line, fields in rows_iter:
        if not fields or not any(f.strip() for f in fields):
            continue
        row = _read_row(fields, col, files, skips, f"{ANNOTATIONS}:{line}")
        if row is not None:
            rows.append(row)
    for cid, names in pool.items():
        kept = [n for n in names if files.audio(n) is not None]
        for n in names:
            if files.audio(n) is None:
                skips.skip(SKIP_POOL_MISSING, n)
        pool[cid] = kept
    order = {"train": 0, "validation": 1, "test": 2}
    rows.sort(key=lambda r: (order[r.split], r.instance.image_id, r.instance.annotation_id))
    names = {f: header[i] for f, i in col.items()}
    return AVSSyntheticRelease(root=root, rows=rows, audio_pool=pool, columns=names, skips=skips)


class _ReleaseFiles:
    """The release's images/, masks/ and audios/ folders, each listed once."""

    def __init__(self, root: Path, check_audio: bool):
        self.images = DirIndex(root / "images")
        self.masks = DirIndex(root / "masks")
        self.audios = DirIndex(root / "audios")
        self.check_audio = check_audio
        self._sizes: dict[str, tuple[int, int] | None] = {}
        self._audio_ok: dict[str, bool] = {}
        for d in (self.images, self.masks, self.audios):
            if not d.directory.is_dir():
                raise SourceError(d.directory, "release folder not found")

    def image(self, image_id: str):
        path = self.images.path(f"{image_id}.jpg")
        if path is None:
            return None, SKIP_IMAGE_MISSING
        if image_id not in self._sizes:
            self._sizes[image_id] = image_size(path)
        size = self._sizes[image_id]
        return (path, size) if size is not None else (path, SKIP_IMAGE_UNREADABLE)

    def audio(self, name: str) -> Path | None:
        return self.audios.path(_wav_name(name))

    def audio_readable(self, path: Path) -> bool:
        if not self.check_audio:
            return True
        key = path.name
        if key not in self._audio_ok:
            try:
                info = sf.info(str(path))
                self._audio_ok[key] = info.frames > 0
            except (RuntimeError, OSError, sf.LibsndfileError):
                self._audio_ok[key] = False
        return self._audio_ok[key]


def _read_row(fields, col, files: _ReleaseFiles, skips: SkipCounter, where: str):
    if len(fields) <= max(col.values()):
        skips.skip(SKIP_MALFORMED, where)
        return None
    get = {f: fields[i].strip() for f, i in col.items()}
    split = SPLIT_NAMES.get(get["split"].lower())
    if split is None:
        skips.skip(SKIP_SPLIT, f"{where} ({get['split']!r})")
        return None
    cid = _as_int(get["class_id"])
    inst_id, img_id, cls = get["instance_id"], get["image_id"], get["class_name"]
    if cid is None or not inst_id or not img_id or not cls:
        skips.skip(SKIP_MALFORMED, where)
        return None
    audio_name = get["audio"] if get["audio"].lower() not in ("", "nan", "none") else None
    audio_path = None
    if audio_name is not None:
        audio_path = files.audio(audio_name)
        if audio_path is None and split != "train":
            skips.skip(SKIP_AUDIO_MISSING, audio_name)
            return None
        if audio_path is not None and not files.audio_readable(audio_path):
            skips.skip(SKIP_AUDIO_UNREADABLE, str(audio_path))
            return None
        if audio_path is None:  # a train row's audio is drawn from the pool anyway
            audio_name = None
    elif split != "train":
        skips.skip(SKIP_NO_AUDIO, where)
        return None
    image_path, size = files.image(img_id)
    if isinstance(size, str):
        skips.skip(size, str(image_path or files.images.directory / f"{img_id}.jpg"))
        return None
    mask_path = files.masks.path(f"{inst_id}.png")
    if mask_path is None:
        skips.skip(SKIP_MASK_MISSING, f"{inst_id}.png")
        return None
    mask = decode_mask(mask_path)
    if mask is None:
        skips.skip(SKIP_MASK_UNREADABLE, str(mask_path))
        return None
    measured = mask_box_area(mask, *size)
    if measured is None:
        skips.skip(SKIP_MASK_EMPTY, str(mask_path))
        return None
    instance = ImageInstance(
        source=SOURCE,
        image_id=img_id,
        annotation_id=inst_id,
        category=cls,
        source_label=cls,
        image_path=image_path,
        width=size[0],
        height=size[1],
        mask=MaskRef(png=mask_path),
        bbox=measured[0],
        area=measured[1],
        license=LICENSE,
    )
    return AVSSyntheticRow(
        split=split,
        category=cls,
        category_id=cid,
        source_dataset=get.get("source", ""),
        instance=instance,
        audio_name=audio_name,
        audio_path=audio_path,
    )
