"""The GAVS AVS-V3 split files (zero-/few-shot on unseen classes) and their reader.

The split files of GAVS (AAAI 2024) are shipped in ``avs_v3_splits/`` beside this module (see its
``SOURCES.md``); :func:`shipped_avs_v3` reads one of them, :func:`load_avs_v3_split` any such file.
The uids name videos of the AVSBench semantic release (:mod:`avsynth.sources.avsbench`).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from avsynth.errors import AvsynthError, SourceError
from avsynth.sources.avsbench import LABELS, METADATA_COLUMNS, read_csv_table

#: The shipped AVS-V3 split files (GeWu-Lab/Generalizable-Audio-Visual-Segmentation, MIT).
AVS_V3_SPLITS = {
    "seen_train": "meta_v3_seen_train.csv",
    "seen_val": "meta_v3_seen_val.csv",
    "unseen": "meta_v3_unseen.csv",
    **{f"{k}_shot_{part}": f"v3_{k}_shot_{part}.csv" for k in (1, 3, 5) for part in ("train", "test")},
}
AVS_V3_SHOTS = (1, 3, 5)
#: Pseudo-labels of the AVS-V3 a_obj column that are not object classes.
NOT_CLASSES = frozenset({"background", "off-the-screen"})

@dataclass(frozen=True)
class AVSV3Split:
    """One GAVS AVS-V3 split file: its name (from the file name) and its rows."""

    name: str  # seen_train, seen_val, unseen, 1_shot_train, 3_shot_test, ...
    table: pd.DataFrame  # metadata columns; split = name; a_obj/s_min/s_sec filled if possible

    @property
    def uids(self) -> list[str]:
        return list(self.table["uid"])


def _v3_name(path: Path) -> str:
    stem = path.stem
    for prefix in ("meta_v3_", "v3_"):
        if stem.startswith(prefix):
            return stem[len(prefix):]
    return stem


def load_avs_v3_split(path: str | Path, metadata: pd.DataFrame | None = None) -> AVSV3Split:
    """Read an AVS-V3 split csv (``meta_v3_{seen_train,seen_val,unseen}.csv``,
    ``v3_{k}_shot_{train,test}.csv``).

    The k-shot files leave s_min / s_sec / a_obj empty and carry a meaningless ``split`` column
    (``v3_1_shot_train`` on every row); the split is therefore named after the file, and the
    empty fields are filled from ``metadata`` (``load_metadata``) when it is given. A uid missing
    from the given metadata is an error.
    """
    path = Path(path)
    df = read_csv_table(path, METADATA_COLUMNS)
    bad = sorted(set(df["label"]) - set(LABELS))
    if bad:
        raise SourceError(path, f"unknown label value(s) {bad}; expected {list(LABELS)}")
    df = df.copy()
    df["source_split"] = df["split"]
    df["split"] = _v3_name(path)
    if metadata is not None:
        ref = metadata.set_index("uid")
        unknown = sorted(set(df["uid"]) - set(ref.index))
        if unknown:
            raise SourceError(path, f"{len(unknown)} uid(s) not in the metadata (first: {unknown[:3]})")
        for col in ("s_min", "s_sec", "a_obj"):
            empty = df[col] == ""
            df.loc[empty, col] = ref.loc[df.loc[empty, "uid"], col].to_numpy()
        df["avsbench_split"] = ref.loc[df["uid"], "split"].to_numpy()
    return AVSV3Split(name=_v3_name(path), table=df.reset_index(drop=True))


def shipped_avs_v3(name: str) -> pd.DataFrame:
    """One shipped AVS-V3 split file (``name`` a key of :data:`AVS_V3_SPLITS`) as a DataFrame."""
    if name not in AVS_V3_SPLITS:
        raise AvsynthError(f"unknown AVS-V3 split {name!r}; known: {', '.join(AVS_V3_SPLITS)}")
    ref = resources.files("avsynth.sources").joinpath("avs_v3_splits").joinpath(AVS_V3_SPLITS[name])
    with resources.as_file(ref) as p:
        return load_avs_v3_split(p).table


def avs_v3_unseen_classes() -> list[str]:
    """The 14 unseen object classes of AVS-V3 (the objects of ``meta_v3_unseen``)."""
    objs = {o for a in shipped_avs_v3("unseen")["a_obj"] for o in a.split("_") if o}
    return sorted(objs - NOT_CLASSES)


__all__ = ["AVS_V3_SHOTS", "AVS_V3_SPLITS", "NOT_CLASSES", "AVSV3Split", "avs_v3_unseen_classes",
           "load_avs_v3_split", "shipped_avs_v3"]
