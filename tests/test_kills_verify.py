"""`avsynth verify` (shards/verify) on small hand-built shard directories, one fault at a time.
Written against the mutation survivors of `shards/verify` (issue 17). Each test writes real
shards with the real writer, makes one known fault, and expects exactly the problems that fault
must produce (messages stated here, from the fault's construction)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from avsynth.errors import AvsynthError
from avsynth.io import sha256_file
from avsynth.media.mask import encode_label_png, encode_png, mask_stats
from avsynth.shards.schema import POOL_SCHEMA, ROW_SCHEMA, arrow_schema
from avsynth.shards.verify import Problem, VerifyReport, verify_dir
from avsynth.shards.writer import write_shard
from tests.test_shards import _audio, make_row, make_shard_dir

EXT = arrow_schema(True, False)
SEM = arrow_schema(True, True)


def problems(root, **kw) -> list[str]:
    return [str(p) for p in verify_dir(root, **kw).problems]


def edit_record(root, fn):
    rec = json.loads((root / "manifest.json").read_text())
    fn(rec)
    (root / "manifest.json").write_text(json.dumps(rec))


def rewrite(root, rel, rows, schema=ROW_SCHEMA, row_group_size=None):
    """Replace shard ``rel`` with ``rows`` and record its new size and digest."""
    path = root / rel
    path.unlink(missing_ok=True)
    write_shard(rows, path, schema=schema, row_group_size=row_group_size, validate=False)

    def fix(rec):
        for e in rec["shards"] + rec.get("audio_pool", []):
            if e["path"] == rel:
                e.update(sha256=sha256_file(path), bytes=path.stat().st_size, rows=len(rows))
    edit_record(root, fix)


@pytest.fixture()
def small(tmp_path):
    """train: rows 0..3 in one shard, validation: rows 4..5; no audio pool."""
    return make_shard_dir(tmp_path / "ds", splits={"train": (4, 1), "validation": (2, 1)}, pool_per_category=0)


TRAIN = "data/train-00000-of-00001.parquet"
VAL = "data/validation-00000-of-00001.parquet"


# ------------------------------------------------------------------------------- the record


def test_record_structure_problems(small):
    assert problems(small) == []
    edit_record(small, lambda r: r.update(format="other/2"))
    assert problems(small) == ["manifest.json: format is 'other/2', expected 'avsynth-shards/1'"]
    edit_record(small, lambda r: (r.update(format="avsynth-shards/1"), r.pop("splits")))
    assert problems(small) == ["manifest.json: has no 'splits' entry"]
    edit_record(small, lambda r: r.update(audio_pool={"a": 1}))
    assert problems(small) == [
        "manifest.json: has no 'splits' entry", "manifest.json: 'shards' and 'audio_pool' must be lists",
        f"{TRAIN}: Parquet file not listed in manifest.json", f"{VAL}: Parquet file not listed in manifest.json"]
    (small / "manifest.json").write_text("[1, 2]")
    assert problems(small)[0] == "manifest.json: not a JSON object"
    (small / "manifest.json").write_bytes(b'{"format": "\xff"}')
    assert problems(small)[0].startswith("manifest.json: not valid JSON (")
    with pytest.raises(AvsynthError, match="not a directory"):
        verify_dir(small / "manifest.json")


def test_listing_problems(small):
    def bad_entries(rec):
        rec["shards"] += [{"path": "/abs/train-00000-of-00001.parquet", "rows": 0}, {"path": "data/../x.parquet"},
                          {"path": ""}, {"rows": 1}, "data/x.parquet", dict(rec["shards"][0])]
    edit_record(small, bad_entries)
    assert problems(small) == [
        "manifest.json: bad shard entry {'path': '/abs/train-00000-of-00001.parquet', 'rows': 0}",
        "manifest.json: bad shard entry {'path': 'data/../x.parquet'}",
        "manifest.json: bad shard entry {'path': ''}",
        "manifest.json: bad shard entry {'rows': 1}",
        "manifest.json: bad shard entry 'data/x.parquet'",
        f"{TRAIN}: listed twice in manifest.json",
    ]


def test_names_indices_and_counts_of_listed_shards(tmp_path):
    root = make_shard_dir(tmp_path / "ds", splits={"train": (6, 3)}, pool_per_category=0)
    assert problems(root) == []

    def fault(rec):
        a, b, c = rec["shards"]
        a.update(split="test", index=1, num_shards=4)  # the file name says train 0 of 3
        b["rows"] = -1
        c["rows"] = "2"
    edit_record(root, fault)
    got = problems(root)
    assert got[:5] == [
        "data/train-00000-of-00003.parquet: manifest says split 'test' but the file name says 'train'",
        "data/train-00000-of-00003.parquet: manifest index 1 differs from the file name",
        "data/train-00000-of-00003.parquet: manifest num_shards 4 differs from the file name",
        "data/train-00001-of-00003.parquet: manifest row count -1 is not a non-negative integer",
        "data/train-00002-of-00003.parquet: manifest row count '2' is not a non-negative integer",
    ]
    assert "data/train-00001-of-00003.parquet: has 2 rows, manifest says -1" in got
    assert "data/train-00002-of-00003.parquet: has 2 rows, manifest says -1" in got
    assert "manifest.json: split 'train' records 6 rows but its shards list 2" in got


def test_incomplete_or_inconsistent_shard_sets(tmp_path):
    root = make_shard_dir(tmp_path / "ds", splits={"train": (6, 3), "validation": (2, 1)}, pool_per_category=0)
    (root / "data" / "train-00001-of-00003.parquet").rename(root / "data" / "train-00001-of-00004.parquet")
    edit_record(root, lambda r: r["shards"][1].update(path="data/train-00001-of-00004.parquet", num_shards=4))
    assert problems(root) == ["manifest.json: split 'train' shards disagree on the shard count: [3, 4]"]
    root2 = make_shard_dir(tmp_path / "ds2", splits={"train": (6, 3)}, pool_per_category=0)

    def drop(rec):
        rec["shards"] = rec["shards"][:1]
        rec["splits"]["train"]["rows"] = 2
        rec["splits"]["train"]["per_category"] = {"dog": 1, "cat": 1}
    edit_record(root2, drop)
    (root2 / "data" / "train-00001-of-00003.parquet").unlink()
    (root2 / "data" / "train-00002-of-00003.parquet").unlink()
    assert problems(root2) == ["manifest.json: split 'train' lists 1 of 3 shards; missing indices [1, 2]"]
    # index >= count, an unknown split in a name, a pool shard of another split, a misplaced file
    (root2 / "data" / "train-00000-of-00003.parquet").rename(root2 / "data" / "extra-00003-of-00003.parquet")
    edit_record(root2, lambda r: r["shards"][0].update(path="data/extra-00003-of-00003.parquet", split=None,
                                                        index=None, num_shards=None))
    got = problems(root2)
    assert got[:3] == ["data/extra-00003-of-00003.parquet: unknown split 'extra' in file name",
                       "data/extra-00003-of-00003.parquet: shard index is not below the shard count",
                       "manifest.json: split 'extra' lists 1 of 3 shards; missing indices [0, 1, 2]"]


def test_pool_and_data_folders_and_pool_split(tmp_path):
    root = make_shard_dir(tmp_path / "ds", splits={"train": (2, 1)}, pool_per_category=2)
    assert problems(root) == []
    pool = "audio_pool/train-00001-of-00002.parquet"
    (root / pool).rename(root / "audio_pool/test-00001-of-00002.parquet")
    (root / "data" / "train-00000-of-00001.parquet").rename(root / "misplaced-00000-of-00001.parquet")

    def fix(rec):
        rec["audio_pool"][1]["path"] = "audio_pool/test-00001-of-00002.parquet"
        rec["shards"][0]["path"] = "misplaced-00000-of-00001.parquet"
    edit_record(root, fix)
    got = problems(root)
    assert got[:2] == [
        "misplaced-00000-of-00001.parquet: name does not follow data/{split}-{i:05d}-of-{n:05d}.parquet",
        "audio_pool/test-00001-of-00002.parquet: audio-pool shards hold the train split only",
    ]


# --------------------------------------------------------------------------------- the files


def test_file_level_problems(small):
    path = small / TRAIN
    size = path.stat().st_size
    edit_record(small, lambda r: r["shards"][0].update(bytes=size + 1))
    assert problems(small) == [f"{TRAIN}: size is {size} bytes, manifest says {size + 1} (truncated or altered)"]
    real = sha256_file(path)
    edit_record(small, lambda r: r["shards"][0].update(bytes=None, sha256="0123456789abcdef" * 4))
    assert problems(small) == [f"{TRAIN}: sha256 {real[:16]}... differs from the manifest's 0123456789abcdef..."]
    # a file whose digest is recorded but which is not Parquet
    path.write_bytes(b"not parquet at all")
    edit_record(small, lambda r: r["shards"][0].update(bytes=18, sha256=sha256_file(path)))
    got = problems(small)
    assert len(got) == 1 and got[0].startswith(f"{TRAIN}: not a readable Parquet file (")


def test_row_count_schema_and_features_problems(small):
    rewrite(small, TRAIN, [make_row(i, "train") for i in range(4)])
    edit_record(small, lambda r: r["shards"][0].update(rows=5))
    assert problems(small) == [f"{TRAIN}: has 4 rows, manifest says 5",
                               "manifest.json: split 'train' records 4 rows but its shards list 5"]
    # a pool file where a triplet shard belongs: wrong schema
    rewrite(small, TRAIN, [{"category": "dog", "category_id": 0, "audio_id": "a", "audio_label": "dog sound",
                            "audio": {"bytes": _audio(1), "path": None}, "audio_offset_s": 0.0,
                            "audio_seconds": 0.25}], schema=POOL_SCHEMA)
    got = problems(small)
    assert got[0] == f"{TRAIN}: schema differs from the expected one: {POOL_SCHEMA.names}"
    # the right columns with other 'huggingface' features metadata
    meta = dict(ROW_SCHEMA.metadata)
    features = json.loads(meta[b"huggingface"])
    features["info"]["features"]["image"] = {"_type": "Value", "dtype": "binary"}
    other = ROW_SCHEMA.with_metadata({**meta, b"huggingface": json.dumps(features).encode()})
    rewrite(small, TRAIN, [make_row(i, "train") for i in range(4)], schema=other)
    assert problems(small) == [f"{TRAIN}: the 'huggingface' features metadata differs from the expected features"]
    report = verify_dir(small)
    assert (report.counts["shards"], report.counts["rows"], report.counts["decoded_rows"]) == (1, 2, 2)


def test_split_totals_against_the_record(small):
    def fault(rec):
        rec["splits"]["train"]["rows"] = 3
        rec["splits"]["test"] = {"rows": 2}
        rec["splits"]["validation"] = 7
    edit_record(small, fault)
    assert problems(small) == [
        "manifest.json: split 'test' records 2 rows but its shards list 0",
        "manifest.json: split 'train' records 3 rows but its shards list 4",
        "manifest.json: split 'validation' records None rows but its shards list 2",
    ]
    edit_record(small, lambda r: r.update(splits=[1]))
    assert problems(small) == ["manifest.json: has no 'splits' entry"] or problems(small) == []


# ------------------------------------------------------------------------------- the columns


def test_duplicate_ids_categories_and_per_category_counts(small):
    rows = [make_row(i, "train") for i in range(4)]
    rows[2]["id"] = rows[0]["id"]
    rows[3]["category_id"] = 7
    rewrite(small, TRAIN, rows)
    assert problems(small) == [
        f"{TRAIN} row 2: id 'train-000000' also in {TRAIN}",
        f"{TRAIN} row 3: category 'dog' with id 7 is not in manifest.json's categories",
    ]
    # counts recorded as 0 for a category with no rows are fine; a wrong count is named
    edit_record(small, lambda r: r["splits"]["validation"]["per_category"].update(dog=0))  # rows: cat, bird
    rewrite(small, TRAIN, [make_row(i, "train") for i in range(4)])
    assert problems(small) == []
    edit_record(small, lambda r: r["splits"]["train"]["per_category"].update(dog=1, bird=2))  # rows: dog 2, cat 1, bird 1
    assert problems(small) == ["manifest.json: split 'train' per-category counts differ from the rows for ['bird', 'dog']"]
    # without categories in the record, ids are not checked
    edit_record(small, lambda r: (r.pop("categories"), r["splits"]["train"]["per_category"].update(dog=2, bird=1)))
    rows = [make_row(i, "train") for i in range(4)]
    rows[3]["category_id"] = 7
    rewrite(small, TRAIN, rows)
    assert problems(small) == []


# ---------------------------------------------------------------------- extended and semantic


def ext_row(i, split, sources, negative=False, semantic=None):
    row = make_row(i, split)
    row["sources"] = [{"category": c, "category_id": cid, "audio_id": a, "offset": 0.0, "gain_db": 0.0}
                      for c, cid, a in sources]
    row["negative"] = negative
    if sources:
        row["audio_id"] = "+".join(a for _, _, a in sources)
    if negative:
        empty = np.zeros((16, 24), bool)
        row["mask"] = {"bytes": encode_png(empty), "path": None}
        row["mask_area"], row["bbox"] = mask_stats(empty)
        row["bbox"] = list(row["bbox"])
    if semantic is not None:
        row["semantic_mask"] = {"bytes": encode_label_png(semantic), "path": None}
    return row


def ext_dir(tmp_path, rows_by_split, schema=EXT, arguments=None, semantic_classes=None):
    root = make_shard_dir(tmp_path / "ext", splits={s: (len(r), 1) for s, r in rows_by_split.items()},
                          pool_per_category=0)

    def fix(rec):
        rec["arguments"] = arguments or {"sources_per_row": 2}
        if semantic_classes is not None:
            rec["semantic_classes"] = semantic_classes
        for s, rows in rows_by_split.items():
            rec["splits"][s]["per_category"] = dict(__import__("collections").Counter(r["category"] for r in rows))
    edit_record(root, fix)
    for s, rows in rows_by_split.items():
        rewrite(root, f"data/{s}-00000-of-00001.parquet", rows, schema=schema)
    return root


def test_sources_of_extended_rows(tmp_path):
    good = [ext_row(0, "train", [("dog", 0, "a0"), ("cat", 1, "b0")]),
            ext_row(1, "train", [("cat", 1, "a1")]),
            ext_row(2, "train", [("bird", 2, "a2")], negative=True)]
    root = ext_dir(tmp_path, {"train": good})
    assert problems(root) == []
    rows = [ext_row(0, "train", []),  # no sources
            ext_row(1, "train", [("dog", 0, "a1")]),  # row category is cat (row 1)
            ext_row(2, "train", [("bird", 2, "a2"), ("bird", 2, "c2")]),
            ext_row(3, "train", [("dog", 0, "a3"), ("horse", 9, "c3")]),
            ext_row(4, "train", [("cat", 1, "a4")]),
            ext_row(5, "train", [("bird", 2, "a5"), ("dog", 0, "c5")], negative=True),
            ext_row(6, "train", [("dog", 0, "a6")])]
    rows[4]["audio_id"] = "zz"
    empty = np.zeros((16, 24), bool)
    rows[6]["mask"] = {"bytes": encode_png(empty), "path": None}
    rows[6]["mask_area"], rows[6]["bbox"] = 0.0, [0.0, 0.0, 0.0, 0.0]
    val = [ext_row(7, "validation", [("cat", 1, "a7"), ("dog", 0, "c3")])]  # c3 is a train clip
    root = ext_dir(tmp_path / "2", {"train": rows, "validation": val})
    got = [p for p in problems(root) if " row " in p]
    assert got == [
        f"{TRAIN} row 0: row has no sources",
        f"{TRAIN} row 1: first source 'dog' differs from the row's category 'cat'",
        f"{TRAIN} row 2: a category is listed twice in sources ['bird', 'bird']",
        f"{TRAIN} row 3: source category 'horse' with id 9 is not in manifest.json",
        f"{TRAIN} row 4: audio_id 'zz' differs from the sources' clips 'a4'",
        f"{TRAIN} row 5: a negative row must have one source and an empty mask",
        f"{TRAIN} row 6: a positive row has an empty mask",
        f"{VAL} row 0: source clip c3 is in both 'train' and 'validation'",
    ]
    # a negative row with one source but a non-empty mask
    neg = ext_row(0, "train", [("dog", 0, "a0")], negative=True)
    m = np.zeros((16, 24), bool)
    m[2:4, 2:4] = True
    neg["mask"] = {"bytes": encode_png(m), "path": None}
    neg["mask_area"], bbox = mask_stats(m)
    neg["bbox"] = list(bbox)
    root = ext_dir(tmp_path / "3", {"train": [neg]})
    assert problems(root) == [f"{TRAIN} row 0: a negative row must have one source and an empty mask"]


def test_semantic_masks_agree_with_the_mask_and_the_sources(tmp_path):
    def sem_of(row, value):
        from avsynth.media.mask import decode_png
        return np.where(decode_png(row["mask"]["bytes"]), value, 0).astype(np.uint8)

    classes = {"dog": 3, "cat": 5, "bird": 7}
    args = {"semantic": True}
    rows = [ext_row(i, "train", [(c, cid, f"a{i}")]) for i, (c, cid) in enumerate([("dog", 0), ("cat", 1), ("bird", 2)])]
    for r, v in zip(rows, (3, 5, 7)):
        r["semantic_mask"] = {"bytes": encode_label_png(sem_of(r, v)), "path": None}
    root = ext_dir(tmp_path, {"train": rows}, schema=SEM, arguments=args, semantic_classes=classes)
    assert problems(root) == []
    bad = [dict(r) for r in rows]
    bad[0]["semantic_mask"] = {"bytes": encode_label_png(sem_of(rows[0], 5)), "path": None}  # cat's id on a dog row
    shifted = np.zeros((16, 24), np.uint8)
    shifted[0, 0] = 5
    bad[1]["semantic_mask"] = {"bytes": encode_label_png(shifted), "path": None}
    bad[2]["semantic_mask"] = {"bytes": encode_label_png(np.zeros((4, 4), np.uint8)), "path": None}
    root = ext_dir(tmp_path / "2", {"train": bad}, schema=SEM, arguments=args, semantic_classes=classes)
    n1 = int(np.count_nonzero((shifted > 0) != (sem_of(rows[1], 5) > 0)))
    assert problems(root) == [
        f"{TRAIN} row 0: semantic_mask has class ids [5] not of the row's sources",
        f"{TRAIN} row 1: semantic_mask > 0 differs from the mask in {n1} pixels",
        f"{TRAIN} row 2: semantic_mask is 4x4, mask is 24x16",
    ]
    # without a class table in the record the ids are not checked; a broken PNG is named
    bad[1] = rows[1]
    bad[2] = dict(rows[2], semantic_mask={"bytes": b"garbage", "path": None})
    root = ext_dir(tmp_path / "3", {"train": bad}, schema=SEM, arguments=args)
    got = problems(root)
    assert len(got) == 1 and got[0].startswith(f"{TRAIN} row 2: semantic_mask: not a decodable label image")
    # a negative row allows no class id
    neg = ext_row(3, "train", [("dog", 0, "n3")], negative=True, semantic=np.zeros((16, 24), np.uint8))
    root = ext_dir(tmp_path / "4", {"train": [neg]}, schema=SEM, arguments=args, semantic_classes=classes)
    assert problems(root) == []


# ------------------------------------------------------------------------------------ decoding


def test_decoded_media_must_match_the_row(small):
    rows = [make_row(i, "train") for i in range(4)]
    rows[0]["width"] = 25  # image is 24x16
    rows[1]["mask_area"] = rows[1]["mask_area"] + 0.01
    rows[2]["bbox"] = [rows[2]["bbox"][0] + 0.01] + rows[2]["bbox"][1:]
    rows[3]["audio_seconds"] = 0.5  # the clip has 0.25 s = 4000 samples
    rewrite(small, TRAIN, rows)
    m1 = rows[1]["mask_area"]
    got = problems(small)
    assert got == [
        f"{TRAIN} row 0: image is 24x16, row says 25x16",
        f"{TRAIN} row 0: mask is 24x16, image is 25x16",
        f"{TRAIN} row 1: mask area {m1 - 0.01:.6f} differs from stored mask_area {m1:.6f}",
        f"{TRAIN} row 2: mask box {tuple(round(v, 4) for v in make_row(2, 'train')['bbox'])} differs from stored "
        f"bbox {[float(np.float32(v)) for v in rows[2]['bbox']]}",  # stored as float32
        f"{TRAIN} row 3: audio has 4000 samples at 16000 Hz, expected 8000 for 0.5 s",
    ]


def test_decode_tolerances_and_broken_media(small):
    rows = [make_row(i, "train") for i in range(4)]
    rows[0]["mask_area"] += 0.5e-4  # within 1e-4
    rows[0]["bbox"] = [v + 0.5e-4 for v in rows[0]["bbox"]]
    rows[1]["audio_seconds"] = 0.25 + 1 / 16000  # one sample off: tolerated
    rows[2]["bbox"] = None
    rows[3]["image"] = {"bytes": b"\xff\xd8junk", "path": None}
    rows[3]["mask"] = {"bytes": b"junk", "path": None}
    rows[3]["audio"] = {"bytes": b"junk", "path": None}
    rewrite(small, TRAIN, rows)
    got = problems(small)
    box = tuple(round(v, 4) for v in make_row(2, "train")["bbox"])
    assert got[0] == f"{TRAIN} row 2: mask box {box} differs from stored bbox None"
    assert [g.split(":")[0] + ":" + g.split(":")[1] for g in got[1:]] == [
        f"{TRAIN} row 3: image", f"{TRAIN} row 3: mask", f"{TRAIN} row 3: audio"]
    assert len(got) == 4
    rows[1]["audio_seconds"] = 0.25 + 2 / 16000  # two samples off: a problem
    rows[2:] = [make_row(2, "train"), make_row(3, "train")]
    rewrite(small, TRAIN, rows)
    assert problems(small) == [f"{TRAIN} row 1: audio has 4000 samples at 16000 Hz, expected 4002 for {float(np.float32(0.250125))} s"]
    # missing media structs
    rows[1] = make_row(1, "train")
    rows[2]["image"], rows[2]["mask"], rows[2]["audio"] = None, None, None
    rewrite(small, TRAIN, rows)
    assert problems(small) == [f"{TRAIN} row 2: image has no bytes", f"{TRAIN} row 2: mask has no bytes",
                               f"{TRAIN} row 2: audio has no bytes"]


def test_sampling_and_row_groups_find_the_bad_row(tmp_path):
    root = make_shard_dir(tmp_path / "ds", splits={"train": (9, 2)}, pool_per_category=4)
    rel = "data/train-00001-of-00002.parquet"  # rows 5..8 of the split
    rows = [make_row(i, "train") for i in range(5, 9)]
    rows[3]["width"] = 30  # file row 3, in the second row group of 2
    rewrite(root, rel, rows, row_group_size=2)
    assert problems(root) == [f"{rel} row 3: image is 24x16, row says 30x16",
                              f"{rel} row 3: mask is 24x16, image is 30x16"]
    report = verify_dir(root)
    assert report.counts["decoded_rows"] == 9 and report.counts["decoded_pool_rows"] == 12
    assert (report.counts["shards"], report.counts["pool_shards"], report.counts["pool_rows"]) == (2, 2, 12)
    found = []
    for seed in range(12):
        rep = verify_dir(root, sample=3, seed=seed)
        assert rep.counts["decoded_rows"] == 3 and rep.counts["decoded_pool_rows"] == 3
        found.append(bool(rep.problems))
    assert any(found) and not all(found)  # 3 of 9 rows: the bad one is sometimes drawn
    assert verify_dir(root, sample=3, seed=4).problems == verify_dir(root, sample=3, seed=4).problems
    assert verify_dir(root, sample=9).counts["decoded_rows"] == 9
    assert verify_dir(root, sample=50).counts["decoded_pool_rows"] == 12
    zero = verify_dir(root, sample=0)
    assert zero.counts["decoded_rows"] == 0 and zero.counts["decoded_pool_rows"] == 0 and zero.ok


def test_progress_reports_each_phase_to_its_total(small):
    calls = []
    verify_dir(small, progress=lambda phase, done, total: calls.append((phase, done, total)))
    assert calls == [("checksums", 0, 2), ("checksums", 1, 2), ("checksums", 2, 2),
                     ("decode rows (shards)", 0, 2), ("decode rows (shards)", 1, 2), ("decode rows (shards)", 2, 2),
                     ("decode audio pool (shards)", 0, 0)]


def test_summary_lines():
    rep = VerifyReport(directory=__import__("pathlib").Path("/d"))
    rep.counts.update(shards=2, rows=7, pool_shards=1, pool_rows=3, decoded_rows=7, decoded_pool_rows=3)
    head = "/d: 2 shards, 7 rows, 1 audio-pool shards (3 clips); decoded 7 rows and 3 pool clips"
    assert rep.ok and rep.summary() == head + "\nOK"
    for k in range(4):
        rep.add("data/x.parquet", f"problem {k}", row=k if k % 2 else None)
    assert not rep.ok
    assert rep.summary(max_lines=2) == "\n".join([head, "4 problem(s):", "  - data/x.parquet: problem 0",
                                                  "  - data/x.parquet row 1: problem 1", "  ... and 2 more"])
    assert rep.summary().count("\n  - ") == 4 and "more" not in rep.summary()
    assert str(Problem("p", 0, "m")) == "p row 0: m"
