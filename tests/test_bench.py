"""``avsynth bench``: the evaluation path, the protocols (zero-shot, few-shot, AVS-V3, synthetic
test split) and the report, on the demo corpus, on a tree laid out from the real AVSBench / AVS-V3
metadata, and on a small shard directory. A tiny SAMA-AVS with seeded random weights is the model
(saved and reloaded through the real checkpoint code)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from avsynth.cli import app
from avsynth import protocols as P
from avsynth.evaluation.evaluate import avsbench_samples, evaluate
from avsynth.evaluation.metrics import AVSBenchMetric
from avsynth.modeling import AVPredictor, build_model, build_vggish_for, load_config, save_checkpoint
from avsynth.protocols.report import PUBLISHED, BenchRun, results_markdown
from avsynth.sources.avs_v3 import AVS_V3_SPLITS, avs_v3_unseen_classes, shipped_avs_v3
from avsynth.sources.avsbench import AVSBenchDataset, is_object_release, load_metadata
from tests._tiny_shards import make_shard_dir
from tests.avsbench_fixture import write_semantic_tree


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    cfg = load_config("sama-avs-tiny")
    return save_checkpoint(build_model(cfg), tmp_path_factory.mktemp("ckpt") / "model.pt", cfg)


@pytest.fixture(scope="module")
def tiny_shards(tmp_path_factory) -> Path:
    return make_shard_dir(tmp_path_factory.mktemp("bench-shards") / "s",
                          rows={"train": 4, "validation": 2, "test": 6},
                          shards={"train": 1, "validation": 1, "test": 2})


# --------------------------------------------------------------------------- evaluation path


def test_evaluate_equals_predict_api_plus_official_metric(demo_corpus, tiny_ckpt):
    """The batched evaluation gives the figures of AVPredictor.predict_waveforms + AVSBenchMetric
    video by video."""
    root = demo_corpus.avsbench_root
    config = P.checkpoint_config(tiny_ckpt)
    model = P.load_model(tiny_ckpt, config)
    emb = build_vggish_for(config)
    ds = AVSBenchDataset(root, "s4", "test", resolution=224, mode="binary")
    got = evaluate(model, avsbench_samples(ds, emb), f_group="batch4", batch_frames=7, device="cpu")
    predictor = AVPredictor(model, vggish=emb)

    metric = AVSBenchMetric(f_group="batch4")
    for item in ds:
        frames = [f.permute(1, 2, 0).numpy() for f in item["frames"]]
        windows = item["audio_windows"].numpy()
        # the per-window embedding (the trainer's), exactly
        one = torch.stack([emb.embed_clip(w, 16000) for w in windows])
        assert torch.equal(emb.embed_windows(windows), one)
        logits = torch.stack(predictor.predict_waveforms(frames, list(windows), 16000))
        n = len(frames)
        metric.update(logits, item["masks"], [item["uid"]] * n, [item["category"]] * n)
    want = metric.compute()
    assert got["videos"] == want["videos"] == len(ds)
    assert got["miou"] == pytest.approx(want["miou"], abs=1e-5)
    assert got["fscore"] == pytest.approx(want["fscore"], abs=1e-5)
    assert set(got["per_category"]) == set(want["per_category"])
    assert [v["uid"] for v in got["per_video"]] == [v.uid for v in ds.videos]


def test_f_group_changes_the_grouping_not_the_miou(demo_corpus, tiny_ckpt):
    opts = {g: P.EvalOptions(f_group=g) for g in ("batch4", "video")}
    res = {g: P.zero_shot(tiny_ckpt, demo_corpus.avsbench_root, subsets=["s4"], opts=o)[0] for g, o in opts.items()}
    assert res["batch4"].f_group == "batch4" and res["video"].f_group == "video"
    assert res["video"].groups == res["video"].videos
    assert res["batch4"].groups == -(-res["batch4"].videos // 4)
    with pytest.raises(P.BenchError, match="f-group"):
        P.EvalOptions(f_group="frame")


# --------------------------------------------------------------------------- AVS-V3


V3_TAKE = {"seen_train": 2, "seen_val": 2, "1_shot_train": 3, "1_shot_test": 3}


def v3_chosen(labels_dir: Path) -> dict[str, list[str]]:
    """The videos the AVS-V3 tree holds: the first ones of each split file of GAVS (read here from
    the real files, not through avsynth), no video taken twice."""
    chosen: dict[str, list[str]] = {}
    taken: set[str] = set()
    for name, n in V3_TAKE.items():
        listed = pd.read_csv(labels_dir / "gavs_avs_v3" / AVS_V3_SPLITS[name], dtype=str)["uid"]
        chosen[name] = [u for u in listed if u not in taken][:n]
        taken.update(chosen[name])
    return chosen


@pytest.fixture(scope="module")
def v3_tree(tmp_path_factory, labels_dir) -> Path:
    """A semantic-release tree holding real AVSBench rows: some of each AVS-V3 split's videos."""
    meta = pd.read_csv(labels_dir / "gavs_avs_v3" / "metadata.csv", dtype=str, keep_default_na=False)
    uids = [u for us in v3_chosen(labels_dir).values() for u in us]
    rows = meta.set_index("uid").loc[uids].reset_index()[list(meta.columns)]
    return write_semantic_tree(tmp_path_factory.mktemp("v3") / "avs", rows,
                               labels_dir / "avsbench_avss_classes.csv", size_wh=(40, 32))


def test_shipped_avs_v3_splits_are_the_gavs_files(labels_dir):
    for name, fname in AVS_V3_SPLITS.items():
        shipped = shipped_avs_v3(name)
        ref = pd.read_csv(labels_dir / "gavs_avs_v3" / fname, dtype=str, keep_default_na=False)
        assert list(shipped["uid"]) == list(ref["uid"]), name
    assert len(avs_v3_unseen_classes()) == 14
    assert "helicopter" in avs_v3_unseen_classes() and "dog" not in avs_v3_unseen_classes()


def test_avs_v3_selection_on_a_tree_from_the_real_metadata(v3_tree):
    meta = load_metadata(v3_tree)
    sel = P.select_avs_v3(meta, k_shots=[1], root=v3_tree)
    assert sel.mode == "release"
    present = set(meta["uid"])
    for name in ("seen_train", "seen_val", "unseen", "1_shot_train", "1_shot_test"):
        listed = list(shipped_avs_v3(name)["uid"])
        assert sel.uids[name] == [u for u in listed if u in present], name
        assert sel.missing[name] == len(listed) - len(sel.uids[name])
    assert len(sel.uids["1_shot_train"]) == 3 and len(sel.uids["1_shot_test"]) == 3
    assert not set(sel.uids["1_shot_train"]) & set(sel.uids["1_shot_test"])
    assert set(sel.uids["1_shot_train"]) <= set(sel.uids["unseen"])
    assert not set(sel.uids["seen_train"]) & set(sel.uids["unseen"])
    assert "skipped" in sel.note()
    with pytest.raises(P.BenchError, match="1, 3 and 5"):
        P.select_avs_v3(meta, k_shots=[2])


def test_avs_v3_needs_the_release_unless_demo(demo_corpus):
    meta = load_metadata(demo_corpus.avsbench_root)
    with pytest.raises(P.BenchError, match="semantic release"):
        P.select_avs_v3(meta, root=demo_corpus.avsbench_root)
    sel = P.select_avs_v3(meta, k_shots=[1], demo=True, seed=3)
    assert sel.mode == "demo-class-split" and "DEMO" in sel.note()
    unseen = set(avs_v3_unseen_classes())
    objs = {r.uid: set(r.a_obj.split("_")) for r in meta.itertuples()}
    assert sel.uids["unseen"] and all(objs[u] & unseen for u in sel.uids["unseen"])
    assert all(not objs[u] & unseen for u in sel.uids["seen_train"] + sel.uids["seen_val"])
    assert sel.uids == P.select_avs_v3(meta, k_shots=[1], demo=True, seed=3).uids  # seeded


def test_avs_v3_protocol_end_to_end_on_the_real_layout(v3_tree, tiny_ckpt, tmp_path, labels_dir):
    results = P.avs_v3(tiny_ckpt, v3_tree, k_shots=[1], out_dir=tmp_path,
                       ft=P.FineTuneOptions(epochs=1, batch_size=4))
    unseen, shot = results
    # expectations from the tree's construction and GAVS's files, read directly
    chosen = v3_chosen(labels_dir)
    gavs = labels_dir / "gavs_avs_v3"
    unseen_listed = list(pd.read_csv(gavs / "meta_v3_unseen.csv", dtype=str)["uid"])
    in_tree = {u for us in chosen.values() for u in us}
    present_unseen = [u for u in unseen_listed if u in in_tree]
    assert set(present_unseen) == set(chosen["1_shot_train"] + chosen["1_shot_test"])  # GAVS's design
    assert unseen.subset == "unseen" and unseen.videos == len(present_unseen) == 6
    assert unseen.skipped["unseen"] == len(unseen_listed) - 6
    assert shot.subset == "1_shot_test" and shot.videos == 3 and shot.setting["k_shot"] == 1
    ft = shot.setting["fine_tune"]
    label = pd.read_csv(gavs / "metadata.csv", dtype=str).set_index("uid")["label"]
    frames = {"v1s": 5, "v1m": 5, "v2": 10}  # AVSBench: 5 annotated frames per V1 video, 10 per V2
    assert ft["train_frames"] == sum(frames[label[u]] for u in chosen["1_shot_train"])
    assert ft["val_frames"] == sum(frames[label[u]] for u in chosen["seen_val"])
    assert (tmp_path / "finetune" / "avs_v3-1shot" / "best.pt").is_file()


# --------------------------------------------------------------------------- synthetic test split


def test_synthetic_test_split_of_a_shard_dir(tiny_shards, tiny_ckpt):
    r = P.synthetic_test(tiny_ckpt, tiny_shards, opts=P.EvalOptions(f_group="video"))
    assert r.frames == r.videos == 6 and r.groups == 6
    assert set(r.per_category) == {"dog", "cat", "guitar"}
    # the figures, re-derived row by row: rows read with pyarrow, decoded with PIL/soundfile,
    # predicted through the public AVPredictor, scored with the loop oracle of the official code
    import io

    import pyarrow.parquet as pq
    import soundfile as sf

    from tests.test_metrics import oracle_fscore, oracle_iou

    config = P.checkpoint_config(tiny_ckpt)
    predictor = AVPredictor(P.load_model(tiny_ckpt, config), vggish=build_vggish_for(config))
    rows = pq.read_table(tiny_shards / "data", filters=[("split", "=", "test")]).to_pylist()
    ious, fs = [], []
    for row in rows:
        frame = np.asarray(Image.open(io.BytesIO(row["image"]["bytes"])).convert("RGB"))
        gt = torch.from_numpy(np.asarray(Image.open(io.BytesIO(row["mask"]["bytes"]))) != 0).float()
        wave, sr = sf.read(io.BytesIO(row["audio"]["bytes"]), dtype="float32")
        logits = predictor.predict_waveforms([frame], [wave], sr)[0]
        ious.append(oracle_iou(logits[None], gt[None]))
        fs.append(oracle_fscore(logits[None], gt[None]))
    assert len(rows) == 6
    assert r.miou == pytest.approx(float(np.mean(ious)), abs=1e-5)
    assert r.fscore == pytest.approx(float(np.mean(fs)), abs=1e-5)


# --------------------------------------------------------------------------- the command


def test_bench_command_on_the_demo_corpus(demo_corpus, tiny_ckpt, tiny_shards, tmp_path):
    out = tmp_path / "report"
    result = CliRunner().invoke(app, [
        "bench", "--zero-shot", "avsbench", "--checkpoint", str(tiny_ckpt), "--model", "sama-avs",
        "--demo-dir", str(demo_corpus.root), "--few-shot", "0.5", "--epochs", "1", "--avs-v3",
        "--synthetic", str(tiny_shards), "--out", str(out),
    ])
    assert result.exit_code == 0, result.output
    assert "DEMO" in result.output
    data = json.loads((out / "results.json").read_text())
    assert data["format"] == "avsynth-bench/1" and data["demo"] is True and data["f_group"] == "batch4"
    kinds = [(r["protocol"], r["subset"]) for r in data["results"]]
    assert ("zero-shot", "s4") in kinds and ("zero-shot", "ms3") in kinds
    assert ("few-shot", "s4") in kinds and ("few-shot", "ms3") in kinds
    assert ("avs-v3", "unseen") in kinds and ("synthetic", str(tiny_shards)) in kinds
    few = next(r for r in data["results"] if r["protocol"] == "few-shot" and r["subset"] == "s4")
    assert few["setting"]["fraction"] == 0.5 and few["setting"]["fine_tune"]["epochs"] == 1
    md = (out / "results.md").read_text()
    assert "F-score grouping: **batch4" in md and "DEMO DATA" in md
    # every report names the scoring, the audio cut and the recipe, and carries the controls
    assert data["evaluation_variant"]["name"] == "avsbench" and "sigmoid > 0.5" in md
    assert "VGGish example i" in data["audio_preprocessing"] and "audio preprocessing: official AVSBench" in md
    assert data["recipe"]["config"] == "sama-avs-tiny" and "resize=longest" in md
    for r in data["results"]:
        assert set(r["controls"]) == {"audio_zeroed", "audio_shuffled", "predict_nothing", "predict_everything"}
        assert r["variant"] == "avsbench"
    assert "## Controls" in md and "every foreground pixel" in md
    assert "quoted" in md and "78.70" in md and "83.17" in md and "not quoted" in md
    cats = pd.read_csv(out / "per_category.csv")
    assert {"evaluation", "category", "manifest_category", "miou_percent", "fscore_percent"} <= set(cats.columns)
    assert len(cats) > 0 and cats["miou_percent"].between(0, 100).all()
    expected = sorted(round(100 * v["miou"], 4) for r in data["results"] for v in (r.get("per_category") or {}).values())
    assert sorted(cats["miou_percent"].round(4)) == pytest.approx(expected, abs=1e-3)  # JSON fraction x 100
    pngs = [out / "few_shot_curve.png", out / "per_category.png", *sorted((out / "overlays").glob("*.png"))]
    assert len(pngs) >= 5
    assert any("best" in p.name for p in pngs) and any("worst" in p.name for p in pngs)
    for p in pngs:
        with Image.open(p) as im:
            im.verify()
            assert im.format == "PNG"


def test_bench_command_errors_are_clear(tiny_ckpt, tmp_path, demo_corpus):
    runner = CliRunner()
    no_ckpt = runner.invoke(app, ["bench", "--out", str(tmp_path / "a")])
    assert no_ckpt.exit_code == 2 and "avsynth train" in no_ckpt.output
    wrong = runner.invoke(app, ["bench", "--checkpoint", str(tiny_ckpt), "--model", "gavs",
                                "--demo-dir", str(demo_corpus.root), "--out", str(tmp_path / "b")])
    assert wrong.exit_code == 2 and "sama_avs" in wrong.output and "Traceback" not in wrong.output
    missing = runner.invoke(app, ["bench", "--checkpoint", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "c")])
    assert missing.exit_code == 2 and "not found" in missing.output
    not_root = runner.invoke(app, ["bench", "--checkpoint", str(tiny_ckpt), "--avsbench", str(tmp_path),
                                   "--out", str(tmp_path / "d")])
    assert not_root.exit_code == 2 and "metadata.csv" in not_root.output


def test_report_names_grouping_and_marks_published_numbers():
    r = P.EvalResult(protocol="zero-shot", dataset="avsbench", subset="s4", split="test", f_group="video",
                     miou=0.5, fscore=0.6, frames=5, videos=1, groups=1, resolution=224)
    run = BenchRun(checkpoint="c.pt", checkpoint_sha256="0" * 16, model="m", demo=False, avsbench_root="/x",
                   f_group="video", resolution=224, results=[r])
    md = results_markdown(run)
    assert "F-score grouping: **video" in md and "DEMO" not in md
    assert "| this run: m | zero-shot | measured | 50.00 | 60.00 |" in md
    assert "S4 F (%)" in md and "in percent everywhere" in md
    for p in PUBLISHED:
        assert p.method in md
    assert all(p.source for p in PUBLISHED)
    assert np.isclose(PUBLISHED[0].s4_miou, 78.7) and PUBLISHED[1].s4_miou == 83.17


def test_zero_shot_on_the_object_release_layout(tmp_path, tiny_ckpt):
    from tests.avsbench_fixture import write_object_tree

    root = tmp_path / "avsbench_data"
    write_object_tree(root, "s4", [("a1", "dog", "test"), ("a2", "cat", "test"), ("a3", "dog", "train")],
                      size_wh=(64, 64))
    write_object_tree(root, "ms3", [("m1", "", "test")], size_wh=(64, 64))
    assert is_object_release(root)
    s4, ms3 = P.zero_shot(tiny_ckpt, root, opts=P.EvalOptions(f_group="video"))
    assert (s4.videos, s4.frames, ms3.videos, ms3.frames) == (2, 10, 1, 5)
    assert set(s4.per_category) == {"dog", "cat"}
    cfg = P.BenchConfig(checkpoint=tiny_ckpt, out=tmp_path / "o", avsbench=root, avs_v3=True)
    with pytest.raises(P.BenchError, match="semantic release"):
        P.resolve_avsbench(cfg)


def test_checkpoint_and_config_mismatches_are_bench_errors(tiny_ckpt, tmp_path):
    cfg = load_config("sama-avs-tiny")
    partial = save_checkpoint(build_model(cfg), tmp_path / "partial.pt", cfg, trainable_only=True)
    with pytest.raises(P.BenchError, match="--sam-checkpoint"):
        P.load_model(partial, P.checkpoint_config(partial))
    bench = P.BenchConfig(checkpoint=tiny_ckpt, out=tmp_path / "o", config="gavs-tiny")
    with pytest.raises(P.BenchError, match="gavs model"):
        P.resolve_config(bench)
    same = P.resolve_config(P.BenchConfig(checkpoint=tiny_ckpt, out=tmp_path / "o", config="sama-avs-tiny",
                                          model="sama-avs"))
    assert same["family"] == "sama_avs"
    with pytest.raises(P.BenchError, match="few-shot needs"):
        P.few_shot(tiny_ckpt, tmp_path, out_dir=tmp_path)


def test_few_shot_settings_that_select_the_same_videos_are_warned(demo_corpus):
    """Expected from the metadata alone: ceil(f * n) train videos per class (at least 1, at most
    n) — two fractions whose counts agree for every class select the same videos."""
    import math

    from avsynth.protocols.few_shot import identical_settings

    meta = pd.read_csv(demo_corpus.avsbench_root / "metadata.csv")
    n = meta[(meta["split"] == "train") & (meta["label"] == "v1s")].groupby("a_obj").size()

    def counts(f):
        return [min(k, max(1, math.ceil(f * k))) for k in n]

    root = demo_corpus.avsbench_root
    for a, b in ((0.1, 0.5), (0.1, 1.0), (0.5, 1.0)):
        warned = identical_settings(root, ["s4"], (a, b))
        assert bool(warned) == (counts(a) == counts(b)), (a, b, list(n))
        if warned:
            assert f"fraction={a:g}, fraction={b:g}" in warned[0] and f"{sum(counts(a))} train videos" in warned[0]
    assert identical_settings(root, ["s4"], (0.5,)) == []


def test_results_markdown_links_only_the_plots_written():
    r = P.EvalResult(protocol="zero-shot", dataset="avsbench", subset="s4", split="test", f_group="video",
                     miou=0.5, fscore=0.6, frames=5, videos=1, groups=1, resolution=224)
    run = BenchRun(checkpoint="c.pt", checkpoint_sha256="0" * 16, model="m", demo=False, avsbench_root="/x",
                   f_group="video", resolution=224, results=[r])
    md = results_markdown(run, plots=["per_category.png"])
    assert "`per_category.png`" in md and "few_shot_curve" not in md and "overlays/" not in md
    assert "plots:" not in results_markdown(run, plots=[])


def test_avsbench_categories_show_their_manifest_names():
    from avsynth.protocols.report import manifest_names

    # the pairs named in issue 16 (AVSBench name -> the shards' manifest name)
    assert "ambulance" in manifest_names("emergency-car").split("; ")
    assert manifest_names("hen") == "chicken"
    assert manifest_names("mower") == "lawn_mower"
    assert manifest_names("alarm-clock") == "alarm_clock"  # no AVSBench class: the demo's hyphenated name
    assert manifest_names("dog") == "dog" and manifest_names("no-such-thing") == ""


# --------------------------------------------------------------------------- variants and controls


def test_controls_are_scored_like_the_result(demo_corpus, tiny_ckpt):
    r = P.zero_shot(tiny_ckpt, demo_corpus.avsbench_root, subsets=["s4"], opts=P.EvalOptions())[0]
    c = r.controls
    ds = AVSBenchDataset(demo_corpus.avsbench_root, "s4", "test", resolution=224, mode="binary")
    masks = [(item["uid"], item["masks"].float()) for item in ds]
    groups = [torch.cat([m for _, m in masks[i:i + 4]]).flatten(1) for i in range(0, len(masks), 4)]
    # predict nothing: a frame with an object scores IoU 0, an empty one 1 (official empty-GT rule)
    want_nothing = np.mean([float(g.amax(1).eq(0).float().mean()) for g in groups])
    # every pixel: IoU = the frame's foreground share (an empty frame: 0)
    want_all = np.mean([float(g.mean(1).mean()) for g in groups])
    assert c["predict_nothing"]["miou"] == pytest.approx(want_nothing, abs=1e-6)
    assert c["predict_everything"]["miou"] == pytest.approx(want_all, abs=1e-6)
    # F: the official first threshold is 0, so at t = 0 both constants predict every pixel
    # (precision = foreground share a, recall 1): F = 1.3 a / (0.3 a + 1) over non-empty frames
    def f_all(g):
        a = g.mean(1)[g.amax(1) > 0]
        return float((1.3 * a / (0.3 * a + 1)).mean()) if len(a) else 0.0
    want_f = np.mean([f_all(g) for g in groups])
    assert c["predict_nothing"]["fscore"] == pytest.approx(want_f, abs=1e-6)
    assert c["predict_everything"]["fscore"] == pytest.approx(want_f, abs=1e-6)
    assert c["audio_zeroed"]["frames"] == c["audio_shuffled"]["frames"] == r.frames
    again = P.zero_shot(tiny_ckpt, demo_corpus.avsbench_root, subsets=["s4"], opts=P.EvalOptions())[0]
    assert again.controls == c  # seeded
    # the shuffle is a derangement: no video keeps its own audio
    from avsynth.evaluation.controls import shuffled_order
    lend = shuffled_order([v.uid for v in ds.videos], 0)
    assert all(k != v for k, v in lend.items()) and sorted(lend.values()) == sorted(lend)
    many = [f"v{i}" for i in range(20)]
    assert shuffled_order(many, 1) != shuffled_order(many, 0) == shuffled_order(many, 0)
    assert all(k != v for k, v in shuffled_order(many, 1).items())


def test_evaluation_variants_by_name(demo_corpus, tiny_ckpt):
    from avsynth.evaluation.variants import VARIANTS

    assert set(VARIANTS) == {"avsbench", "sama-avs", "gavs"}
    gavs = P.EvalOptions(variant="gavs", controls=False)
    assert (gavs.resolution, gavs.f_group, gavs.metric_kwargs["threshold"]) == (None, "video", 0.4)
    sama = P.EvalOptions(variant="sama-avs", controls=False)
    assert sama.metric_kwargs["f_on_logits"] and sama.metric_kwargs["at_model_input"]
    with pytest.raises(P.BenchError, match="eval-variant"):
        P.EvalOptions(variant="nope")
    r = P.zero_shot(tiny_ckpt, demo_corpus.avsbench_root, subsets=["s4"], opts=sama)[0]
    assert r.variant == "sama-avs" and r.f_group == "video" and r.groups == r.videos


def test_variant_metrics_against_the_official_formulas():
    """Threshold 0.4 (GAVS) and F on raw logits (SAMA-AVS's Eval_Fmeasure without sigmoid),
    against the official formulas written out with torch on a small case."""
    torch.manual_seed(0)
    logits = torch.randn(3, 16, 16) * 2
    gt = (torch.rand(3, 16, 16) > 0.6).float()
    m = AVSBenchMetric(f_group="video", threshold=0.4, f_on_logits=True)
    m.update(logits, gt, ["a"] * 3)
    got = m.compute()
    pred = (torch.sigmoid(logits) > 0.4).int()
    inter = (pred * gt).sum((1, 2))
    union = torch.max(pred, gt).sum((1, 2))
    assert got["miou"] == pytest.approx(float((inter / (union + 1e-7)).mean()), abs=1e-6)
    thr = torch.linspace(0, 1 - 1e-10, 255)
    curve = torch.zeros(255)
    for i in range(3):
        y = gt[i]
        f = []
        for t in thr:
            yt = (logits[i] >= t).float()
            tp = (yt * y).sum()
            prec, rec = tp / (yt.sum() + 1e-20), tp / (y.sum() + 1e-20)
            f.append(1.3 * prec * rec / (0.3 * prec + rec))
        curve += torch.nan_to_num(torch.stack(f))
    assert got["fscore"] == pytest.approx(float((curve / 3).max()), abs=1e-6)
    sig = AVSBenchMetric(f_group="video")
    sig.update(logits, gt, ["a"] * 3)
    assert abs(sig.compute()["fscore"] - got["fscore"]) > 1e-3  # the two F definitions differ here
