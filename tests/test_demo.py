"""The demo corpora: deterministic, in the real formats, and only solvable by listening."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import pickle
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image
from pycocotools import mask as mask_utils

from avsynth.manifest import load_manifest
from avsynth.demo import procedural as proc
from avsynth.demo import (
    AVSS_CLASSES,
    DemoCorpus,
    DemoError,
    DemoSize,
    cache_name,
    ensure_demo,
    SCALES,
    make_layout,
    write_demo,
)
from avsynth.sources.records import SkipCounter

SR = 16_000
# A very small corpus (3 categories, every format present) for the tests that write several.
MICRO = DemoSize(
    "micro", images_per_category=2, oi_images_per_category=1, val_every=2, clips_train=1,
    clips_test=1, missing_rows=1, extra_label_rows=1, v1s=(1, 1, 1), v1m=(1, 1, 0),
    avs_images=3, max_categories=3, width=(160, 200), height=(120, 160),
)  # fmt: skip


def tree_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, keyed by relative path."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# ---------------------------------------------------------------------------------------------
# Determinism


@pytest.mark.slow
def test_same_seed_same_bytes_whatever_the_workers(demo_corpus, tmp_path):
    # The fixture ran with one worker per CPU; this one renders everything in-process.
    again = write_demo(tmp_path / "again", seed=0, scale="test", workers=1)
    a, b = tree_hashes(demo_corpus.root), tree_hashes(again.root)
    assert len(a) > 500
    assert a == b


def test_determinism_across_worker_counts_and_seeds(tmp_path):
    one = tree_hashes(write_demo(tmp_path / "w1", seed=5, scale=MICRO, workers=1).root)
    three = tree_hashes(write_demo(tmp_path / "w3", seed=5, scale=MICRO, workers=3).root)
    assert one == three
    manifest = load_manifest("avs-synthetic-46")
    a, _ = make_layout(manifest, 5, MICRO)
    b, _ = make_layout(manifest, 6, MICRO)
    assert a == make_layout(manifest, 5, MICRO)[0]
    assert a.vgg_rows != b.vgg_rows and a.images != b.images  # another seed, another corpus


# ---------------------------------------------------------------------------------------------
# LVIS v1 + COCO


def _lvis_docs(corpus):
    return [json.loads(p.read_text()) for p in (corpus.lvis_train_json, corpus.lvis_val_json)]


def test_lvis_json_parses_with_the_real_api(demo_corpus, labels_dir):
    from lvis import LVIS

    with open(labels_dir / "lvis_v1_categories.csv") as f:
        real = {r["name"]: r for r in csv.DictReader(f)}
    for path in (demo_corpus.lvis_train_json, demo_corpus.lvis_val_json):
        api = LVIS(str(path))
        assert api.get_img_ids() and api.get_ann_ids()
        for cat in api.load_cats(None):
            row = real[cat["name"]]  # a real LVIS name ...
            assert cat["id"] == int(row["id"])  # ... with its real id, synset and frequency
            assert cat["synset"] == row["synset"] and cat["frequency"] == row["frequency"]
        for img in api.load_imgs(None):
            assert re.fullmatch(
                r"http://images\.cocodataset\.org/(train2017|val2017)/\d{12}\.jpg", img["coco_url"]
            )
            folder, name = img["coco_url"].split("/")[-2:]
            with Image.open(demo_corpus.coco_root / folder / name) as im:
                assert im.format == "JPEG" and im.size == (img["width"], img["height"])
            assert {"neg_category_ids", "not_exhaustive_category_ids", "license"} <= img.keys()


def test_lvis_annotations_are_consistent(demo_corpus):
    train, val = _lvis_docs(demo_corpus)
    assert {i["coco_url"].split("/")[-2] for i in val["images"]} == {"train2017", "val2017"}
    assert not {i["id"] for i in train["images"]} & {i["id"] for i in val["images"]}
    not_exhaustive = 0
    for doc in (train, val):
        imgs = {i["id"]: i for i in doc["images"]}
        by_image = defaultdict(list)
        for ann in doc["annotations"]:
            img = imgs[ann["image_id"]]
            assert "iscrowd" not in ann and ann["segmentation"]
            rle = mask_utils.merge(
                mask_utils.frPyObjects(ann["segmentation"], img["height"], img["width"])
            )
            assert ann["area"] == pytest.approx(float(mask_utils.area(rle)))
            x, y, w, h = ann["bbox"]
            assert w > 0 and h > 0 and x >= 0 and y >= 0
            assert x + w <= img["width"] + 0.01 and y + h <= img["height"] + 0.01
            by_image[ann["image_id"]].append(ann["category_id"])
        for image_id, cats in by_image.items():
            img = imgs[image_id]
            assert len(cats) >= 2  # the object and at least one distractor, all annotated
            assert not set(img["neg_category_ids"]) & set(cats)
            assert set(img["not_exhaustive_category_ids"]) <= set(cats)
            not_exhaustive += bool(img["not_exhaustive_category_ids"])
    assert not_exhaustive > 0  # the reader's skip rule is exercised


def test_every_category_has_images_via_the_real_readers(demo_corpus):
    from avsynth.sources.lvis import read_lvis
    from avsynth.sources.openimages import read_openimages

    manifest = load_manifest("avs-synthetic-46")
    skips = SkipCounter()
    lvis = read_lvis(
        [demo_corpus.lvis_train_json, demo_corpus.lvis_val_json], demo_corpus.coco_root,
        manifest, skips,
    )  # fmt: skip
    oi = []
    for split in ("train", "validation", "test"):
        oi += read_openimages(demo_corpus.openimages_root, split, manifest, skips)
    per_cat = Counter(i.category for i in lvis + oi)
    assert set(per_cat) == set(manifest.names)
    assert min(per_cat.values()) >= 4
    assert {i.category for i in oi} >= {c.name for c in manifest if not c.lvis}
    # Images hold several categories: the image alone does not say which object sounds.
    cats_per_image = defaultdict(set)
    for inst in lvis:
        cats_per_image[inst.image_id].add(inst.category)
    assert np.mean([len(c) >= 2 for c in cats_per_image.values()]) > 0.95


# ---------------------------------------------------------------------------------------------
# VGGSound


def test_vggsound_csv_and_clips(demo_corpus, labels_dir):
    text = demo_corpus.vggsound_csv.read_text()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][1].isdigit()  # no header
    classes = set((labels_dir / "vggsound_classes.txt").read_text().splitlines())
    comma_labels = {r[2] for r in rows if "," in r[2]}
    assert comma_labels and all(f'"{lab}"' in text for lab in comma_labels)
    present = missing = 0
    for ytid, start, label, split in rows:
        assert re.fullmatch(r"[A-Za-z0-9_-]{11}", ytid) and split in ("train", "test")
        assert label in classes
        path = demo_corpus.vggsound_audio / f"{ytid}_{int(start):06d}.wav"
        if path.exists():
            present += 1
        else:
            missing += 1
    assert missing == demo_corpus.info["counts"]["vggsound"]["missing"] > 0
    wavs = sorted(demo_corpus.vggsound_audio.glob("*.wav"))
    assert len(wavs) == present
    for path in wavs[:10]:
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.subtype, info.format) == (
            SR, 1, "PCM_16", "WAV")  # fmt: skip
        assert info.frames == 10 * SR
    manifest = load_manifest("avs-synthetic-46")
    train_labels = {r[2] for r in rows if r[3] == "train"}
    for cat in manifest:
        assert train_labels & set(cat.vggsound), cat.name


def _mel_bank(n_fft=512, n_mels=64, lo=125.0, hi=7500.0):
    mel = lambda f: 1127.0 * np.log1p(np.asarray(f) / 700.0)
    freqs = np.fft.rfftfreq(n_fft, 1 / SR)
    m = mel(freqs)
    edges = np.linspace(mel(lo), mel(hi), n_mels + 2)
    bank = np.zeros((len(freqs), n_mels))
    for i in range(n_mels):
        left, centre, right = edges[i : i + 3]
        bank[:, i] = np.maximum(0, np.minimum((m - left) / (centre - left), (right - m) / (right - centre)))
    return bank


def _logmel_features(x: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """Mean and std over time of a 64-band log-mel spectrogram (25 ms / 10 ms frames)."""
    n = (len(x) - 400) // 160 + 1
    idx = np.arange(400)[None, :] + 160 * np.arange(n)[:, None]
    spec = np.abs(np.fft.rfft(x[idx] * np.hanning(400), 512))
    logmel = np.log(spec @ bank + 0.01)
    return np.concatenate([logmel.mean(0), logmel.std(0)])


def test_sounds_are_distinguishable(demo_corpus):
    """Nearest-centroid on log-mel statistics of random 3 s crops: centroids from the train clips,
    accuracy measured on the held-out test clips."""
    manifest = load_manifest("avs-synthetic-46")
    label_to_cat = manifest.by_source_label("vggsound")
    rows = list(csv.reader(io.StringIO(demo_corpus.vggsound_csv.read_text())))
    bank = _mel_bank()
    rng = np.random.default_rng(0)
    feats = {"train": defaultdict(list), "test": defaultdict(list)}
    for ytid, start, label, split in rows:
        path = demo_corpus.vggsound_audio / f"{ytid}_{int(start):06d}.wav"
        if label not in label_to_cat or not path.exists():
            continue
        x, _ = sf.read(path, dtype="float32")
        for off in rng.integers(0, len(x) - 3 * SR, size=2):
            feats[split][label_to_cat[label].name].append(_logmel_features(x[off : off + 3 * SR], bank))
    names = sorted(feats["train"])
    assert len(names) == 46 and set(feats["test"]) == set(names)
    centroids = np.stack([np.mean(feats["train"][n], 0) for n in names])
    scale = np.std(np.concatenate([feats["train"][n] for n in names]), 0) + 1e-6
    right = total = 0
    for i, name in enumerate(names):
        for f in feats["test"][name]:
            d = (((centroids - f) / scale) ** 2).sum(1)
            right += int(np.argmin(d) == i)
            total += 1
    assert right / total > 0.9, f"only {right}/{total} held-out crops classified correctly"


# ---------------------------------------------------------------------------------------------
# AVSBench, AVS-Synthetic, Open Images


def test_avsbench_tree(demo_corpus, labels_dir):
    root = demo_corpus.avsbench_root
    with open(root / "metadata.csv") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["vid", "uid", "s_min", "s_sec", "a_obj", "split", "label"]
        meta = list(reader)
    assert {r["label"] for r in meta} == {"v1s", "v1m"}
    assert {r["split"] for r in meta} == {"train", "val", "test"}
    with open(labels_dir / "avsbench_avss_classes.csv") as f:
        real = {r["name"]: (int(r["r"]), int(r["g"]), int(r["b"])) for r in csv.DictReader(f)}
    assert list(real) == list(AVSS_CLASSES)
    palette = set(proc.voc_palette(256)[1:])
    checked_real = 0
    for row in meta:
        video = root / row["label"] / row["uid"]
        for i in range(5):
            with Image.open(video / "frames" / f"{i}.jpg") as im:
                assert im.format == "JPEG"
                size = im.size
        info = sf.info(video / "audio.wav")
        assert (info.samplerate, info.channels, info.frames) == (SR, 1, 5 * SR)
        labels = sorted(p.name for p in (video / "labels_rgb").glob("*.png"))
        if row["label"] == "v1s" and row["split"] == "train":
            assert labels == ["0.png"]  # S4 train annotates the first frame only
        else:
            assert labels == [f"{i}.png" for i in range(5)]
        objects = row["a_obj"].split("_")
        assert len(objects) == (1 if row["label"] == "v1s" else 2)
        rgb = np.asarray(Image.open(video / "labels_rgb" / "0.png").convert("RGB"))
        assert rgb.shape[:2] == size[::-1]
        colours = {tuple(int(v) for v in c) for c in np.unique(rgb.reshape(-1, 3), axis=0)}
        assert (0, 0, 0) in colours and colours - {(0, 0, 0)} <= palette
        assert 1 <= len(colours - {(0, 0, 0)}) <= len(objects)
        for obj in objects:
            if obj in real:
                checked_real += real[obj] in colours
    assert checked_real > 0  # real AVSS colours used for the classes AVSS knows (dog, cat, ...)


def test_avs_synthetic_tree(demo_corpus):
    root = demo_corpus.avs_synthetic_root
    with open(root / "annotations.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"split", "inst_id", "img_id", "class_name", "class_id", "audio_name"} <= rows[0].keys()
    assert {r["split"] for r in rows} == {"train", "validate", "test"}

    class Builtins(pickle.Unpickler):
        def find_class(self, module, name):
            raise pickle.UnpicklingError(f"{module}.{name} is not a builtin")

    with open(root / "category_for_vggsound_audios.pkl", "rb") as f:
        pool = Builtins(f).load()
    assert all(isinstance(k, int) and all(isinstance(v, str) for v in vs) for k, vs in pool.items())
    for r in rows:
        assert (root / "images" / f"{r['img_id']}.jpg").is_file()
        mask = np.asarray(Image.open(root / "masks" / f"{r['inst_id']}.png"))
        assert set(np.unique(mask)) == {0, 255}
        assert r["audio_name"] in pool[int(r["class_id"])]
    for names in pool.values():
        for name in names:
            assert sf.info(root / "audios" / f"{name}.wav").samplerate == SR
    from avsynth.sources.avs_synthetic import read_release

    skips = SkipCounter()
    release = read_release(root, skips)
    assert len(release.rows) == len(rows) and skips.total == 0


def test_openimages_tree(demo_corpus):
    root = demo_corpus.openimages_root
    with open(root / "oidv7-class-descriptions-boxable.csv", newline="") as f:
        assert next(csv.reader(f)) == ["LabelName", "DisplayName"]
    for split in ("train", "validation", "test"):
        assert len(list((root / f"{split}-masks").glob(f"{split}-masks-*.zip"))) == 16
        with open(root / f"{split}-annotations-object-segmentation.csv") as f:
            rows = list(csv.DictReader(f))
        for r in rows:
            assert r["MaskPath"] == f"{r['ImageID']}_{r['LabelName'].replace('/', '')}_{r['BoxID']}.png"
            assert (root / split / f"{r['ImageID']}.jpg").is_file()


# ---------------------------------------------------------------------------------------------
# Identities, cache, errors, CLI


def test_category_identities_are_distinct():
    n = 46
    objects = [proc.object_style(k) for k in range(n)]
    assert len({(o.shape, o.pattern) for o in objects}) == n
    assert len({o.color for o in objects}) == n
    sounds = [proc.sound_style(k, n) for k in range(n)]
    assert len({(s.family, round(s.pitch, 3)) for s in sounds}) == n
    for name in proc.SHAPES:
        shape = proc.unit_shape(name)
        assert shape.is_valid and shape.geom_type == "Polygon" and shape.area > 0.5


def test_objects_are_recognisable_by_colour(demo_corpus):
    """Each category's object looks like itself: a nearest-centroid classifier on the colour
    histogram of the annotated pixels (LVIS train images) labels val instances correctly."""
    train, val = _lvis_docs(demo_corpus)

    def hist_by_cat(doc):
        imgs = {i["id"]: i for i in doc["images"]}
        out = defaultdict(list)
        cache = {}
        for ann in doc["annotations"]:
            if ann["area"] < 300:
                continue
            img = imgs[ann["image_id"]]
            if img["id"] not in cache:
                folder, name = img["coco_url"].split("/")[-2:]
                cache[img["id"]] = np.asarray(Image.open(demo_corpus.coco_root / folder / name))
            rle = mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], img["height"], img["width"]))
            m = mask_utils.decode(rle).astype(bool)
            # erode by one pixel ring to avoid JPEG edge blur
            m[1:-1, 1:-1] &= m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
            px = cache[img["id"]][m] // 32
            h = np.bincount(px[:, 0] * 64 + px[:, 1] * 8 + px[:, 2], minlength=512).astype(float)
            out[ann["category_id"]].append(h / max(1.0, h.sum()))
        return out

    tr, va = hist_by_cat(train), hist_by_cat(val)
    ids = sorted(tr)
    cent = np.stack([np.mean(tr[i], 0) for i in ids])
    right = total = 0
    for cid, hs in va.items():
        if cid not in tr:
            continue
        for h in hs:
            right += ids[int(np.argmin(np.abs(cent - h).sum(1)))] == cid
            total += 1
    assert total > 20 and right / total > 0.8, f"{right}/{total}"


def test_load_and_errors(demo_corpus, tmp_path):
    again = DemoCorpus.load(demo_corpus.root)
    assert again == demo_corpus
    assert again.categories == load_manifest("avs-synthetic-46").names
    with pytest.raises(DemoError, match="not a \\(complete\\) demo corpus"):
        DemoCorpus.load(tmp_path)
    (tmp_path / "junk.txt").write_text("x")
    with pytest.raises(DemoError, match="not an empty directory"):
        write_demo(tmp_path, scale="tiny")
    with pytest.raises(DemoError, match="unknown demo scale 'huge'"):
        write_demo(tmp_path / "new", scale="huge")


def test_ensure_demo_generates_once_and_atomically(tmp_path):
    corpus = ensure_demo(tmp_path, seed=2, scale=MICRO, workers=1)
    assert corpus.root == tmp_path / cache_name(2, "micro")
    stamp = (corpus.root / "demo.json").stat().st_mtime_ns
    assert ensure_demo(tmp_path, seed=2, scale=MICRO).root == corpus.root
    assert (corpus.root / "demo.json").stat().st_mtime_ns == stamp  # reused, not rewritten
    assert [p.name for p in tmp_path.iterdir()] == [corpus.root.name]  # no temp dirs left
    (corpus.root / "demo.json").unlink()  # an interrupted corpus is regenerated
    again = ensure_demo(tmp_path, seed=2, scale=MICRO, workers=2)
    assert (again.root / "demo.json").is_file()


def test_cli_demo_with_a_custom_manifest(tmp_path):
    from typer.testing import CliRunner

    from avsynth.cli import app

    yaml_path = tmp_path / "three.yaml"
    yaml_path.write_text(
        "name: three\ncategories:\n"
        "  - {name: dog, lvis: [dog, puppy], vggsound: [dog barking, dog howling]}\n"
        "  - {name: harp, openimages: [Harp], vggsound: [playing harp]}\n"
        "  - {name: piano, lvis: [piano], openimages: [Piano], vggsound: [playing piano]}\n"
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["demo", str(out), "--scale", "tiny", "--manifest", str(yaml_path), "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "3 categories" in result.output and "MB on disk" in result.output
    corpus = DemoCorpus.load(out)
    assert corpus.categories == ["dog", "harp", "piano"]
    lvis_names = {c["name"] for c in json.loads(corpus.lvis_train_json.read_text())["categories"]}
    assert {"dog", "puppy", "piano"} <= lvis_names and "harp" not in lvis_names
    bad = CliRunner().invoke(app, ["demo", str(out), "--scale", "tiny"])
    assert bad.exit_code == 2 and "not an empty directory" in bad.output


def test_s4_pretrain_scale_shows_each_image_with_several_sounding_categories():
    """``s4-pretrain``: s4-audio's 8 categories and S4 shape, plus 40 LVIS images and 9 train clips per
    category; every LVIS image holds its own category plus 1-3 others of the 8, so the shards built
    on it list the same image under several sounding categories (what pre-training needs)."""
    layout, _ = make_layout(load_manifest("avs-synthetic-46"), 0, SCALES["s4-pretrain"])
    assert [c.name for c in layout.cats] == ["ambulance", "cat", "dog", "bus", "horse", "lion", "bird", "guitar"]
    assert len(layout.images) == 8 * 40
    assert Counter(j.categories[0] for j in layout.images) == {k: 40 for k in range(8)}
    # 1-3 other demo categories per image (clutter, index >= 8, does not count)
    assert all(2 <= len({c for c in j.categories if c < 8}) <= 4 for j in layout.images)
    assert len([c for c in layout.clips if c.category >= 0]) == 8 * (9 + 2)
    for split, per_cat in (("train", 10), ("val", 2), ("test", 5)):
        jobs = [v for v in layout.videos if (v.label, v.split) == ("v1s", split)]
        assert Counter(c for v in jobs for c in v.sounding) == {k: per_cat for k in range(8)}
