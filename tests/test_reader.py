"""ShardReader and the torch datasets: projection, worker/rank sharding, shuffling, re-pairing."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from torch.utils.data import DataLoader

from avsynth.errors import AvsynthError
from avsynth.shards.reader import AudioPool, ShardReader, TripletDataset, TripletIterableDataset
from tests.test_shards import CATEGORIES, make_row, make_shard_dir


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory):
    # 30 train rows in 3 shards of row groups of 4 -> 9 row groups; a pool of 6 clips per category
    return make_shard_dir(
        tmp_path_factory.mktemp("reader") / "ds",
        splits={"train": (30, 3), "validation": (6, 1)},
        pool_per_category=6,
        row_group_size=4,
    )


def _collate(batch):
    return batch


def test_reader_len_groups_and_projection(shard_dir):
    r = ShardReader(shard_dir, "train", columns=["id", "category"])
    assert len(r) == 30 and r.num_row_groups == 9
    table = r.read_row_group(0)
    assert table.column_names == ["id", "category"] and table.num_rows == 4
    ids = [row["id"] for row in r.iter_rows()]
    assert ids == [f"train-{i:06d}" for i in range(30)]
    assert sum(t.num_rows for t in r.iter_batches()) == 30
    assert r.locate(0) == (0, 0) and r.locate(5) == (1, 1) and r.locate(29) == (8, 1)
    with pytest.raises(IndexError):
        r.locate(30)
    with pytest.raises(AvsynthError, match="no data/test"):
        ShardReader(shard_dir, "test")


def test_reader_lists_by_pattern_without_manifest(tmp_path):
    root = make_shard_dir(tmp_path / "ds", splits={"train": (5, 2)}, pool_per_category=0)
    (root / "manifest.json").unlink()
    assert [row["id"] for row in ShardReader(root, "train", ["id"]).iter_rows()] == [f"train-{i:06d}" for i in range(5)]


def test_reader_through_fsspec_url(shard_dir):
    r = ShardReader(f"file://{shard_dir}", "validation", columns=["id"])
    assert len(r) == 6 and r.read_row_group(0).num_rows == 4


def test_reader_on_a_non_local_filesystem(shard_dir):
    import fsspec
    mem = fsspec.filesystem("memory")
    for path in shard_dir.rglob("*"):
        if path.is_file():
            mem.pipe(f"/avs/{path.relative_to(shard_dir).as_posix()}", path.read_bytes())
    ds = TripletDataset("memory://avs", "validation")
    assert len(ds) == 6 and ds[5]["image"].shape == (3, 16, 24)
    it = TripletIterableDataset("memory://avs", "train", seed=2, shuffle_buffer=4)
    rows = list(it)
    assert len(rows) == 30 and all(r["audio_id"].startswith("pool-") for r in rows)


def test_map_style_decodes(shard_dir):
    ds = TripletDataset(shard_dir, "validation", mask_dtype=torch.float32)
    assert len(ds) == 6
    s = ds[2]
    assert s["image"].dtype == torch.uint8 and s["image"].shape == (3, 16, 24)
    assert s["mask"].dtype == torch.float32 and s["mask"].shape == (16, 24)
    assert s["audio"].dtype == torch.float32 and s["audio"].shape == (4000,) and s["sample_rate"] == 16000
    expected = make_row(30 + 2, "validation")
    assert s["id"] == expected["id"] and s["category"] == expected["category"]
    assert float(s["mask"].mean()) == pytest.approx(expected["mask_area"])
    assert ds[-1]["id"] == "validation-000035"
    raw = TripletDataset(shard_dir, "validation", decode=False, transform=lambda row, i: (i, row))
    i, row = raw[2]  # encoded media, and the row's index for the transform
    assert i == 2 and row["id"] == expected["id"] and isinstance(row["image"]["bytes"], bytes)


def test_workers_cover_each_row_exactly_once(shard_dir):
    ds = TripletIterableDataset(shard_dir, "train", seed=1, shuffle_buffer=8, repair_audio=False, decode=False)
    loader = DataLoader(ds, batch_size=None, num_workers=2, collate_fn=_collate)
    ids = [row["id"] for row in loader]
    assert Counter(ids) == Counter(f"train-{i:06d}" for i in range(30))
    assert ids != sorted(ids)


def _rank_rows(shard_dir, rank, even, epoch=4):
    ds = TripletIterableDataset(
        shard_dir, "train", seed=3, repair_audio=False, decode=False, rank=rank, world_size=2, even_ranks=even
    )
    ds.set_epoch(epoch)
    return len(ds), [row["id"] for row in DataLoader(ds, batch_size=None, num_workers=2, collate_fn=_collate)]


def test_ranks_and_workers_partition_rows(shard_dir):
    seen: list[str] = []
    for rank in range(2):
        n, rows = _rank_rows(shard_dir, rank, even=False)
        assert len(rows) == n
        seen += rows
    assert sorted(seen) == [f"train-{i:06d}" for i in range(30)]


def test_even_ranks_yield_equal_counts_without_duplicates(shard_dir):
    for epoch in range(2):
        (n0, r0), (n1, r1) = _rank_rows(shard_dir, 0, True, epoch), _rank_rows(shard_dir, 1, True, epoch)
        assert n0 == n1 == len(r0) == len(r1)
        full = [_rank_rows(shard_dir, r, False, epoch)[0] for r in range(2)]
        assert sum(full) == 30 and n0 == min(full)  # only the larger rank's surplus is dropped
        assert len(set(r0) | set(r1)) == n0 + n1


def test_shuffle_is_deterministic_and_changes_with_epoch(shard_dir):
    def order(seed, epoch):
        ds = TripletIterableDataset(shard_dir, "train", seed=seed, shuffle_buffer=6, repair_audio=False, decode=False)
        ds.set_epoch(epoch)
        return [row["id"] for row in ds]

    a = order(0, 0)
    assert a == order(0, 0)
    assert a != order(0, 1) and a != order(1, 0)
    assert sorted(a) == sorted(order(0, 1))
    plain = TripletIterableDataset(shard_dir, "train", shuffle=False, repair_audio=False, decode=False)
    assert [row["id"] for row in plain] == [f"train-{i:06d}" for i in range(30)]


def test_repairing_draws_same_category_and_changes_with_epoch(shard_dir):
    pool = AudioPool(shard_dir)
    assert len(pool) == 6 * len(CATEGORIES) and pool.categories() == sorted(c for c, _ in CATEGORIES)

    def audio_ids(epoch):
        ds = TripletIterableDataset(shard_dir, "train", seed=5, shuffle=False)
        ds.set_epoch(epoch)
        out = {}
        for s in ds:
            assert s["audio_id"].startswith(f"pool-{s['category']}-")
            assert s["audio_label"] == f"{s['category']} sound"
            assert s["audio"].shape == (4000,)
            out[s["id"]] = s["audio_id"]
        return out

    e0, e1 = audio_ids(0), audio_ids(1)
    assert len(e0) == 30
    assert e0 == audio_ids(0)
    assert sum(e0[k] != e1[k] for k in e0) >= 10  # 6 clips per category: most rows change
    assert len(set(e0.values())) > 6


def test_repairing_off_keeps_original_audio(shard_dir):
    ds = TripletIterableDataset(shard_dir, "train", shuffle=False, repair_audio=False)
    first = next(iter(ds))
    assert first["audio_id"] == "trainclip0"
    val = TripletIterableDataset(shard_dir, "validation", shuffle=False)
    assert val.pool is None and next(iter(val))["audio_id"] == "validationclip30"
