"""Multi-source mixes, off-screen negatives and semantic masks (`avsynth build --sources-per-row K
--negatives F --semantic`) on the demo corpus, checked against the LVIS JSON and the VGGSound
files themselves; and the default build pinned byte for byte to the output of before."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from pycocotools import mask as coco_mask

from avsynth.build import BuildOptions, SourcePaths, build
from avsynth.errors import BuildError
from avsynth.manifest import load_manifest

SIZES = {"train": 60, "validation": 12, "test": 12}

# sha256 of every shard of the default build (K = 1, no negatives, no semantic) of the "test"-scale
# demo corpus (seed 0), categories 46, SIZES above, seed 0, rows_per_shard 25, workers 1. Obtained
# by running that build with the code of commit 9c7a8a7 (main before --sources-per-row existed);
# the audio pool is the same in both mask modes.
POOL = {
    "audio_pool/train-00000-of-00004.parquet": "7e39c258b28c705854049d3a5de6fad43d76ea720ad1192fa95be6f213756f3d",
    "audio_pool/train-00001-of-00004.parquet": "38cd6c9200d446771eed9da5191dee0707b92d87174eb2a57e05fb3f34b31e2f",
    "audio_pool/train-00002-of-00004.parquet": "b648c1c3d56d1983186c402cf6c679af057af9508e6721ad4d414cd127e35397",
    "audio_pool/train-00003-of-00004.parquet": "f3775b447d33762800f13bf8cd9c9b511301e370682d4ab06d4a912ddd8e7c4b",
}
BEFORE = {
    "instance": {
        "data/train-00000-of-00003.parquet": "c6d196a94458df37eec80ed3ff616d27550e33652be46fbb086c17086cba15a1",
        "data/train-00001-of-00003.parquet": "791d28dfbf880fe7a3729569c56e3e5c2e55595183678385f422a47b7abb517c",
        "data/train-00002-of-00003.parquet": "2ac995b8e244a3bd9a4febddc301306a139258ad58496cf470bc9045876ecbaa",
        "data/validation-00000-of-00001.parquet": "32ec5ba4f5c486c6e21d1f403a7b173d7db31b5b362e8df698de4d7674cb1efc",
        "data/test-00000-of-00001.parquet": "7f2e00d982827bf6b705ca63002560aba77a6ed76801ec1b6582c9791cc8562e",
        **POOL,
    },
    "category": {
        "data/train-00000-of-00003.parquet": "0181e2ebad39b688200d0416833203601807762933d20b50d1485ae18bdf7099",
        "data/train-00001-of-00003.parquet": "317b7e782971f11ec0988eb05299aa1738d76cada1d854554a2ca2800f7dafba",
        "data/train-00002-of-00003.parquet": "ac19dd8a3ead6b90c91a44a9081a7f1c6e4d4c598f8bd8c3e730c9551852b8ff",
        "data/validation-00000-of-00001.parquet": "f95df6fe65d4300d5cd59a01f8c988d51e651acf53cd9c864cde33eb2607d248",
        "data/test-00000-of-00001.parquet": "5fbc9ca6ca629676e2848ead1e634123af1ba65893ad696d8366c501f55f9429",
        **POOL,
    },
}


def sources(demo) -> SourcePaths:
    return SourcePaths(
        lvis_json=[Path(demo.lvis_train_json), Path(demo.lvis_val_json)], coco_root=Path(demo.coco_root),
        openimages_root=Path(demo.openimages_root), vggsound_csv=Path(demo.vggsound_csv),
        vggsound_audio=Path(demo.vggsound_audio),
    )


def options(out: Path, demo, **kw) -> BuildOptions:
    base = dict(out=out, categories="46", sources=sources(demo), sizes=dict(SIZES), seed=0, workers=1,
                rows_per_shard=25)
    base.update(kw)
    return BuildOptions(**base)


def rows_of(out: Path, columns=None) -> list[dict]:
    return [r for p in sorted((out / "data").glob("*.parquet")) for r in pq.read_table(p, columns=columns).to_pylist()]


@pytest.mark.parametrize("mask_mode", ["instance", "category"])
def test_default_build_is_byte_identical_to_before(demo_corpus, tmp_path, mask_mode):
    result = build(options(tmp_path / "out", demo_corpus, mask_mode=mask_mode), progress=False)
    got = {e.path: e.sha256 for e in result.record.shards + result.record.audio_pool}
    assert got == BEFORE[mask_mode]
    rec = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert "sources_per_row" not in rec["arguments"] and "composition" not in rec


@pytest.fixture(scope="module")
def extended(demo_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("mix") / "shards"
    result = build(options(out, demo_corpus, sources_per_row=2, negatives=0.2, semantic=True), progress=False)
    return out, result


@pytest.fixture(scope="module")
def lvis(demo_corpus):
    """The demo's LVIS annotations, read directly: image -> record, image -> annotations, id -> name."""
    images, anns, names = {}, {}, {}
    for path in (demo_corpus.lvis_train_json, demo_corpus.lvis_val_json):
        doc = json.loads(Path(path).read_text())
        names.update({c["id"]: c["name"] for c in doc["categories"]})
        images.update({str(i["id"]): i for i in doc["images"]})
        for a in doc["annotations"]:
            anns.setdefault(str(a["image_id"]), []).append(a)
    to_manifest = load_manifest().by_source_label("lvis")
    manifest_of = {cid: to_manifest[n].name for cid, n in names.items() if n in to_manifest}
    return images, anns, manifest_of


def test_negative_rows_play_a_verified_absent_category_over_an_empty_mask(extended, lvis):
    out, _ = extended
    images, _, manifest_of = lvis
    rows = rows_of(out, ["id", "image_source", "image_id", "category", "negative", "sources", "mask_area"])
    negatives = [r for r in rows if r["negative"]]
    assert len(negatives) >= 15
    for r in negatives:
        assert r["image_source"] == "lvis"  # the demo's Open Images tree has no image-level labels file
        verified = {manifest_of[c] for c in images[r["image_id"]]["neg_category_ids"] if c in manifest_of}
        assert r["category"] in verified
        assert [s["category"] for s in r["sources"]] == [r["category"]]
        assert r["mask_area"] == 0.0


def test_mixed_rows_use_present_exhaustive_categories_and_mask_their_union(extended, lvis, demo_corpus):
    out, _ = extended
    images, anns, manifest_of = lvis
    rows = [r for r in rows_of(out) if not r["negative"]]
    mixed = [r for r in rows if len(r["sources"]) == 2]
    assert len(mixed) == len(rows) >= 60
    for r in mixed:
        cats = [s["category"] for s in r["sources"]]
        assert len(set(cats)) == 2 and r["category"] == cats[0]
        if r["image_source"] != "lvis":
            continue
        img = images[r["image_id"]]
        not_exhaustive = {manifest_of.get(c) for c in img["not_exhaustive_category_ids"]}
        assert not set(cats) & not_exhaustive
        chosen = [a for a in anns[r["image_id"]] if manifest_of.get(a["category_id"]) in cats]
        assert {manifest_of[a["category_id"]] for a in chosen} == set(cats)
        h, w = img["height"], img["width"]
        expected = np.zeros((h, w), bool)
        for a in chosen:
            expected |= coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects(a["segmentation"], h, w))).astype(bool)
        from PIL import Image
        import io

        mask = np.asarray(Image.open(io.BytesIO(r["mask"]["bytes"]))).astype(bool)
        semantic = np.asarray(Image.open(io.BytesIO(r["semantic_mask"]["bytes"])))
        assert np.array_equal(mask, expected)
        assert np.array_equal(semantic > 0, expected)
        ids = {load_manifest()[c].category_id + 1 for c in cats}  # manifest class space
        assert set(np.unique(semantic)) - {0} <= ids


def test_no_mixed_row_uses_a_not_exhaustive_category_even_when_it_has_instances(tmp_path):
    """The reader already drops not-exhaustive instances; the plan refuses them on its own too."""
    from avsynth.plan import PlanOptions, make_mix_units
    from avsynth.sources.records import ImageInstance, ImageLabels, MaskRef

    def inst(cat, ann):
        return ImageInstance("lvis", "7", str(ann), cat, cat, tmp_path / "x.jpg", 10, 10,
                             MaskRef(polygons=((0, 0, 5, 0, 5, 5),)), (0, 0, 5, 5), 12.5)

    insts = [inst("dog", 1), inst("cat", 2), inst("horse", 3)]
    labels = {"lvis:7": ImageLabels("lvis", "7", tmp_path / "x.jpg", 10, 10, (), ("cat",))}
    for seed in range(8):
        units, _ = make_mix_units(insts, load_manifest(), PlanOptions(seed=seed, sources_per_row=2), labels)
        assert [sorted(c for c, _, _ in u.mix) for u in units] == [["dog", "horse"]]
    units, filtered = make_mix_units(insts, load_manifest(), PlanOptions(sources_per_row=3), labels)
    assert units == [] and filtered == {"image has fewer than --sources-per-row usable categories": 1}


def _by_hand_mix(waves, gains_db):
    """-20 dBFS RMS each, times 10^(g/20), summed, scaled to peak 0.99 if above it."""
    out = sum(w / np.sqrt(np.mean(w.astype(np.float64) ** 2)) * 0.1 * 10 ** (g / 20) for w, g in zip(waves, gains_db))
    peak = np.abs(out).max()
    return out * (0.99 / peak) if peak > 0.99 else out


def test_mixed_audio_is_the_gain_weighted_sum_of_the_normalised_source_windows(extended, demo_corpus):
    out, _ = extended
    audio_dir = Path(demo_corpus.vggsound_audio)
    rows = [r for r in rows_of(out) if len(r["sources"]) == 2][:4]
    for r in rows:
        waves = []
        for s in r["sources"]:
            wave, sr = sf.read(audio_dir / f"{s['audio_id']}.wav", dtype="float64")
            start = int(round(float(np.float32(s["offset"])) * sr))
            waves.append(wave[start:start + 3 * sr])
            assert -6.0 <= s["gain_db"] <= 0.0
        expected = _by_hand_mix(waves, [s["gain_db"] for s in r["sources"]])
        got, _ = sf.read(__import__("io").BytesIO(r["audio"]["bytes"]), dtype="float64")
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() < 2.0 / 32767  # 16-bit quantisation (and float32 mixing)
        assert r["audio_id"] == "+".join(s["audio_id"] for s in r["sources"])


def test_extended_build_is_split_disjoint_deterministic_and_verified(extended, demo_corpus, tmp_path):
    from avsynth.shards.verify import verify_dir

    out, result = extended
    rows = rows_of(out, ["split", "image_source", "image_id", "sources"])
    image_split, clip_split = {}, {}
    for r in rows:
        assert image_split.setdefault((r["image_source"], r["image_id"]), r["split"]) == r["split"]
        for s in r["sources"]:
            assert clip_split.setdefault(s["audio_id"], r["split"]) == r["split"]
    report = verify_dir(out)
    assert report.ok, report.summary()
    comp = result.record.extra["composition"]
    assert comp["train"]["negative_rows"] == comp["train"]["planned"]["negatives_requested"]
    # 0.2 of the split: negatives = round(0.2 / 0.8 * positives)
    assert comp["train"]["negative_rows"] == round(0.25 * comp["train"]["mixed_rows"])
    assert result.record.filtered["image has fewer than --sources-per-row usable categories"] > 0
    again = build(options(tmp_path / "w2", demo_corpus, sources_per_row=2, negatives=0.2, semantic=True,
                          workers=2), progress=False)
    assert [e.sha256 for e in again.record.shards] == [e.sha256 for e in result.record.shards]


def test_verify_catches_a_semantic_mask_that_disagrees_with_the_mask(extended, tmp_path):
    """Rewrite one shard with a positive row's semantic mask emptied (record updated to match)."""
    import shutil

    from avsynth.io import sha256_file
    from avsynth.media.mask import encode_label_png
    from avsynth.shards.schema import arrow_schema
    from avsynth.shards.verify import verify_dir
    from avsynth.shards.writer import write_shard

    out, _ = extended
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    shard = bad / "data" / "test-00000-of-00001.parquet"
    rows = pq.read_table(shard).to_pylist()
    i = next(k for k, r in enumerate(rows) if not r["negative"])
    rows[i]["semantic_mask"] = {"bytes": encode_label_png(np.zeros((rows[i]["height"], rows[i]["width"]), np.uint8)),
                                "path": None}
    shard.unlink()
    write_shard(rows, shard, schema=arrow_schema(True, True))
    rec = json.loads((bad / "manifest.json").read_text())
    for e in rec["shards"]:
        if e["path"].endswith(shard.name):
            e["sha256"], e["bytes"] = sha256_file(shard), shard.stat().st_size
    (bad / "manifest.json").write_text(json.dumps(rec))
    report = verify_dir(bad)
    assert not report.ok and "semantic_mask > 0 differs from the mask" in report.summary()


def test_datasets_and_card_show_the_new_columns(extended):
    import datasets

    out, _ = extended
    ds = datasets.load_dataset("parquet", data_files=str(out / "data" / "test-*.parquet"), split="train")
    assert isinstance(ds.features["semantic_mask"], datasets.Image)
    assert ds.features["negative"] == datasets.Value("bool")
    assert set(ds[0]["sources"][0]) == {"category", "category_id", "audio_id", "offset", "gain_db"}
    card = (out / "README.md").read_text()
    assert "`semantic_mask`" in card and "## Mixes and off-screen rows" in card


def test_repairing_a_mixed_row_keeps_its_category_set(extended):
    from avsynth.shards.reader import TripletIterableDataset

    out, _ = extended
    stored = {r["id"]: r for r in rows_of(out, ["id", "sources", "audio_id", "split"]) if r["split"] == "train"}
    pool = {r["audio_id"]: r["category"] for p in sorted((out / "audio_pool").glob("*.parquet"))
            for r in pq.read_table(p, columns=["audio_id", "category"]).to_pylist()}
    ds = TripletIterableDataset(out, "train", columns=["id", "category", "image", "mask", "audio"], decode=False)
    ds.set_epoch(1)
    seen = changed = 0
    for row in ds:
        src = stored[row["id"]]["sources"]
        if len(src) < 2:
            continue
        seen += 1
        assert [s["category"] for s in row["sources"]] == [s["category"] for s in src]
        assert [s["gain_db"] for s in row["sources"]] == [s["gain_db"] for s in src]
        assert [pool[s["audio_id"]] for s in row["sources"]] == [s["category"] for s in src]
        changed += [s["audio_id"] for s in row["sources"]] != [s["audio_id"] for s in src]
    assert seen >= 50 and changed > seen // 2


def test_manifest_avsbench_names_are_avss_classes(labels_dir):
    with open(labels_dir / "avsbench_avss_classes.csv", newline="") as fh:
        avss = [r["name"] for r in csv.DictReader(fh)]
    assert len(avss) == 71 and avss[0] == "background"
    for name in ("avs-synthetic-46", "full"):
        m = load_manifest(name)
        mapped = {c.name: c.avsbench for c in m.categories if c.avsbench}
        assert len(mapped) == 36
        assert all(v in avss[1:] for v in mapped.values()), mapped
    from avsynth.build.mixing import semantic_class_ids
    from avsynth.manifest import select_categories

    ids = semantic_class_ids(select_categories("dog,chicken,computer_keyboard"), "avsbench")
    assert ids == {"dog": avss.index("dog"), "chicken": avss.index("hen"), "computer_keyboard": avss.index("keyboard")}
    with pytest.raises(BuildError, match="printer"):
        semantic_class_ids(select_categories("dog,printer"), "avsbench")


def test_openimages_negatives_come_from_human_verified_absent_labels_only(tmp_path, real_dir):
    from avsynth.sources.openimages import read_openimages_negatives
    from avsynth.sources.records import SkipCounter
    from tests.fixtures import photo, write_oi_classes

    root = tmp_path / "oi"
    (root / "validation").mkdir(parents=True)
    write_oi_classes(root / "oidv7-class-descriptions-boxable.csv",
                     {"/m/0bt9lr": "Dog", "/m/01yrx": "Cat", "/m/03k3r": "Horse"})
    for image_id in ("aa01", "bb02"):
        (root / "validation" / f"{image_id}.jpg").write_bytes(photo(real_dir).read_bytes())
    labels = root / "validation-annotations-human-imagelabels-boxable.csv"
    labels.write_text(
        "ImageID,Source,LabelName,Confidence\n"
        "aa01,verification,/m/0bt9lr,0\n"  # dog verified absent
        "aa01,verification,/m/01yrx,1\n"  # cat verified present: not a negative
        "bb02,crowdsource-verified,/m/03k3r,0\n"  # horse verified absent
        "cc03,verification,/m/01yrx,0\n"  # image file missing: counted skip
    )
    skips = SkipCounter()
    got = read_openimages_negatives(labels, root, load_manifest(), skips)
    assert [(g.image_id, g.negatives) for g in got] == [("aa01", ("dog",)), ("bb02", ("horse",))]
    assert skips.counts["openimages: image with a verified negative label missing or unreadable"] == 1


def test_bad_extended_options_are_one_line_errors(demo_corpus, tmp_path):
    with pytest.raises(BuildError, match="--negatives"):
        build(options(tmp_path / "a", demo_corpus, negatives=1.0), progress=False)
    with pytest.raises(BuildError, match="--mask-mode"):
        build(options(tmp_path / "b", demo_corpus, sources_per_row=2, mask_mode="category"), progress=False)
    with pytest.raises(BuildError, match="avsbench"):
        build(options(tmp_path / "c", demo_corpus, semantic=True, semantic_classes="avsbench"), progress=False)


def test_stats_and_contact_sheet_show_mixes_and_negatives(extended, tmp_path):
    from avsynth.shards.stats import sheet_items, write_stats

    out, result = extended
    stats = write_stats(out, tmp_path / "stats", audio_limit=4).stats
    comp = result.record.extra["composition"]
    for split in ("train", "validation", "test"):
        assert stats["composition"][split] == {"single": 0, "mixed": comp[split]["mixed_rows"],
                                               "negative": comp[split]["negative_rows"]}
    captions = [item.caption for item in sheet_items(out, n=8)]
    assert sum(c.startswith("off-screen: ") for c in captions) == 4
    assert sum(" + " in c for c in captions) == 4
    for item in sheet_items(out, n=8):
        assert (item.mask.any()) != item.caption.startswith("off-screen: ")


def test_decoded_samples_carry_the_semantic_mask(extended):
    from avsynth.shards.reader import TripletDataset

    out, _ = extended
    ds = TripletDataset(out, "test")
    for i in range(len(ds)):
        sample = ds[i]
        assert sample["semantic_mask"].dtype.is_floating_point is False
        assert bool(((sample["semantic_mask"] > 0) == sample["mask"]).all())
        assert bool(sample["mask"].any()) != sample["negative"]


def test_extended_build_resumes_to_the_same_bytes_and_refuses_other_options(extended, demo_corpus, tmp_path):
    import shutil

    out, result = extended
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    lost = "data/train-00001-of-00003.parquet"
    (copy / lost).unlink()
    (copy / ".avsynth" / "shards" / lost.replace("/", "__").replace(".parquet", ".json")).unlink()
    (copy / "manifest.json").unlink()
    kw = dict(sources_per_row=2, negatives=0.2, semantic=True)
    again = build(options(copy, demo_corpus, resume=True, **kw), progress=False)
    assert again.shards_written == 1
    assert [e.sha256 for e in again.record.shards] == [e.sha256 for e in result.record.shards]
    with pytest.raises(BuildError, match="differs in: arguments"):
        build(options(copy, demo_corpus, resume=True, **{**kw, "negatives": 0.3}), progress=False)


def test_demo_corpus_exercises_mixes_negatives_and_several_sources(demo_corpus, lvis):
    """The demo has what these options need: images with several manifest categories, LVIS-format
    verified negatives and not-exhaustive lists, and MS3 videos with two sounding objects."""
    images, anns, manifest_of = lvis
    several = [i for i, a in anns.items() if len({manifest_of.get(x["category_id"]) for x in a} - {None}) >= 2]
    assert len(several) > len(anns) // 2
    assert sum(bool(img["neg_category_ids"]) for img in images.values()) > len(images) // 2
    assert any(img["not_exhaustive_category_ids"] for img in images.values())
    with open(Path(demo_corpus.avsbench_root) / "metadata.csv", newline="") as fh:
        ms3 = [r for r in csv.DictReader(fh) if r["label"] == "v1m"]
    assert ms3 and all(len(r["a_obj"].split("_")) == 2 for r in ms3)


def test_cli_flags_give_the_same_bytes_and_refuse_bad_values(extended, demo_corpus, tmp_path):
    import subprocess
    import sys

    def cli(out: Path, extra: list[str]) -> subprocess.CompletedProcess:
        d = demo_corpus
        args = [sys.executable, "-m", "avsynth", "build", "--out", str(out), "--quiet", "--workers", "1",
                "--rows-per-shard", "25", "--num-train", "60", "--num-val", "12", "--num-test", "12",
                "--coco-root", str(d.coco_root), "--vggsound-csv", str(d.vggsound_csv),
                "--vggsound-audio", str(d.vggsound_audio), "--openimages-root", str(d.openimages_root),
                "--lvis-json", str(d.lvis_train_json), "--lvis-json", str(d.lvis_val_json), *extra]
        return subprocess.run(args, capture_output=True, text=True, timeout=300)

    out, result = extended
    ok = cli(tmp_path / "o", ["--sources-per-row", "2", "--negatives", "0.2", "--semantic"])
    assert ok.returncode == 0, ok.stderr
    rec = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert [e["sha256"] for e in rec["shards"]] == [e.sha256 for e in result.record.shards]
    bad = cli(tmp_path / "b", ["--negatives", "1.5"])
    assert bad.returncode == 2 and "--negatives" in bad.stderr and "Traceback" not in bad.stderr


def test_silent_source_clips_of_mixed_and_negative_rows_are_counted_skips(extended, demo_corpus, tmp_path):
    """Every sound of a mixed or off-screen row passes the build's audio checks: a silenced source
    clip removes exactly the rows that play it (counted as "silent audio"), nothing else changes."""
    import shutil

    out, _ = extended
    clean = rows_of(out, ["id", "negative", "sources"])
    mixed = next(r for r in clean if len(r["sources"]) > 1)
    negative = next(r for r in clean if r["negative"])
    silenced = {mixed["sources"][1]["audio_id"], negative["sources"][0]["audio_id"]}
    root = tmp_path / "src"
    for name in ("lvis", "coco", "openimages", "vggsound"):
        shutil.copytree(Path(demo_corpus.root) / name, root / name)
    for audio_id in silenced:
        clip = root / "vggsound/audio" / f"{audio_id}.wav"
        wave, sr = sf.read(clip, dtype="int16")
        sf.write(clip, np.zeros_like(wave), sr, subtype="PCM_16")
    paths = SourcePaths(
        lvis_json=[root / "lvis/lvis_v1_train.json", root / "lvis/lvis_v1_val.json"],
        coco_root=root / "coco", openimages_root=root / "openimages",
        vggsound_csv=root / "vggsound/vggsound.csv", vggsound_audio=root / "vggsound/audio",
    )
    result = build(BuildOptions(out=tmp_path / "out", categories="46", sources=paths, sizes=dict(SIZES),
                                seed=0, workers=1, rows_per_shard=25, sources_per_row=2, negatives=0.2,
                                semantic=True), progress=False)
    hit = {r["id"] for r in clean if silenced & {s["audio_id"] for s in r["sources"]}}
    assert {mixed["id"], negative["id"]} <= hit
    after = {r["id"] for r in rows_of(tmp_path / "out", ["id"])}
    assert after == {r["id"] for r in clean} - hit
    assert result.record.skipped["silent audio"]["count"] == len(hit)
