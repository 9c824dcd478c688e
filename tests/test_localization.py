"""Sound-source localisation (VGG-SS / Flickr-SoundNet, Chen et al. CVPR'21): the metric against an
independent re-statement of the reference formulas (``test.py`` / ``utils.py`` of
hche11/Localizing-Visual-Sounds-the-Hard-Way) on hand-made cases, the readers on the real
annotation files, and ``avsynth bench --localization`` end to end on a demo set."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from avsynth.cli import app
from avsynth.errors import SourceError
from avsynth.evaluation.localization import (
    CURVE_T,
    LocalizationMetric,
    ciou,
    flickr_gt_map,
    prediction_map,
    summarize,
    vggss_gt_map,
)
from avsynth.sources.flickr_soundnet import open_flickr, read_flickr_xml
from avsynth.sources.vggss import open_vggss, read_id_list, read_vggss_json

N = 224


# --------------------------------------------------------------------------- the reference, restated
# Written from the reference's formulas, pixel by pixel where it slices, without avsynth's code.


def ref_gt_vggss(boxes) -> np.ndarray:
    yy, xx = np.mgrid[0:N, 0:N]
    gt = np.zeros((N, N))
    for b in boxes:
        x0, y0, x1, y1 = (int(224 * max(v, 0)) for v in b)
        gt[(xx >= x0) & (xx < x1) & (yy >= y0) & (yy < y1)] = 1
    return gt


def ref_gt_flickr(boxes) -> np.ndarray:
    yy, xx = np.mgrid[0:N, 0:N]
    count = np.zeros((N, N))
    for b in boxes:
        x0, y0, x1, y1 = (int(224 * int(v) / 256) for v in b)
        count += (xx >= x0) & (xx < x1) & (yy >= y0) & (yy < y1)
    return np.minimum(count / 2, 1)


def ref_pred_median(h224: np.ndarray) -> np.ndarray:
    """test.py:81-86 on a heatmap already at 224 x 224: normalize_img(-h), 1 - it, > sorted[N/2]."""
    neg = -h224
    if neg.max() - neg.min() != 0:
        neg = (neg - neg.min()) / (neg.max() - neg.min())
    pred = 1 - neg
    threshold = np.sort(pred.flatten())[int(pred.shape[0] * pred.shape[1] / 2)]
    out = pred.copy()
    out[pred > threshold] = 1
    out[pred <= threshold] = 0
    return out


def ref_ciou(pred, gt) -> float:
    """utils.py:19-24 (infer >= 0.5 of a 0/1 map is the map itself)."""
    infer = (pred >= 0.5).astype(float)
    with np.errstate(invalid="ignore"):
        return float(np.sum(infer * gt) / (np.sum(gt) + np.sum(infer * (gt == 0))))


def ref_summary(values):
    v = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):
        frac = [np.sum(v >= 0.05 * i) / len(v) for i in range(21)]
        return np.sum(v >= 0.5) / len(v), np.trapezoid(frac, [0.05 * i for i in range(21)])


# --------------------------------------------------------------------------- ground truth


def test_vggss_gt_multiple_boxes_union_hand_counted():
    boxes = [[0.0, 0.0, 0.5, 0.5], [0.25, 0.25, 0.75, 0.75]]
    gt = vggss_gt_map(boxes)
    assert gt.sum() == 112 * 112 * 2 - 56 * 56  # 21,952: the overlap counted once
    assert set(np.unique(gt)) == {0.0, 1.0}
    np.testing.assert_array_equal(gt, ref_gt_vggss(boxes))
    # a slightly negative xmin is clamped to 0 (unclamped, numpy's slice [-2:112] would be empty)
    assert vggss_gt_map([[-0.01, 0.0, 0.5, 0.5]]).sum() == 112 * 112


def test_vggss_corrupt_coordinate_is_clamped_to_zero_like_the_reference(labels_dir):
    ann = read_vggss_json(labels_dir / "vggss" / "vggss.json")
    # the only box of this entry has xmax = -2.88e16 -> 0: an empty ground truth
    cls, boxes = ann["MKC9LvRivTM_000030"]
    assert cls == "playing french horn" and boxes[0][2] < -1e16
    assert vggss_gt_map(boxes).sum() == 0
    # a corrupt second box empties only that box; the first one stays
    _, boxes = ann["Db6Hjt0x28k_000056"]  # box 1: ymax corrupt (empty); box 2: 0.05,0.35625,0.753125,0.98125
    x0, y0, x1, y1 = int(224 * 0.05), int(224 * 0.35625), int(224 * 0.753125), int(224 * 0.98125)
    assert vggss_gt_map(boxes).sum() == (x1 - x0) * (y1 - y0) == 157 * 140
    for key in ("7Soo7mXCnq0_000063", "P-NCCepeHdI_000125", "zpWuikVorYg_000032"):
        np.testing.assert_array_equal(vggss_gt_map(ann[key][1]), ref_gt_vggss(ann[key][1]))
    # zpWuikVorYg_000032: [0.403125, 0.253125, 0.6, 0.75] -> x 90..134, y 56..168
    assert vggss_gt_map(ann["zpWuikVorYg_000032"][1]).sum() == 44 * 112


def test_flickr_consensus_map_one_annotator_half_two_full():
    boxes = [(0, 0, 128, 128), (0, 0, 128, 128), (128, 128, 256, 256)]
    gt = flickr_gt_map(boxes)
    assert gt[:112, :112].min() == 1.0 and gt[112:, 112:].max() == gt[112:, 112:].min() == 0.5
    assert gt.sum() == 112 * 112 * 1.0 + 112 * 112 * 0.5
    np.testing.assert_array_equal(gt, ref_gt_flickr(boxes))
    three = flickr_gt_map([(0, 0, 256, 256)] * 3)
    assert three.max() == three.min() == 1.0  # capped at 1
    # a prediction on the two-annotator quarter: 12544 / 18816; on the one-annotator quarter: half that
    tl, br = np.zeros((N, N)), np.zeros((N, N))
    tl[:112, :112], br[112:, 112:] = 1, 1
    assert ciou(tl, gt) == pytest.approx(12544 / 18816) == pytest.approx(2 / 3)
    assert ciou(br, gt) == pytest.approx(6272 / 18816) == pytest.approx(1 / 3)
    # predicting where nobody annotated adds to the denominator
    tl[:112, 112:] = 1
    assert ciou(tl, gt) == pytest.approx(12544 / (18816 + 12544)) == ref_ciou(tl, gt)


# --------------------------------------------------------------------------- prediction and cIoU


def test_median_threshold_drops_ties_at_the_median():
    h = np.zeros((N, N), dtype=np.float32)
    h[:100] = 1.0  # 22,400 px
    h[100:150] = 0.5  # 11,200 px straddle sorted index 25,088: all tied at the median
    pred = prediction_map(torch.from_numpy(h), "median").numpy()
    assert pred.sum() == 22400  # strictly above the median: the tied band is not predicted
    np.testing.assert_array_equal(pred, ref_pred_median(h))
    gt = vggss_gt_map([[0, 0, 1, 0.5]])  # rows 0..111
    assert ciou(pred, gt) == pytest.approx(22400 / 25088) == ref_ciou(pred, gt)
    # a fixed 0.5 keeps the band (>= 0.5 after min-max normalisation)
    assert prediction_map(h, 0.5).sum() == 33600


def test_median_threshold_on_random_heatmaps_matches_the_restatement():
    rng = np.random.default_rng(0)
    for k in range(5):
        h = rng.random((N, N)).astype(np.float32) * (k + 1) - k
        pred = prediction_map(h, "median").numpy()
        np.testing.assert_array_equal(pred, ref_pred_median(h))
        assert pred.sum() == N * N - (N * N // 2 + 1)  # distinct values: 25,087 px above the median


def test_resize_is_the_references_cv2_bilinear():
    import cv2  # the reference's resize (test.py:80); opencv-python-headless is in the dev extra
    rng = np.random.default_rng(1)
    for shape in ((14, 14), (64, 48), (300, 256)):
        h = rng.random(shape).astype(np.float32)
        ref = ref_pred_median(cv2.resize(h, dsize=(224, 224), interpolation=cv2.INTER_LINEAR))
        ours = prediction_map(h, "median").numpy()
        assert (ref != ours).mean() < 1e-3, shape  # float rounding at the median may flip a pixel or two


def test_constant_heatmap_predicts_nothing_and_empty_over_empty_is_undefined():
    flat = torch.full((50, 60), 0.7)
    assert prediction_map(flat, "median").sum() == 0 == ref_pred_median(np.full((N, N), 0.7)).sum()
    assert prediction_map(flat, 0.5).sum() == 0
    empty_gt = np.zeros((N, N))
    assert math.isnan(ciou(np.zeros((N, N)), empty_gt)) and math.isnan(ref_ciou(np.zeros((N, N)), empty_gt))
    assert ciou(np.ones((N, N)), empty_gt) == 0.0  # a prediction on an empty ground truth scores 0


def test_metric_summary_matches_the_restated_reference():
    values = [0.0, 0.049, 0.05, 0.15000000000000002, 0.5, 0.4999, 0.8, 1.0, float("nan"), 0.33]
    s = summarize(values)
    ref_c, ref_auc = ref_summary(values)
    assert s["cIoU@0.5"] == pytest.approx(ref_c) == pytest.approx(3 / 10)  # 0.5, 0.8, 1.0
    assert s["AUC"] == pytest.approx(ref_auc, abs=1e-12)
    assert s["undefined"] == 1 and s["samples"] == 10
    assert s["mean_cIoU"] == pytest.approx((0.049 + 0.05 + 0.15000000000000002 + 0.5 + 0.4999 + 0.8 + 1 + 0.33) / 10)
    assert s["curve"][0] == 0.9  # the NaN fails even t = 0, as in the reference
    assert len(CURVE_T) == 21 and CURVE_T[10] == 0.5


def test_metric_end_to_end_equals_the_restatement_on_mixed_samples():
    rng = np.random.default_rng(2)
    heat = [rng.random((N, N)).astype(np.float32) for _ in range(4)] + [np.zeros((N, N), np.float32)]
    gts = [vggss_gt_map([[0.1, 0.1, 0.6, 0.9]]), vggss_gt_map([[0, 0, 0.3, 0.3], [0.5, 0.5, 1, 1]]),
           flickr_gt_map([(0, 0, 200, 200), (30, 30, 256, 256)]), vggss_gt_map([[0.2, 0.3, 0.4, -2.88e16]]),
           np.zeros((N, N))]
    m = LocalizationMetric("median")
    m.update(heat[:2], gts[:2])
    m.update(heat[2:], gts[2:])
    per = m.per_sample().numpy()
    ref = [ref_ciou(ref_pred_median(h), g) for h, g in zip(heat, gts)]
    np.testing.assert_allclose(per, ref, rtol=0, atol=1e-12)
    assert per[3] == 0.0 and math.isnan(per[4])  # empty (corrupt) box: 0; empty over empty: undefined
    out = m.compute()
    assert out["threshold"] == "median"
    assert (out["cIoU@0.5"], out["AUC"]) == pytest.approx(ref_summary(ref))
    with pytest.raises(ValueError, match="224"):
        m.update([heat[0]], [np.zeros((10, 10))])
    with pytest.raises(ValueError, match="median"):
        LocalizationMetric("mean")


# --------------------------------------------------------------------------- readers


def test_vggss_reader_on_the_real_files(labels_dir, tmp_path):
    src = labels_dir / "vggss"
    ann = read_vggss_json(src / "vggss.json")
    assert len(ann) == 5158 and len({c for c, _ in ann.values()}) == 221
    assert {len(b) for _, b in ann.values()} == set(range(1, 8))
    ids = read_id_list(src / "vggss_test.csv", "VGG-SS test list")
    assert len(ids) == 5158 and ids[0] == "zpWuikVorYg_000032"
    assert len(read_id_list(src / "flickr_test.csv", "Flickr test list")) == 249  # the release lists 249 (papers: 250)
    root = tmp_path / "vggss"
    (root / "frames").mkdir(parents=True)
    (root / "audio").mkdir()
    Image.new("RGB", (32, 24)).save(root / "frames" / "zpWuikVorYg_000032.jpg")
    (root / "audio" / "zpWuikVorYg_000032.wav").write_bytes(b"RIFF")
    Image.new("RGB", (32, 24)).save(root / "frames" / "MKC9LvRivTM_000030.jpg")  # frame, no audio
    s = open_vggss(root, src / "vggss.json", src / "vggss_test.csv")
    assert [it.id for it in s.items] == ["zpWuikVorYg_000032"] and s.listed == 5158
    assert s.skips.counts["missing audio (no audio/{id}.wav, no video)"] == 1
    assert s.skips.counts["missing frame (no frames/{id}.jpg, no video)"] == 5156
    assert len(s.corrupt_entries) == 12 and s.corrupt_coordinates == 14  # counted in the real file
    assert "MKC9LvRivTM_000030" in s.corrupt_entries


def test_reader_errors_name_the_file(tmp_path):
    bad = tmp_path / "vggss.json"
    bad.write_text(json.dumps([{"file": "a_000001", "bbox": [[0, 0, 1]]}]))
    with pytest.raises(SourceError, match=r"vggss.json: entry 0 \(a_000001\)"):
        read_vggss_json(bad)
    xml = tmp_path / "1.xml"
    xml.write_text("<annotation><object><bbox><n>1</n><xmin>a</xmin></bbox></object></annotation>")
    with pytest.raises(SourceError, match="1.xml"):
        read_flickr_xml(xml)
    with pytest.raises(SourceError, match="not found"):
        open_flickr(tmp_path / "nope")


def test_flickr_reader_reads_bbox_grandchildren_after_the_first_child(tmp_path):
    root = tmp_path / "flickr"
    for d in ("frames", "audio", "Annotations"):
        (root / d).mkdir(parents=True)
    (root / "Annotations" / "10000130166.xml").write_text(
        "<annotation><filename>10000130166.jpg</filename>"
        "<bbs><bbox><label>1</label><xmin>10</xmin><ymin>20</ymin><xmax>100</xmax><ymax>200</ymax></bbox>"
        "<bbox><label>2</label><xmin>0</xmin><ymin>0</ymin><xmax>256</xmax><ymax>128</ymax></bbox></bbs>"
        "</annotation>")
    Image.new("RGB", (256, 256)).save(root / "frames" / "10000130166.jpg")
    (root / "audio" / "10000130166.wav").write_bytes(b"RIFF")
    (root / "flickr_test.csv").write_text("10000130166,202\n10007936344,0\n")
    s = open_flickr(root)
    assert [it.boxes for it in s.items] == [((10, 20, 100, 200), (0, 0, 256, 128))]
    assert s.skips.counts == {"missing annotation (no {id}.xml)": 1} and s.listed == 2
    gt = flickr_gt_map(s.items[0].boxes)
    np.testing.assert_array_equal(gt, ref_gt_flickr(s.items[0].boxes))
    assert gt.max() == 1.0 and 0.5 in gt  # the boxes overlap: two annotators there, one elsewhere


def test_video_frames_are_the_middle_frame(tmp_path):
    av = pytest.importorskip("av")
    from avsynth.protocols.localization import load_frame
    from avsynth.sources.records import LocalizationItem

    path = tmp_path / "clip_000001.mp4"
    with av.open(str(path), "w") as c:
        st = c.add_stream("mpeg4", rate=10)
        st.width, st.height, st.pix_fmt = 64, 48, "yuv420p"
        for i in range(9):  # frame i is uniformly grey level 25 * i
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 25 * i, np.uint8), format="rgb24")
            for pkt in st.encode(frame):
                c.mux(pkt)
        for pkt in st.encode():
            c.mux(pkt)
    img = load_frame(LocalizationItem("vggss", "clip_000001", "", (), audio=path, video=path))
    assert img.shape == (48, 64, 3) and abs(float(img.mean()) - 100) < 6  # frame 4 of 9


# --------------------------------------------------------------------------- the protocol, end to end


@pytest.fixture(scope="module")
def loc_demo(tmp_path_factory):
    from avsynth.demo import DemoSize, write_demo
    from avsynth.demo.localization import LocalizationDemoSize, ensure_localization_demo
    from avsynth.modeling import build_model, load_config, save_checkpoint

    root = tmp_path_factory.mktemp("loc")
    size = DemoSize("loc-test", images_per_category=2, oi_images_per_category=0, val_every=4, clips_train=2,
                    clips_test=2, missing_rows=1, extra_label_rows=1, v1s=(1, 1, 1), v1m=(1, 1, 1), avs_images=2,
                    max_categories=4, width=(160, 200), height=(120, 160))
    corpus = write_demo(root / "demo", seed=0, scale=size, workers=1)
    ensure_localization_demo(corpus, LocalizationDemoSize(per_category=2, seconds=2.0))
    cfg = load_config("sama-avs-tiny")
    return corpus, save_checkpoint(build_model(cfg), root / "model.pt", cfg)


def test_demo_localization_sets_are_in_the_real_layouts(loc_demo, tmp_path):
    corpus, _ = loc_demo
    loc = Path(corpus.root) / "localization"
    v = open_vggss(loc / "vggss")
    assert len(v.items) == 8 and v.listed == 11 and v.skips.total == 3  # 4 categories x 2, 3 gone
    assert len(v.corrupt_entries) == 1 and v.corrupt_coordinates == 1
    assert {it.category for it in v.items} == set(corpus.categories)
    f = open_flickr(loc / "flickr")
    assert len(f.items) == 8 and f.skips.total == 1 and all(2 <= len(it.boxes) <= 3 for it in f.items)
    for it in v.items[:2]:
        with Image.open(it.frame) as im:
            assert im.size == (224, 224)
        gt = vggss_gt_map(it.boxes)
        assert 0.05 < gt.mean() < 0.9  # the sounding object's box, a sizeable part of the frame
    # a pure function of (seed, categories, size): written again, the same bytes
    from avsynth.demo.localization import LocalizationDemoSize, write_localization_demo

    again = tmp_path / "again"
    write_localization_demo(again, list(corpus.categories), seed=corpus.seed,
                            size=LocalizationDemoSize(per_category=2, seconds=2.0))
    for rel in ("vggss/vggss.json", f"vggss/frames/{v.items[3].id}.jpg", f"flickr/audio/{f.items[5].id}.wav",
                f"flickr/Annotations/{f.items[5].id}.xml", "flickr/flickr_test.csv"):
        assert (again / rel).read_bytes() == (loc / rel).read_bytes(), rel


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("dataset", ["vggss", "flickr"])
def test_bench_localization_command_on_the_demo_set(loc_demo, tmp_path, dataset):
    corpus, ckpt = loc_demo
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["bench", "--checkpoint", str(ckpt), "--localization", dataset,
                                   "--demo-dir", str(corpus.root), "--out", str(out)])
    assert res.exit_code == 0, res.output
    run = json.loads((out / "localization.json").read_text())
    assert run["demo"] and run["threshold"] == "median" and run["evaluated"] == 8
    md = (out / "localization.md").read_text()
    assert "DEMO" in md and "control: whole image" in md and "control: centre box" in md
    if dataset == "vggss":
        assert "| GAVS (AAAI'24) | 41.07 | 0.411 |" in md and run["corrupt_entries"]
    loc = open_vggss(Path(corpus.root) / "localization" / "vggss") if dataset == "vggss" else \
        open_flickr(Path(corpus.root) / "localization" / "flickr")
    gts = {it.id: (ref_gt_vggss if dataset == "vggss" else ref_gt_flickr)(it.boxes) for it in loc.items}
    side = round(224 / math.sqrt(2))
    lo = (224 - side) // 2
    centre = np.zeros((N, N))
    centre[lo:lo + side, lo:lo + side] = 1
    assert side == 158
    for s in run["per_sample"]:
        g = gts[s["id"]]
        assert s["whole image"] == pytest.approx(g.sum() / (g.sum() + (g == 0).sum()))  # the ground truth's share
        assert s["centre box"] == pytest.approx(ref_ciou(centre, g))
    # JSON: fractions 0-1; report and console: cIoU@0.5 and mean cIoU in percent, the AUC 0-1 (as the papers)
    assert "cIoU@0.5 (% of samples" in md and "| AUC (0-1;" in md and "| mean cIoU (%) |" in md
    for name, key in (("model", "ciou"), ("whole image", "whole image"), ("centre box", "centre box")):
        values = [s[key] for s in run["per_sample"]]
        c, auc = ref_summary(values)
        assert run["results"][name]["cIoU@0.5"] == pytest.approx(c) and run["results"][name]["AUC"] == pytest.approx(auc)
        mean = float(np.nansum(values)) / len(values)  # an undefined (0/0) sample counts as 0
        assert 0 <= c <= 1 and 0 <= mean <= 1
        label = f"**{run['model']}**" if name == "model" else f"control: {name}"
        assert f"| {label} | {100 * c:.2f} | {auc:.3f} | {100 * mean:.2f} | 8 |" in md
        line = f"{dataset} {name}: cIoU@0.5 {100 * c:.2f}% AUC {auc:.3f} (0-1) mean cIoU {100 * mean:.2f}% (8 samples)"
        assert line in " ".join(res.output.split())  # the console may wrap the line
    pngs = sorted(p.name for p in (out / "overlays").glob("*.png"))
    assert len(pngs) == 6 and sum(p.startswith("localization-best-") for p in pngs) == 3
    with Image.open(out / "localization_curve.png") as im:
        assert im.size[0] > 300
    fixed = CliRunner().invoke(app, ["bench", "--checkpoint", str(ckpt), "--localization", dataset,
                                     "--demo-dir", str(corpus.root), "--out", str(tmp_path / "o2"),
                                     "--localization-threshold", "0.5", "--no-overlays"])
    assert fixed.exit_code == 0, fixed.output
    assert json.loads((tmp_path / "o2" / "localization.json").read_text())["threshold"] == 0.5


def test_bench_localization_errors_are_one_line(loc_demo, tmp_path):
    corpus, ckpt = loc_demo
    r = CliRunner().invoke(app, ["bench", "--checkpoint", str(ckpt), "--localization", "coco",
                                 "--demo-dir", str(corpus.root), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "vggss, flickr" in r.output and "Traceback" not in r.output
    empty = tmp_path / "empty"
    (empty / "frames").mkdir(parents=True)
    (empty / "vggss.json").write_text(json.dumps([{"file": "a_000001", "class": "x", "bbox": [[0, 0, 1, 1]]}]))
    r = CliRunner().invoke(app, ["bench", "--checkpoint", str(ckpt), "--localization", "vggss",
                                 "--localization-root", str(empty), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "none of the 1 listed vggss samples" in r.output


# --------------------------------------------------------------------------- the reference's own output


def test_matches_the_reference_fixture(labels_dir):
    """The reference's testset_gt / cal_CIOU / final / cal_AUC, run on the real vggss.json and on
    Flickr XML files (see tests/data/official/lvs_localization/README.md)."""
    d = Path(__file__).parent / "data" / "official" / "lvs_localization"
    fx = np.load(d / "fixture.npz")
    ann = read_vggss_json(labels_dir / "vggss" / "vggss.json")
    assert len(fx["vggss_ids"]) == 24 and sum(bool(ann[str(i)][1] and min(min(b) for b in ann[str(i)][1]) < 0)
                                              for i in fx["vggss_ids"]) == 12
    ours = [vggss_gt_map(ann[str(i)][1]) for i in fx["vggss_ids"]]
    ours += [flickr_gt_map(read_flickr_xml(d / "xml" / f"{i}.xml")) for i in fx["flickr_ids"]]
    np.testing.assert_array_equal(np.stack(ours), np.concatenate([fx["vggss_maps"], fx["flickr_maps"]]))
    preds = np.unpackbits(fx["preds"], axis=-1).astype(float)
    values = [ciou(p, g) for p, g in zip(preds, ours)]
    np.testing.assert_allclose(values, fx["cious"], rtol=0, atol=1e-12)
    s = summarize(values)
    assert s["cIoU@0.5"] == pytest.approx(float(fx["final"]), abs=1e-12)
    assert s["AUC"] == pytest.approx(float(fx["auc"]), abs=1e-12)
