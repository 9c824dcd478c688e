"""AVS-Synthetic release reader: header detection, restricted unpickling, per-row skips."""

from __future__ import annotations

import os
import pickle

import pytest

from avsynth.errors import SourceError
from avsynth.sources import avs_synthetic as A
from avsynth.sources.records import SkipCounter
from tests.fixtures import AVS_HEADER, write_avs_release

ROWS = [
    dict(inst_id="lvis_1204", img_id="000000391895", photo="dog.jpg", class_name="dog", class_id=4,
         source="lvis", split="train", audio_name="", box=(100, 50, 300, 200)),
    dict(inst_id="lvis_0007", img_id="000000391895", photo="dog.jpg", class_name="dog", class_id=4,
         source="lvis", split="train", audio_name="dogA_000010", box=(0, 0, 10, 10)),
    dict(inst_id="oi_77", img_id="f00dfeedbeef0001", photo="truck.jpg", class_name="truck",
         class_id=9, source="openimages", split="validate", audio_name="truckA_000030",
         box=(300, 200, 900, 600)),
    dict(inst_id="lvis_3", img_id="000000000139", photo="dogs.jpg", class_name="dog", class_id=4,
         source="lvis", split="test", audio_name="dogB_000000", box=(5, 6, 7, 8)),
]  # fmt: skip
POOL = {4: ["dogA_000010", "dogC_000020"], 9: ["truckA_000030"]}


@pytest.fixture
def release(tmp_path, real_dir):
    return write_avs_release(tmp_path / "avs", real_dir, ROWS, POOL)


def test_reads_release(release):
    rel = A.read_release(release)
    assert [(r.split, r.instance.image_id, r.instance.annotation_id) for r in rel.rows] == [
        ("train", "000000391895", "lvis_0007"), ("train", "000000391895", "lvis_1204"),
        ("validation", "f00dfeedbeef0001", "oi_77"), ("test", "000000000139", "lvis_3"),
    ]  # fmt: skip
    train = rel.rows[1]
    assert train.audio_name is None and train.audio_path is None  # drawn from the pool
    assert train.category == "dog" and train.category_id == 4 and train.source_dataset == "lvis"
    inst = train.instance
    assert inst.source == "avs-synthetic" and (inst.width, inst.height) == (800, 534)
    assert inst.image_path == release / "images" / "000000391895.jpg"
    assert inst.mask.png == release / "masks" / "lvis_1204.png"
    assert inst.bbox == (100.0, 50.0, 300.0, 200.0) and inst.area == 60000.0
    assert rel.rows[0].audio_path == release / "audios" / "dogA_000010.wav"
    val = rel.rows[2]
    assert val.audio_name == "truckA_000030" and val.audio_path.is_file()
    assert rel.audio_pool == POOL
    assert rel.categories == {4: "dog", 9: "truck"}
    assert rel.columns["instance_id"] == "inst_id" and rel.columns["audio"] == "audio_name"
    assert rel.skips.total == 0


def test_other_header_spellings(tmp_path, real_dir):
    header = ("instance_id", "image_id", "category", "category_id", "dataset", "split", "audio_id")
    root = write_avs_release(tmp_path / "r", real_dir, ROWS, POOL, header=header)
    rel = A.read_release(root)
    assert len(rel.rows) == 4 and rel.columns["class_name"] == "category"


def test_missing_fields_are_named(tmp_path, real_dir):
    header = ("inst_id", "picture", "class_name", "split", "whatever")
    root = write_avs_release(tmp_path / "r", real_dir, ROWS, POOL, header=header)
    with pytest.raises(SourceError) as info:
        A.read_release(root)
    msg = str(info.value)
    assert "annotations.csv" in msg
    assert "['image_id', 'class_id', 'audio']" in msg and "picture" in msg and "whatever" in msg


def test_refuses_malicious_pickle(release, tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (release / A.POOL_FILE).write_bytes(pickle.dumps({4: Evil()}))
    with pytest.raises(SourceError, match=r"refusing to unpickle (posix|os|nt)\.system") as info:
        A.read_release(release)
    assert A.POOL_FILE in str(info.value)
    assert not marker.exists()


def test_refuses_non_builtin_classes(tmp_path):
    import collections

    p = tmp_path / "p.pkl"
    p.write_bytes(pickle.dumps(collections.OrderedDict(a=1)))
    with pytest.raises(SourceError, match="refusing to unpickle collections.OrderedDict"):
        A.safe_unpickle(p)
    p.write_bytes(pickle.dumps({1: {"a", "b"}, 2: ("x", 1.5, None, True)}, protocol=2))
    assert A.safe_unpickle(p) == {1: {"a", "b"}, 2: ("x", 1.5, None, True)}


@pytest.mark.parametrize(
    "payload, problem",
    [
        (b"not a pickle", "not a valid pickle"),
        (b"", "not a valid pickle"),
        (pickle.dumps([1, 2]), "expected a dict"),
        (pickle.dumps({"x": ["a"]}), "class id 'x' is not an integer"),
        (pickle.dumps({1: [1, 2]}), "expected a list of audio names"),
    ],
)
def test_bad_pool_files(release, payload, problem):
    (release / A.POOL_FILE).write_bytes(payload)
    with pytest.raises(SourceError, match=problem):
        A.read_release(release)


def test_pool_coercions_and_missing_pool_audio(release):
    (release / A.POOL_FILE).write_bytes(
        pickle.dumps({"4": {"dogC_000020", "dogA_000010"}, 9.0: "truckA_000030"})
    )
    (release / "audios" / "dogC_000020.wav").unlink()
    rel = A.read_release(release)
    assert rel.audio_pool == {4: ["dogA_000010"], 9: ["truckA_000030"]}
    assert rel.skips.counts[A.SKIP_POOL_MISSING] == 1


def test_missing_and_corrupt_files_are_counted(release):
    (release / "masks" / "lvis_0007.png").unlink()
    (release / "images" / "f00dfeedbeef0001.jpg").write_bytes(b"garbage")
    (release / "audios" / "dogB_000000.wav").write_bytes(b"RIFF garbage")
    skips = SkipCounter()
    rel = A.read_release(release, skips)
    assert [r.instance.annotation_id for r in rel.rows] == ["lvis_1204"]
    assert skips.counts[A.SKIP_MASK_MISSING] == 1
    assert skips.counts[A.SKIP_IMAGE_UNREADABLE] == 1
    assert skips.counts[A.SKIP_AUDIO_UNREADABLE] == 1
    assert rel.skips is skips


def test_bad_rows_are_counted(release):
    csv_path = release / "annotations.csv"
    lines = csv_path.read_text().splitlines()
    lines += [
        "x1,000000391895,534,800,dog,4,lvis,holdout,",  # unknown split
        "x2,000000391895,534,800,dog,four,lvis,train,",  # bad class id
        "x3,000000391895",  # short row
        "x4,000000391895,534,800,dog,4,lvis,test,",  # evaluation row without audio
        "x5,000000391895,534,800,dog,4,lvis,test,gone_000001",  # audio file missing
        "x6,nonexistent,534,800,dog,4,lvis,train,",  # image missing
    ]
    csv_path.write_text("\n".join(lines) + "\n")
    skips = SkipCounter()
    assert len(A.read_release(release, skips).rows) == 4
    assert skips.counts[A.SKIP_SPLIT] == 1 and skips.counts[A.SKIP_MALFORMED] == 2
    assert skips.counts[A.SKIP_NO_AUDIO] == 1 and skips.counts[A.SKIP_AUDIO_MISSING] == 1
    assert skips.counts[A.SKIP_IMAGE_MISSING] == 1


def test_empty_mask_is_counted(release):
    from PIL import Image

    Image.new("L", (800, 534)).save(release / "masks" / "lvis_1204.png")
    skips = SkipCounter()
    assert len(A.read_release(release, skips).rows) == 3
    assert skips.counts[A.SKIP_MASK_EMPTY] == 1


def test_missing_pieces_are_clear_errors(tmp_path, release):
    with pytest.raises(SourceError, match="AVS-Synthetic release directory not found"):
        A.read_release(tmp_path / "nothing")
    (release / "category_for_vggsound_audios.pkl").unlink()
    with pytest.raises(
        SourceError, match="category_for_vggsound_audios.pkl: pickle file not found"
    ):
        A.read_release(release)
    (release / "annotations.csv").unlink()
    with pytest.raises(SourceError, match="annotations.csv: AVS-Synthetic annotations not found"):
        A.read_release(release)


def test_missing_folder_is_a_clear_error(release):
    import shutil

    shutil.rmtree(release / "masks")
    with pytest.raises(SourceError, match="masks: release folder not found"):
        A.read_release(release)


def test_header_order_of_the_official_loader():
    """The official loader unpacks 9 columns: inst, img, _, _, class, class id, dataset, _, audio."""
    assert len(AVS_HEADER) == 9
    cols = A.detect_columns("annotations.csv", list(AVS_HEADER))
    assert [
        cols[f] for f in ("instance_id", "image_id", "class_name", "class_id", "source", "audio")
    ] == [0, 1, 4, 5, 6, 8]
