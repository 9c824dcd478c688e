"""The trainer: recipe, data, validation over ranks, exact resume, 2-process gloo, AVSBench
fine-tuning, logs, and the core check that a tiny SAMA-AVS learns to listen on the demo corpus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from avsynth.errors import AvsynthError
from avsynth.modeling.checkpoint import load_checkpoint, read_checkpoint
from avsynth.modeling import build_model
from avsynth.modeling.registry import load_config
from avsynth.sources.avsbench import AVSBenchSource, select_videos
from avsynth.training.data import (
    InputSpec,
    ShardRowTransform,
    collate,
    model_target,
    shard_frames,
)
from avsynth.training.embeddings import build_audio_embeddings, bytes_key
from avsynth.training.recipe import CosineSchedule, resolve_recipe
from avsynth.training.trainer import TrainConfig, TrainError, train
from tests._tiny_shards import make_shard_dir

REPO = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_shards(tmp_path_factory) -> Path:
    return make_shard_dir(tmp_path_factory.mktemp("shards") / "tiny",
                          rows={"train": 12, "validation": 6, "test": 2},
                          shards={"train": 2, "validation": 1, "test": 1})


def _config(out: Path, data: Path | None, **kw) -> TrainConfig:
    base = {"out": out, "model": "sama-avs-tiny", "data": None if data is None else str(data), "epochs": 2,
            "batch_size": 4, "lr": 1e-3, "num_workers": 0, "progress": False, "log_every": 1}
    base.update(kw)
    return TrainConfig(**base)


# --------------------------------------------------------------------------- recipe


def test_recipe_follows_the_paper_config_and_overrides():
    r = resolve_recipe(load_config("sama-avs-vit-h")["train"], {})
    assert (r.lr, r.lr_min, r.epochs, r.batch_size, r.lr_schedule) == (2e-4, 1e-7, 80, 4, "cosine")
    r2 = resolve_recipe(load_config("sama-avs-vit-h")["train"], {"lr": 1e-3, "epochs": 3, "batch_size": None})
    assert (r2.lr, r2.epochs, r2.batch_size) == (1e-3, 3, 4)
    assert resolve_recipe(load_config("gavs-vit-b")["train"], {}).lr == 1e-3
    with pytest.raises(AvsynthError, match="unknown keys"):
        resolve_recipe({"learning_rate": 1}, {})
    tiny = resolve_recipe({"unfreeze": ["sam.image_encoder."]}, {"unfreeze": None})
    assert tiny.unfreeze == ("sam.image_encoder.",) and r.unfreeze == ()
    assert resolve_recipe({"unfreeze": ["a."]}, {"unfreeze": ("b.",)}).unfreeze == ("b.",)
    with pytest.raises(AvsynthError, match="prefixes"):
        resolve_recipe({"unfreeze": [1]}, {})
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = CosineSchedule(opt, r)
    assert sched.set(0.0) == pytest.approx(2e-4)
    assert sched.set(0.5) == pytest.approx((2e-4 + 1e-7) / 2)
    assert sched.set(1.0) == pytest.approx(1e-7)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-7)


# --------------------------------------------------------------------------- data


def test_samples_use_the_model_preprocessing_and_cached_embeddings(tiny_shards, tmp_path):
    cfg = load_config("sama-avs-tiny")
    emb = build_audio_embeddings(cfg, tmp_path / "cache")
    spec = InputSpec(64, "longest")
    ds = shard_frames(tiny_shards, "validation", ShardRowTransform(spec, emb, keep_mask=True))
    s = ds[1]
    h, w = s["original_size"]
    assert s["image"].shape == (3, 64, 64) and s["target"].shape == (64, 64)
    assert max(s["input_size"]) == 64
    assert s["mask"].shape == (h, w) and s["audio"].shape == (128,)
    ih, iw = s["input_size"]
    assert s["target"][ih:, :].sum() == 0 and s["target"][:, iw:].sum() == 0  # padding is background
    assert emb.misses == 1
    again = ds[1]
    assert emb.hits == 1 and torch.equal(again["audio"], s["audio"])
    fresh = build_audio_embeddings(cfg, tmp_path / "cache")  # another process / run
    row = ds.reader.read_row_group(0).slice(1, 1).to_pylist()[0]
    vec = fresh.embed(bytes_key(row["audio"]["bytes"]), lambda: pytest.fail("should be a disk hit"))
    assert fresh.disk_hits == 1 and torch.equal(vec, s["audio"])
    batch = collate([ds[0], ds[1]])
    assert batch["image"].shape == (2, 3, 64, 64) and batch["index"].tolist() == [0, 1]
    assert isinstance(batch["mask"], list) and len(batch["mask"]) == 2


def test_model_target_places_mask_like_the_image():
    mask = np.zeros((10, 20), dtype=bool)
    mask[:, 10:] = True
    t = model_target(mask, (8, 16), 16)
    assert t.shape == (16, 16) and t[:8, 8:].all() and t[:8, :8].sum() == 0 and t[8:].sum() == 0


def test_select_videos_fraction_and_k_shot_are_seeded_per_class():
    from avsynth.sources.avsbench import AVSBenchVideo

    vids = [AVSBenchVideo(f"v{i}", "v1s", "train", "dog" if i < 6 else "cat", (), (), Path("a.wav"))
            for i in range(10)]
    half = select_videos(vids, fraction=0.5, seed=0)
    assert [v.a_obj for v in half].count("dog") == 3 and [v.a_obj for v in half].count("cat") == 2
    assert [v.uid for v in half] == [v.uid for v in select_videos(vids, fraction=0.5, seed=0)]
    one = select_videos(vids, k_shot=1, seed=1)
    assert sorted(v.a_obj for v in one) == ["cat", "dog"]
    assert select_videos(vids) == vids
    with pytest.raises(AvsynthError):
        AVSBenchSource(Path("x"), fraction=0.5, k_shot=1)


# --------------------------------------------------------------------------- validation


def test_trainer_validation_equals_the_bench_evaluation(tiny_shards, tmp_path):
    """One predictor, one metric: the same checkpoint on the same frames gives the same figures
    through the trainer's validation and through ``avsynth bench``'s evaluation (synthetic split)."""
    from torch.utils.data import DataLoader

    from avsynth.protocols import EvalOptions, synthetic_test
    from avsynth.training.trainer import Trainer

    from avsynth.modeling.checkpoint import save_checkpoint
    from avsynth.modeling.registry import build_model

    cfg = load_config("sama-avs-tiny")
    ckpt = save_checkpoint(build_model(cfg), tmp_path / "model.pt", cfg)  # untrained: mIoU ~0.17
    bench = synthetic_test(ckpt, tiny_shards, split="validation", opts=EvalOptions(batch_frames=8, device="cpu"))
    model = load_checkpoint(ckpt)
    frames = shard_frames(tiny_shards, "validation",
                         ShardRowTransform(InputSpec.of(model), build_audio_embeddings(model.config), True))
    trainer = Trainer(_config(tmp_path / "val", tiny_shards, cpu=True))
    val = trainer.validate(model, DataLoader(frames, batch_size=8, collate_fn=collate))
    assert 0 < bench.miou < 1 and 0 < bench.fscore < 1  # non-trivial figures
    assert (val["frames"], val["videos"], val["groups"]) == (bench.frames, bench.videos, bench.groups) == (6, 6, 2)
    assert abs(val["miou"] - bench.miou) <= 1e-9 and abs(val["fscore"] - bench.fscore) <= 1e-9
    assert val["per_category"].keys() == bench.per_category.keys()
    for cat, fig in val["per_category"].items():
        assert abs(fig["miou"] - bench.per_category[cat]["miou"]) <= 1e-9
        assert abs(fig["fscore"] - bench.per_category[cat]["fscore"]) <= 1e-9


def test_embedding_cache_is_per_vggish_weights(tmp_path):
    cfg = load_config("sama-avs-tiny")
    a = build_audio_embeddings(cfg, tmp_path)
    assert build_audio_embeddings(cfg, tmp_path).cache_dir == a.cache_dir  # seeded: same weights
    other = build_audio_embeddings({**cfg, "seed": int(cfg["seed"]) + 1}, tmp_path)
    assert other.cache_dir != a.cache_dir  # different weights: separate cache


# --------------------------------------------------------------------------- the loop


def _state(path: Path) -> dict:
    return read_checkpoint(path)["state_dict"]


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tiny_shards, tmp_path):
    straight = train(_config(tmp_path / "a", tiny_shards))
    assert straight.completed and len(straight.history) == 2
    first = train(_config(tmp_path / "b", tiny_shards, stop_after_epochs=1))
    assert not first.completed and len(first.history) == 1
    with pytest.raises(TrainError, match="--resume"):
        train(_config(tmp_path / "b", tiny_shards))
    resumed = train(_config(tmp_path / "b", tiny_shards, resume=True))
    assert resumed.completed and [h["epoch"] for h in resumed.history] == [1, 2]
    a, b = _state(tmp_path / "a" / "last" / "model.pt"), _state(tmp_path / "b" / "last" / "model.pt")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    oa = torch.load(tmp_path / "a" / "last" / "state.pt", weights_only=True)["optimizer"]["state"]
    ob = torch.load(tmp_path / "b" / "last" / "state.pt", weights_only=True)["optimizer"]["state"]
    assert all(torch.equal(oa[k]["exp_avg_sq"], ob[k]["exp_avg_sq"]) for k in oa)
    assert straight.history[1]["val_miou"] == resumed.history[1]["val_miou"]
    # and training changed the weights: the decoder differs from its initialisation
    init = build_model(load_config("sama-avs-tiny")).state_dict()  # seeded: the initial weights
    trained = [k for k in a if "mask_decoder" in k and not torch.equal(init[k], a[k])]
    assert trained

    # logs: JSON lines (start / train / epoch / end, appended across the resume) and TensorBoard
    events = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds.count("start") == 2 and kinds.count("epoch") == 2 and kinds.count("end") == 2
    epoch = [e for e in events if e["event"] == "epoch"][-1]
    assert {"val_miou", "val_fscore", "train_loss", "samples_per_s"} <= set(epoch)
    assert epoch["val_frames"] == 6
    # TensorBoard, read back with tensorboard's own reader: one val/miou point per epoch, across
    # the resume, with the values of the JSON log
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logged = {e["epoch"]: e["val_miou"] for e in events if e["event"] == "epoch"}
    points: dict[int, float] = {}
    for f in sorted((tmp_path / "b" / "tensorboard").glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(f))
        acc.Reload()
        if "val/miou_percent" in acc.Tags()["scalars"]:  # TensorBoard shows percent (issue 16)
            points.update({s.step: s.value for s in acc.Scalars("val/miou_percent")})
    assert sorted(points) == [1, 2]
    assert all(points[k] == pytest.approx(100 * logged[k], abs=1e-4) for k in (1, 2))
    # best.pt holds the weights of the best epoch: scoring it again gives the logged best mIoU
    from avsynth.training.validation import evaluate_dataset

    model = load_checkpoint(tmp_path / "b" / "best.pt")
    assert model.config["name"] == "sama-avs-tiny"
    emb = build_audio_embeddings(model.config)
    again = evaluate_dataset(model, shard_frames(tiny_shards, "validation",
                                                ShardRowTransform(InputSpec.of(model), emb, keep_mask=True)))
    assert again["miou"] == pytest.approx(resumed.best_miou, abs=1e-9)
    assert resumed.best_miou == max(logged.values())


def test_two_process_gloo_run_covers_the_whole_validation_split(tiny_shards, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "avsynth", "train", "--config", "sama-avs-tiny",
           "--data", str(tiny_shards), "--out", str(out), "--epochs", "1", "--batch-size", "2",
           "--workers", "0", "--cpu", "--threads", "1", "--quiet"]
    proc = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "best validation mIoU" in proc.stdout
    events = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    start = next(e for e in events if e["event"] == "start")
    assert start["world_size"] == 2
    epoch = next(e for e in events if e["event"] == "epoch")
    assert epoch["val_frames"] == 6  # 3 frames scored on each rank, gathered
    assert epoch["samples"] == 12  # each rank trained on its own row group of 6 rows
    assert sorted(p.name for p in (out / "last").iterdir()) == ["model.pt", "rng-0.pt", "rng-1.pt", "state.pt"]
    # the figure gathered over both ranks is the single-process figure on the whole split
    from avsynth.training.validation import evaluate_dataset

    model = load_checkpoint(out / "last" / "model.pt")
    emb = build_audio_embeddings(model.config)
    full = evaluate_dataset(model, shard_frames(tiny_shards, "validation",
                                               ShardRowTransform(InputSpec.of(model), emb, keep_mask=True)))
    assert full["frames"] == 6
    assert epoch["val_miou"] == pytest.approx(full["miou"], abs=1e-9)
    assert epoch["val_fscore"] == pytest.approx(full["fscore"], abs=1e-9)


def test_bad_options_are_clear_errors(tiny_shards, tmp_path):
    with pytest.raises(TrainError, match="exactly one data source"):
        train(_config(tmp_path / "x", None))
    with pytest.raises(TrainError, match="gavs model"):
        train(_config(tmp_path / "y", tiny_shards, family="sama-avs", model="gavs-tiny"))
    with pytest.raises(AvsynthError, match="nope"):
        train(_config(tmp_path / "z", tiny_shards, val_split="nope"))


# --------------------------------------------------------------------------- AVSBench fine-tuning


@pytest.mark.parametrize("selection", [{"fraction": 0.5}, {"k_shot": 1}])
def test_finetune_on_the_demo_avsbench_tree(demo_corpus, tiny_shards, tmp_path, selection):
    # start from a model "pre-trained" on shards (one epoch), as the few-shot protocol does
    pre = train(_config(tmp_path / "pre", tiny_shards, epochs=1))
    source = AVSBenchSource(Path(demo_corpus.avsbench_root), subset="s4", **selection)
    out = tmp_path / "ft"
    result = train(TrainConfig(out=out, model="sama-avs-tiny", avsbench=source, epochs=1, batch_size=2,
                               init=pre.run_dir / "best.pt", num_workers=0, progress=False, log_every=1))
    assert result.completed and len(result.history) == 1
    events = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    start = events[0]
    assert start["event"] == "start" and start["data"].startswith("avsbench:")
    n_val = sum(len(v.frame_paths) for v in source.videos("val"))
    epoch = next(e for e in events if e["event"] == "epoch")
    assert epoch["val_frames"] == n_val > 0  # every frame of every S4 val video (all annotated)
    train_videos = select_videos(source.videos("train"), seed=0, **selection)
    assert start["train_rows"] == len(train_videos)  # S4 train videos annotate frame 0 only
    assert 0.0 <= epoch["val_miou"] <= 1.0 and 0.0 <= epoch["val_fscore"] <= 1.0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    assert [(s.step, round(s.value, 4)) for s in acc.Scalars("val/miou_percent")] == [
        (1, round(100 * epoch["val_miou"], 4))]
    # one epoch: best.pt is that epoch's model, i.e. the weights of last/model.pt, and they moved
    # away from the pre-trained start
    best, last, start = (_state(out / "best.pt"), _state(out / "last" / "model.pt"),
                         _state(pre.run_dir / "best.pt"))
    assert best.keys() == last.keys() and all(torch.equal(best[k], last[k]) for k in best)
    assert any(not torch.equal(best[k], start[k]) for k in best if k in start)


# --------------------------------------------------------------------------- does it listen?


@pytest.fixture(scope="module")
def listening_corpus(tmp_path_factory):
    """A demo corpus of 5 categories (about 730 train and 75 validation rows of small images)."""
    from avsynth.build import BuildOptions, SourcePaths, build
    from avsynth.demo import DemoSize, write_demo
    from avsynth.training.baselines import LvisObjects

    root = tmp_path_factory.mktemp("listen")
    size = DemoSize("listen", images_per_category=60, val_every=5, clips_train=6, clips_test=2,
                    missing_rows=1, extra_label_rows=1, v1s=(3, 2, 2), v1m=(2, 1, 1), avs_images=2,
                    max_categories=5, width=(160, 240), height=(120, 180))
    demo = write_demo(root / "demo", seed=0, scale=size, workers=2)
    sources = SourcePaths(lvis_json=[demo.lvis_train_json, demo.lvis_val_json], coco_root=demo.coco_root,
                          vggsound_csv=demo.vggsound_csv, vggsound_audio=demo.vggsound_audio)
    build(BuildOptions(out=root / "shards", categories=",".join(demo.categories), sources=sources,
                       sizes={"train": 5000, "validation": 500, "test": 500}, workers=2,
                       rows_per_shard=100), progress=False)
    return root / "shards", LvisObjects([demo.lvis_train_json, demo.lvis_val_json])


@pytest.mark.slow
def test_tiny_sama_avs_learns_to_listen(listening_corpus, tmp_path):
    """The core check: a tiny SAMA-AVS trained for a short CPU run segments the SOUNDING object
    better than any audio-blind prediction (nothing, or every object in the image)."""
    from avsynth.training.baselines import blind_baselines

    shards, objects = listening_corpus
    base = blind_baselines(shards, "validation", objects)
    assert base["nothing"]["miou"] == 0.0
    blind = max(base["nothing"]["miou"], base["all_objects"]["miou"])
    assert 0.2 < blind < 0.5  # every image shows 2-4 objects, one of them sounding
    result = train(TrainConfig(out=tmp_path / "listen", model="sama-avs-tiny", data=str(shards), epochs=5,
                               batch_size=2, lr=1e-3, unfreeze=("sam.image_encoder.",), num_workers=0,
                               progress=False, log_every=50))
    final = result.history[-1]
    assert final["val_frames"] == base["all_objects"]["frames"]
    print(json.dumps({"val_miou": final["val_miou"], "all_objects": base["all_objects"]["miou"],
                      "samples_per_s": result.samples_per_s}))
    assert final["val_miou"] > blind + 0.05, (final["val_miou"], blind)


def test_cli_refuses_to_overwrite_a_run_without_resume(tiny_shards, tmp_path):
    from typer.testing import CliRunner

    from avsynth.cli import app

    out = tmp_path / "cli"
    args = ["train", "--config", "sama-avs-tiny", "--data", str(tiny_shards), "--out", str(out),
            "--epochs", "1", "--batch-size", "4", "--workers", "0", "--quiet", "--stop-after-epochs", "1"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "best validation mIoU" in first.output
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 2 and "--resume" in again.output and "Traceback" not in again.output
    bad = CliRunner().invoke(app, [*args[:-2], "--out", str(tmp_path / "other"), "--model", "gavs"])
    assert bad.exit_code == 2 and "gavs" in bad.output


def test_with_a_sam_checkpoint_only_trained_weights_are_saved_and_resume_works(tiny_shards, tmp_path):
    from avsynth.modeling.sam import build_sam, sam_arch

    torch.manual_seed(3)
    sam_path = tmp_path / "sam_tiny.pth"
    torch.save(build_sam(sam_arch("tiny")).state_dict(), sam_path)
    run = tmp_path / "sam"
    # A pre-trained SAM stays frozen (unfreeze=() overrides the tiny config's random-encoder default)
    frozen = {"sam_checkpoint": sam_path, "unfreeze": ()}
    train(_config(run, tiny_shards, stop_after_epochs=1, **frozen))
    payload = read_checkpoint(run / "last" / "model.pt")
    assert payload["trainable_only"] and payload["config"]["sam"]["checkpoint"] == str(sam_path)
    assert not any(k.startswith("sam.image_encoder.") for k in payload["state_dict"])
    result = train(_config(run, tiny_shards, resume=True, **frozen))
    assert result.completed and len(result.history) == 2
    model = load_checkpoint(run / "best.pt")  # frozen SAM rebuilt from the checkpoint path
    reference = torch.load(sam_path, weights_only=True)
    enc = "image_encoder.patch_embed.proj.weight"
    assert torch.equal(model.sam.state_dict()[enc], reference[enc])


def test_avsbench_uids_select_videos_across_splits(demo_corpus, tmp_path):
    from avsynth.sources.avsbench import read_uids_file
    from avsynth.training.data import avsbench_datasets

    root = Path(demo_corpus.avsbench_root)
    base = AVSBenchSource(root, subset="s4")
    train_uid, val_uid = base.videos("train")[0].uid, base.videos("val")[0].uid
    uids_csv = tmp_path / "v3_1_shot_train.csv"  # the AVS-V3 file layout: a csv with a uid column
    uids_csv.write_text(f"vid,uid,s_min,s_sec,a_obj,split,label\nx,{train_uid},,,,v3,v1s\ny,{val_uid},,,,v3,v1s\n")
    source = AVSBenchSource(root, subset="s4", uids=read_uids_file(uids_csv), val_uids=(val_uid,))
    emb = build_audio_embeddings(load_config("sama-avs-tiny"))
    train_frames, val_frames = avsbench_datasets(source, InputSpec(64), emb, seed=0)
    assert len(train_frames) == 1 + 5  # S4 train: frame 0 annotated; S4 val: all 5
    assert len(val_frames) == 5 and {val_frames[i]["group"] for i in range(5)} == {val_uid}
    s = val_frames[0]
    assert s["mask"].shape == (224, 224) and s["image"].shape == (3, 64, 64)
    with pytest.raises(AvsynthError, match="uid"):
        avsbench_datasets(AVSBenchSource(root, uids=("nope",)), InputSpec(64), emb, seed=0)


def test_gradient_accumulation_matches_the_larger_batch(tiny_shards, tmp_path):
    big = train(_config(tmp_path / "b4", tiny_shards, epochs=1, batch_size=4))
    acc = train(_config(tmp_path / "b2x2", tiny_shards, epochs=1, batch_size=2, grad_accum=2))
    assert big.history[0]["steps"] == acc.history[0]["steps"] == 3
    assert acc.history[0]["batches"] == 6
    a, b = _state(tmp_path / "b4" / "last" / "model.pt"), _state(tmp_path / "b2x2" / "last" / "model.pt")
    from avsynth.modeling.registry import build_model

    init = build_model(load_config("sama-avs-tiny")).state_dict()
    moved = max(float((a[k] - init[k]).abs().max()) for k in a)
    assert moved > 1e-3  # three AdamW steps at lr 1e-3
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-4  # same updates up to rounding


def test_a_new_run_refuses_a_non_empty_out_and_logs_previews_hparams_per_category(tiny_shards, tmp_path):
    """A killed first epoch leaves logs but no checkpoint: a new run there is refused (without
    --resume), so two runs' logs never mix. TensorBoard holds the hyper-parameters, per-category
    validation mIoU (percent) and one prediction grid per epoch on 4 fixed validation samples."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    run.mkdir()
    (run / "log.jsonl").write_text('{"event": "start"}\n')
    with pytest.raises(TrainError, match="not empty.*--resume"):
        train(_config(run, tiny_shards, epochs=1))
    assert (run / "log.jsonl").read_text() == '{"event": "start"}\n'  # untouched

    result = train(_config(tmp_path / "fresh", tiny_shards, epochs=2))
    acc = EventAccumulator(str(tmp_path / "fresh" / "tensorboard"), size_guidance={"images": 0}).Reload()
    tags = acc.Tags()
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    hp = {}
    for f in (tmp_path / "fresh" / "tensorboard").glob("events.out.tfevents.*"):
        for ev in EventFileLoader(str(f)).Load():
            for v in ev.summary.value:
                if v.metadata.plugin_data.plugin_name == "hparams":
                    data = HParamsPluginData.FromString(v.metadata.plugin_data.content)
                    if data.HasField("session_start_info"):
                        hp = {k: x.WhichOneof("kind") and getattr(x, x.WhichOneof("kind"))
                              for k, x in data.session_start_info.hparams.items()}
    assert hp["model"] == "sama-avs-tiny" and hp["lr"] == pytest.approx(1e-3) and hp["epochs"] == 2
    per_cat = sorted(t for t in tags["scalars"] if t.startswith("val_per_category/"))
    assert per_cat == [f"val_per_category/{c}/miou_percent" for c in ("cat", "dog", "guitar")]
    miou = [e.value for e in acc.Scalars("val/miou_percent")]
    assert miou == pytest.approx([100 * h["val_miou"] for h in result.history], abs=1e-4)
    (tag,) = tags["images"]
    grids = acc.Images(tag)
    assert [g.step for g in grids] == [1, 2]
    from PIL import Image
    import io
    grid = np.asarray(Image.open(io.BytesIO(grids[0].encoded_image_string)).convert("RGB"))
    assert grid.shape == (192 + 8, 4 * 192 + 5 * 4, 3)  # 4 tiles of 192 px, 4 px padding
    green = (grid[..., 1] > 150) & (grid[..., 0] < 120)  # ground truth drawn green somewhere
    assert green.sum() > 100


# --------------------------------------------------------------------------- GAVS's public-code recipe


def test_video_batches_hold_whole_videos_dealt_to_ranks(demo_corpus):
    from avsynth.training.data import VideoBatchSampler, avsbench_datasets

    source = AVSBenchSource(Path(demo_corpus.avsbench_root), subset="ms3")
    emb = build_audio_embeddings(load_config("gavs-tiny-public-code"))
    train_frames, _ = avsbench_datasets(source, InputSpec(64, native_targets=True), emb, seed=0)
    sample = train_frames[0]  # a native-size loss gets the frame's own mask, beside the 64² target
    assert sample["mask"].shape == tuple(sample["original_size"]) != (64, 64)
    videos = source.videos("train")
    assert len(videos) >= 2
    samplers = [VideoBatchSampler(train_frames, rank=r, world=2, seed=0) for r in (0, 1)]
    batches = [list(s) for s in samplers]
    assert len(batches[0]) == len(batches[1]) == len(videos) // 2 == len(samplers[0])
    for batch in batches[0] + batches[1]:  # every batch: all 5 annotated frames of one video, in order
        ids = [train_frames.items[i] for i in batch]
        assert len({vi for vi, *_ in ids}) == 1 and [fi for _, fi, _ in ids] == list(range(5))
    assert not {tuple(b) for b in batches[0]} & {tuple(b) for b in batches[1]}
    assert list(VideoBatchSampler(train_frames, 0, 2, seed=0)) == batches[0]  # a function of (seed, epoch)
    orders = set()
    for epoch in range(4):
        samplers[0].set_epoch(epoch)
        orders.add(tuple(map(tuple, samplers[0])))
    assert len(orders) > 1  # reshuffled per epoch


def test_gavs_public_code_recipe_trains_one_video_per_step_on_native_masks(demo_corpus, tmp_path):
    source = AVSBenchSource(Path(demo_corpus.avsbench_root), subset="ms3")
    out = tmp_path / "gavs"
    cfg = load_config("gavs-tiny-public-code")
    cfg["train"]["batch_by"] = "video"
    result = train(TrainConfig(out=out, model=cfg, avsbench=source, epochs=1, num_workers=0,
                               progress=False, log_every=1))
    assert result.completed
    events = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    start = events[0]
    assert start["recipe"]["batch_by"] == "video" and start["recipe"]["lr_schedule"] == "constant"
    epoch = next(e for e in events if e["event"] == "epoch")
    assert epoch["steps"] == len(source.videos("train"))  # one optimizer step per video
    lrs = {e["lr"] for e in events if e["event"] == "train"}
    assert lrs == {1e-3}
