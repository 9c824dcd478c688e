"""sources/avs_v3: the shipped GAVS split files, read back with the csv module (independent of the
reader), the k-shot files' naming and metadata filling, and the one-line errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from avsynth.errors import AvsynthError, SourceError
from avsynth.sources import avs_v3
from avsynth.sources.avs_v3 import (AVS_V3_SPLITS, AVSV3Split, avs_v3_unseen_classes, load_avs_v3_split,
                                    shipped_avs_v3)

SPLITS = Path(avs_v3.__file__).parent / "avs_v3_splits"
HEADER = "vid,uid,s_min,s_sec,a_obj,split,label\n"


def raw(name: str) -> list[dict]:
    with open(SPLITS / name, newline="") as fh:
        return list(csv.DictReader(fh))


def test_every_shipped_split_is_its_file():
    assert sorted(AVS_V3_SPLITS.values()) == sorted(p.name for p in SPLITS.glob("*.csv"))  # nine files
    for key, file in AVS_V3_SPLITS.items():
        rows = raw(file)
        table = shipped_avs_v3(key)
        assert list(table["uid"]) == [r["uid"] for r in rows], key
        assert set(table["split"]) == {key}  # named after the file, not its "split" column
        assert list(table["source_split"]) == [r["split"] for r in rows]
    assert len(shipped_avs_v3("1_shot_train")) == 11 and len(shipped_avs_v3("unseen")) == 758
    with pytest.raises(AvsynthError, match=r"^unknown AVS-V3 split 'seen'; known: seen_train, seen_val, unseen, "
                                           r"1_shot_train, 1_shot_test, 3_shot_train"):
        shipped_avs_v3("seen")


def test_unseen_classes_are_the_unseen_files_objects():
    objs = {o for r in raw("meta_v3_unseen.csv") for o in r["a_obj"].split("_") if o}
    want = sorted(objs - {"background", "off-the-screen"})
    assert avs_v3_unseen_classes() == want and len(want) == 14  # the 14 of the module docstring


def write(path: Path, body: str) -> Path:
    path.write_text(HEADER + body)
    return path


def test_k_shot_file_filled_from_metadata(tmp_path):
    meta = pd.DataFrame({"vid": ["a", "b"], "uid": ["a_1", "b_2"], "s_min": ["0", "1"], "s_sec": ["5", "7"],
                         "a_obj": ["dog", "cat_background"], "split": ["train", "test"], "label": ["v2", "v2"]})
    f = write(tmp_path / "v3_3_shot_train.csv", "b,b_2,,,,v3_1_shot_train,v2\na,a_1,0,9,own,v3_1_shot_train,v2\n")
    split = load_avs_v3_split(str(f), meta)
    assert isinstance(split, AVSV3Split) and split.name == "3_shot_train" and split.uids == ["b_2", "a_1"]
    t = split.table
    assert list(t.index) == [0, 1]
    assert list(t.columns) == ["vid", "uid", "s_min", "s_sec", "a_obj", "split", "label", "source_split",
                               "avsbench_split"]
    assert list(t["s_min"]) == ["1", "0"] and list(t["s_sec"]) == ["7", "9"]  # only empty cells filled
    assert list(t["a_obj"]) == ["cat_background", "own"]
    assert list(t["avsbench_split"]) == ["test", "train"]
    assert list(t["split"]) == ["3_shot_train", "3_shot_train"]
    assert list(t["source_split"]) == ["v3_1_shot_train"] * 2
    plain = load_avs_v3_split(f)  # no metadata: left as written, no avsbench_split column
    assert list(plain.table["s_min"]) == ["", "0"] and "avsbench_split" not in plain.table
    assert load_avs_v3_split(write(tmp_path / "meta_v3_seen_val.csv", "a,a_1,0,1,dog,x,v1s\n")).name == "seen_val"
    assert load_avs_v3_split(write(tmp_path / "custom.csv", "a,a_1,0,1,dog,x,v1s\n")).name == "custom"

    bad = write(tmp_path / "v3_1_shot_test.csv", "c,c_9,,,,x,v2\nd,d_9,,,,x,v2\nb,b_2,,,,x,v2\ne,e_9,,,,x,v2\nf,f_9,,,,x,v2\n")
    with pytest.raises(SourceError) as e:
        load_avs_v3_split(bad, meta)
    assert str(e.value) == f"{bad}: 4 uid(s) not in the metadata (first: ['c_9', 'd_9', 'e_9'])"
    lab = write(tmp_path / "v3_5_shot_test.csv", "a,a_1,,,,x,v3\na,a_1,,,,x,v9\n")
    with pytest.raises(SourceError) as e:
        load_avs_v3_split(lab)
    assert str(e.value) == f"{lab}: unknown label value(s) ['v3', 'v9']; expected ['v1s', 'v1m', 'v2']"
