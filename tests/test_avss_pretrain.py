"""AVSS pre-training on semantic shards (`avsynth build --semantic --semantic-classes avsbench`), then
the AVSBench AVSS fine-tune from its checkpoint (`--init`): a tiny demo build, the tiny one-stage
71-label AAVS (models/aavs-avss71-tiny.yaml). Expected class maps come from the stored PNGs and the
AVSS class list (../shared/data/labels/avsbench_avss_classes.csv), not from the code under test."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from avsynth.build import build
from avsynth.cli import app
from avsynth.errors import AvsynthError
from tests.test_mixing import options

CATEGORIES = "cat,dog,horse,guitar,piano,bird,car,bus,drum,violin"  # AVSBench has each under its own name
SIZES = {"train": 8, "validation": 4, "test": 2}
INPUT = 64  # aavs-avss71-tiny.yaml: Mask2Former input 64 x 64


@pytest.fixture(scope="module")
def semantic_shards(demo_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("avss-shards") / "out"
    build(options(out, demo_corpus, categories=CATEGORIES, sizes=dict(SIZES), sources_per_row=2, negatives=0.25,
                  semantic=True, semantic_classes="avsbench", rows_per_shard=4), progress=False)
    return out


def _train_rows(out: Path) -> list[dict]:
    return [r for p in sorted((out / "data").glob("train-*.parquet"))
            for r in pq.read_table(p, columns=["id", "category", "sources", "negative", "semantic_mask"]).to_pylist()]


def _nearest(png: np.ndarray, size: int) -> np.ndarray:
    """torch's legacy 'nearest' to size x size, by its definition: source index floor(i * in / out)."""
    h, w = png.shape
    rows = np.minimum(np.floor(np.arange(size) * h / size).astype(int), h - 1)
    cols = np.minimum(np.floor(np.arange(size) * w / size).astype(int), w - 1)
    return png[rows][:, cols]


def test_loss_gets_the_shards_avss_class_ids(semantic_shards, labels_dir, monkeypatch, tmp_path, one_torch_thread):
    from avsynth.modeling.aavs import Aavs
    from avsynth.training.avss import AVSSTrainConfig, train_avss

    with open(labels_dir / "avsbench_avss_classes.csv", newline="") as fh:
        avss = [r["name"] for r in csv.DictReader(fh)]
    rows = _train_rows(semantic_shards)
    expected = []
    kinds = {"mixed": 0, "negative": 0}
    for r in rows:
        png = np.asarray(Image.open(io.BytesIO(r["semantic_mask"]["bytes"])))
        ids = set(np.unique(png).tolist()) - {0}
        if r["negative"]:
            kinds["negative"] += 1
            assert ids == set()
        else:  # the row's sounding categories, as AVSS indices
            kinds["mixed"] += len(r["sources"]) > 1
            assert ids == {avss.index(s["category"]) for s in r["sources"]}
        expected.append(_nearest(png, INPUT).astype(np.int64))
    assert kinds["mixed"] >= 1 and kinds["negative"] >= 1  # both kinds of extended row are exercised

    fed: list[np.ndarray] = []
    real = Aavs.loss_from_labels

    def spy(self, outputs, mask_labels, class_labels):  # record, then the real loss
        for masks, classes in zip(mask_labels, class_labels):
            assert torch.equal(masks.sum(0), torch.ones_like(masks[0]))  # one class per pixel
            fed.append((masks.cpu() * classes.cpu()[:, None, None].float()).sum(0).long().numpy())
        return real(self, outputs, mask_labels, class_labels)

    monkeypatch.setattr(Aavs, "loss_from_labels", spy)
    result = train_avss(AVSSTrainConfig(root=None, out=tmp_path / "run", model="aavs-avss71-tiny",
                                        data=str(semantic_shards), epochs=2, batch_size=3, seed=0, device="cpu"))
    val_rows = sum(pq.ParquetFile(p).metadata.num_rows for p in (semantic_shards / "data").glob("validation-*.parquet"))
    assert result["train_rows"] == len(rows) and result["val_rows"] == val_rows
    assert len(fed) == 2 * len(rows)  # every row once per epoch
    for epoch in (fed[: len(rows)], fed[len(rows):]):
        assert sorted(m.tobytes() for m in epoch) == sorted(m.tobytes() for m in expected)
    assert (tmp_path / "run" / "best.pt").is_file()


def test_pretrained_checkpoint_starts_the_avss_fine_tune(semantic_shards, demo_corpus, tmp_path, one_torch_thread):
    from avsynth.modeling.checkpoint import read_checkpoint
    from avsynth.modeling.registry import build_model, load_config
    from avsynth.training.avss import load_init

    runner = CliRunner()
    pre = runner.invoke(app, ["train", "--data", str(semantic_shards), "--config", "aavs-avss71-tiny", "--epochs", "2",
                              "--batch-size", "4", "--device", "cpu", "--out", str(tmp_path / "pre")])
    assert pre.exit_code == 0, pre.output
    assert "AVSS mIoU" in pre.output
    best = tmp_path / "pre" / "best.pt"
    log = [json.loads(x) for x in (tmp_path / "pre" / "log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == [1, 2] and all(e["train_loss"] > 0 for e in log)

    # the fine-tune path's --init takes it: nothing missing, nothing unexpected, every weight loaded
    cfg = load_config("aavs-avss71-tiny")
    model = build_model(cfg)
    for n, p in model.named_parameters():
        if n.startswith("m2f."):
            p.requires_grad_(True)
    assert load_init(model, best, cfg) == {"missing": [], "unexpected": []}
    saved = read_checkpoint(best)["state_dict"]
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())

    root = str(demo_corpus.avsbench_root)
    ft = runner.invoke(app, ["train", "--avsbench", root, "--subset", "avss", "--config", "aavs-avss71-tiny",
                             "--init", str(best), "--epochs", "2", "--device", "cpu", "--out", str(tmp_path / "ft")])
    assert ft.exit_code == 0, ft.output
    result = json.loads((tmp_path / "ft" / "result.json").read_text())
    assert result["init"] == {"path": str(best), "missing": [], "unexpected": []}
    assert result["train_videos"] >= 1 and len(result["history"]) == 2

    # a binary checkpoint does not fit the 71-label model: one-line error
    from avsynth.modeling.checkpoint import save_checkpoint

    save_checkpoint(build_model(load_config("aavs-tiny")), tmp_path / "binary.pt")
    bad = runner.invoke(app, ["train", "--avsbench", root, "--subset", "avss", "--config", "aavs-avss71-tiny",
                              "--init", str(tmp_path / "binary.pt"), "--epochs", "2", "--device", "cpu",
                              "--out", str(tmp_path / "ft2")])
    assert bad.exit_code == 2 and "binary.pt" in bad.output and len(bad.output.strip().splitlines()) == 1


def test_shards_without_avss_ids_and_binary_configs_are_refused(semantic_shards, demo_corpus, tmp_path):
    from avsynth.training.avss import AVSSTrainConfig, train_avss
    from avsynth.training.trainer import TrainConfig, TrainError, train
    from tests._tiny_shards import make_shard_dir

    runner = CliRunner()

    def cli(data: Path, out: str):
        return runner.invoke(app, ["train", "--data", str(data), "--config", "aavs-avss71-tiny", "--epochs", "2",
                                   "--device", "cpu", "--out", str(tmp_path / out)])

    plain = make_shard_dir(tmp_path / "plain", rows={"train": 2, "validation": 1, "test": 1},
                           shards={"train": 1, "validation": 1, "test": 1})
    res = cli(plain, "a")
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
    assert str(plain) in res.output and "no semantic_mask column" in res.output

    manifest_ids = tmp_path / "manifest-ids"
    build(options(manifest_ids, demo_corpus, categories=CATEGORIES, sizes=dict(SIZES), semantic=True,
                  semantic_classes="manifest"), progress=False)
    assert json.loads((manifest_ids / "manifest.json").read_text())["arguments"]["semantic_classes"] == "manifest"
    res = cli(manifest_ids, "b")
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
    assert "manifest class ids, not the AVSS classes" in res.output and "--semantic-classes avsbench" in res.output
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()  # refused before any output

    with pytest.raises(AvsynthError, match="aavs-tiny: a binary config"):
        train_avss(AVSSTrainConfig(root=None, out=tmp_path / "c", model="aavs-tiny", data=str(semantic_shards)))
    with pytest.raises(AvsynthError, match="Stepping Stones needs stage-1 masks"):
        train_avss(AVSSTrainConfig(root=None, out=tmp_path / "d", model="stepping-stones-tiny",
                                   data=str(semantic_shards)))
    # the binary trainer does not take a 71-label model (it would train class 1 on the binary masks)
    with pytest.raises(TrainError, match="AVSS model"):
        train(TrainConfig(out=tmp_path / "e", model="aavs-avss71-tiny", data=str(semantic_shards), progress=False))


def test_an_epoch_serves_every_row_once_a_row_group_at_a_time(semantic_shards):
    from avsynth.modeling.registry import build_vggish_for, load_config
    from avsynth.training.avss_shards import SemanticShardRows

    shard_of = {r["id"]: p.name for p in sorted((semantic_shards / "data").glob("train-*.parquet"))
                for r in pq.read_table(p, columns=["id"]).to_pylist()}
    assert len(set(shard_of.values())) >= 3  # rows_per_shard 4: one row group per shard
    rows = SemanticShardRows(semantic_shards, "train", build_vggish_for(load_config("aavs-avss71-tiny")))
    orders = []
    for seed in (0, 1):
        ids = [i for u in rows.epoch(torch.Generator().manual_seed(seed), 3) for i in u.ids]
        assert sorted(ids) == sorted(shard_of)
        shards = [shard_of[i] for i in ids]
        assert sum(a != b for a, b in zip(shards, shards[1:])) == len(set(shards)) - 1  # groups contiguous
        orders.append(ids)
    assert orders[0] != orders[1]
