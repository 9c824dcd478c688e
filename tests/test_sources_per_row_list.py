"""`--sources-per-row` with a K list (`1,2`, `1:3,2:1`): each image draws its K, seeded and weighted,
so single-source rows and mixed rows share one build (one plan: disjoint splits, one audio pool,
one record). Plan rules on hand-built records (expected values from their construction and the
documented rule); one build of the demo corpus end to end."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from avsynth.build import BuildOptions, SourcePaths, build
from avsynth.errors import BuildError
from avsynth.manifest import Category, Manifest
from avsynth.plan import (SKIP_FEW_CATEGORIES, SKIP_NONE_SILENT, PlanOptions, canonical_sources_per_row, choose_k, make_plan,
                          parse_sources_per_row)
from avsynth.shards.schema import row_layout
from avsynth.sources.records import AudioClip, ImageInstance, ImageLabels, MaskRef

CATS = ["dog", "cat", "piano"]
MANIFEST = Manifest("t", tuple(Category(name=n, category_id=10 + i, lvis=(n,), vggsound=(f"{n} sound",))
                               for i, n in enumerate(CATS)))


def inst(image: int, cat: str, ann: int) -> ImageInstance:
    return ImageInstance(source="lvis", image_id=str(image), annotation_id=f"{ann:05d}", category=cat,
                         source_label=cat, image_path=Path(f"/x/{image}.jpg"), width=100, height=50,
                         mask=MaskRef(polygons=((0.0, 0.0, 5.0, 0.0, 5.0, 5.0),)), bbox=(0, 0, 5, 5), area=100.0)


def clips(n: int = 4) -> list[AudioClip]:
    return [AudioClip("vggsound", f"{c}{i:03d}", f"{c} sound", "train", Path(f"/a/{c}{i}.wav"))
            for c in CATS for i in range(n)]


def plan_of(recs, spec, seed=3, image_labels=(), **kw):
    return make_plan(recs, clips(), MANIFEST, PlanOptions(seed=seed, sizes={"train": 10_000, "validation": 0, "test": 0},
                                                         rows_per_shard=10_000, sources_per_row=spec, **kw),
                     image_labels=image_labels)


def two_category_images(n: int) -> list[ImageInstance]:
    """Image i (1..n): two dog instances and one cat instance (annotation ids 3i, 3i+1, 3i+2)."""
    return [x for i in range(1, n + 1) for x in (inst(i, "dog", 3 * i), inst(i, "dog", 3 * i + 1),
                                                  inst(i, "cat", 3 * i + 2))]


def by_image(plan) -> dict[str, list]:
    out: dict[str, list] = {}
    for r in plan.rows["train"]:
        out.setdefault(r.instances[0].image_id, []).append(r)
    return out


def test_the_k_list_is_parsed_with_weights_and_recorded_canonically():
    assert parse_sources_per_row(2) == ((2, 1),)
    assert parse_sources_per_row("1,2") == ((1, 1), (2, 1))
    assert parse_sources_per_row(" 2:1, 1:3 ") == ((1, 3), (2, 1))
    assert canonical_sources_per_row("2") == 2 and canonical_sources_per_row(1) == 1
    assert canonical_sources_per_row("2,1") == "1:1,2:1"
    for bad, says in [("0", "at least 1"), ("1,1", "listed twice"), ("1,x", "not K or K:WEIGHT"),
                      ("1:0,2", "at least 1"), ("1:2:3", "not K or K:WEIGHT"), (0, "at least 1")]:
        with pytest.raises(ValueError, match=says):
            parse_sources_per_row(bad)
    # a record written with a K list is an extended layout (sources / negative columns)
    assert row_layout({"sources_per_row": "1:1,2:1"}) == (True, False)
    assert row_layout({"sources_per_row": 1}) == (False, False)


def test_choose_k_draws_among_the_k_the_image_can_fill_with_the_weights():
    assert choose_k(((1, 1), (2, 1)), 1, 0, "lvis:1") == 1  # one usable category: only K = 1 fits
    assert choose_k(((2, 1), (3, 1)), 1, 0, "lvis:1") is None
    assert {choose_k(((2, 1), (3, 1)), 2, s, "lvis:1") for s in range(20)} == {2}
    draws = Counter(choose_k(((1, 1), (2, 3)), 2, 0, f"lvis:{i}") for i in range(2000))
    assert set(draws) == {1, 2}
    assert 0.70 < draws[2] / 2000 < 0.80  # weight 3 of 4


def test_each_image_gives_its_single_source_rows_or_its_mixed_row_never_both():
    recs = two_category_images(40) + [inst(100, "dog", 1000), inst(100, "dog", 1001)]  # image 100: dog only
    single, mixed, both = plan_of(recs, 1), plan_of(recs, 2), plan_of(recs, "1,2")
    rows_1, rows_2, rows = by_image(single), by_image(mixed), by_image(both)
    assert set(rows) == {str(i) for i in range(1, 41)} | {"100"}
    kinds = Counter()
    for image, got in rows.items():
        ids = sorted(r.id for r in got)
        if any(len(r.sources) == 2 for r in got):
            # the one mixed row of a --sources-per-row 2 build: dog and cat, the union of 3 instances
            assert ids == [r.id for r in rows_2[image]] and len(got) == 1
            assert sorted(s.category for s in got[0].sources) == ["cat", "dog"] and len(got[0].instances) == 3
            kinds["mixed"] += 1
        else:
            # exactly the rows of the default build: one per instance, each its own category and clip
            assert ids == sorted(r.id for r in rows_1[image])
            assert all(len(r.sources) == 1 and r.sources[0].gain_db == 0.0 for r in got)
            kinds["single"] += 1
    assert len(rows["100"]) == 2 and all(len(r.sources) == 1 for r in rows["100"])
    assert kinds["mixed"] >= 5 and kinds["single"] >= 6  # 40 fair draws (plus image 100)
    assert mixed.filtered == {SKIP_FEW_CATEGORIES: 1}  # K = 2 alone drops image 100
    assert both.filtered == {}
    assert plan_of(recs, "1,2").rows == both.rows  # deterministic
    changed = by_image(plan_of(recs, "1,2", seed=4))
    assert any(len(changed[i]) != len(rows[i]) for i in rows)  # the draw moves with the seed


def test_a_not_exhaustive_category_does_not_count_towards_k():
    # images 1-30: dog + cat, cat not exhaustively annotated -> one usable category -> K = 1 always
    recs = two_category_images(30)
    labs = [ImageLabels("lvis", str(i), Path(f"/x/{i}.jpg"), 100, 50, (), ("cat",)) for i in range(1, 31)]
    plan = plan_of(recs, "1,2", image_labels=labs)
    assert len(plan.rows["train"]) == 90 and all(len(r.sources) == 1 for r in plan.rows["train"])  # 30 x 3 instances
    assert plan.filtered == {}
    # "2,3": images with two usable categories all mix two; too few usable -> a counted skip
    three = two_category_images(20) + [inst(50, "dog", 500), inst(50, "cat", 501), inst(50, "piano", 502)]
    plan = plan_of(three + [inst(60, "dog", 600)], "2,3")
    sizes = Counter(len(r.sources) for r in plan.rows["train"])
    assert sizes[2] >= 20 and sizes[2] + sizes[3] == 21 and plan.filtered == {SKIP_FEW_CATEGORIES: 1}


def test_mix_keep_silent_mixes_only_images_that_keep_a_usable_category_silent():
    # images 1-20: dog + cat (2 categories); images 201-220: dog + cat + piano (3)
    recs = two_category_images(20) + [x for i in range(201, 221) for x in (
        inst(i, "dog", 3 * i), inst(i, "cat", 3 * i + 1), inst(i, "piano", 3 * i + 2))]
    plan = plan_of(recs, 2, mix_keep_silent=True)
    assert sorted(int(r.instances[0].image_id) for r in plan.rows["train"]) == list(range(201, 221))
    assert all(len(r.sources) == 2 for r in plan.rows["train"])
    assert plan.filtered == {SKIP_NONE_SILENT: 20}
    assert len(plan_of(recs, 2).rows["train"]) == 40  # off: every image mixes
    rows = by_image(plan_of(recs, "1,2", mix_keep_silent=True))
    assert all(len(rows[str(i)]) == 3 and all(len(r.sources) == 1 for r in rows[str(i)]) for i in range(1, 21))
    three = Counter("mixed" if len(rows[str(i)]) == 1 else "single" for i in range(201, 221))
    assert three["mixed"] >= 3 and three["single"] >= 3  # 20 fair draws between K = 1 and 2
    # "2,3" with keep-silent: a 3-category image can only mix 2 (3 would leave none silent)
    assert {len(r.sources) for r in plan_of(recs, "2,3", mix_keep_silent=True).rows["train"]} == {2}


# ------------------------------------------------------------------------------ the build, end to end

SIZES = {"train": 60, "validation": 12, "test": 12}


def options(out: Path, demo, **kw) -> BuildOptions:
    d = demo
    base = dict(out=out, categories="46", sizes=dict(SIZES), seed=0, workers=1, rows_per_shard=25,
                sources=SourcePaths(lvis_json=[Path(d.lvis_train_json), Path(d.lvis_val_json)],
                                    coco_root=Path(d.coco_root), vggsound_csv=Path(d.vggsound_csv),
                                    vggsound_audio=Path(d.vggsound_audio)))
    base.update(kw)
    return BuildOptions(**base)


def test_a_k_list_build_is_verified_recorded_carded_deterministic_and_resumable(demo_corpus, tmp_path):
    import shutil

    from avsynth.shards.verify import verify_dir

    out = tmp_path / "k12"
    result = build(options(out, demo_corpus, sources_per_row="1,2", negatives=0.2), progress=False)
    assert result.record.arguments["sources_per_row"] == "1:1,2:1"
    assert "mix_keep_silent" not in result.record.arguments
    rows = [r for p in sorted((out / "data").glob("*.parquet"))
            for r in pq.read_table(p, columns=["split", "image_id", "sources", "negative", "mask_area"]).to_pylist()]
    kinds = Counter("negative" if r["negative"] else len(r["sources"]) for r in rows)
    assert kinds[1] > 0 and kinds[2] > 0 and kinds["negative"] > 0 and set(kinds) == {1, 2, "negative"}
    comp = result.record.extra["composition"]
    assert sum(comp[s]["mixed_rows"] for s in comp) == kinds[2]
    assert sum(comp[s]["negative_rows"] for s in comp) == kinds["negative"]
    positives_of = {}
    for r in rows:
        if not r["negative"]:
            positives_of.setdefault(r["image_id"], set()).add(len(r["sources"]))
            assert r["mask_area"] > 0
    assert all(len(k) == 1 for k in positives_of.values())  # an image gives one kind of row
    report = verify_dir(out)
    assert report.ok, report.summary()
    card = (out / "README.md").read_text()
    assert "`--sources-per-row 1:1,2:1` (K:weight) mixes kinds of rows" in card
    again = build(options(tmp_path / "w2", demo_corpus, sources_per_row="2,1", negatives=0.2, workers=2),
                  progress=False)
    assert [e.sha256 for e in again.record.shards] == [e.sha256 for e in result.record.shards]
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    with pytest.raises(BuildError, match="differs in: arguments"):
        build(options(copy, demo_corpus, resume=True, sources_per_row="1:1,2:2", negatives=0.2), progress=False)
    lost = result.record.shards[0].path
    (copy / lost).unlink()
    (copy / ".avsynth" / "shards" / lost.replace("/", "__").replace(".parquet", ".json")).unlink()
    (copy / "manifest.json").unlink()
    resumed = build(options(copy, demo_corpus, resume=True, sources_per_row="1,2", negatives=0.2), progress=False)
    assert resumed.shards_written == 1
    assert [e.sha256 for e in resumed.record.shards] == [e.sha256 for e in result.record.shards]


def test_bad_k_lists_are_one_line_errors(demo_corpus, tmp_path):
    import subprocess
    import sys

    with pytest.raises(BuildError, match="listed twice"):
        build(options(tmp_path / "a", demo_corpus, sources_per_row="2,2"), progress=False)
    with pytest.raises(BuildError, match="--mask-mode"):
        build(options(tmp_path / "b", demo_corpus, sources_per_row="1,2", mask_mode="category"), progress=False)
    with pytest.raises(BuildError, match="--mix-keep-silent applies to mixed rows"):
        build(options(tmp_path / "d", demo_corpus, mix_keep_silent=True), progress=False)
    bad = subprocess.run([sys.executable, "-m", "avsynth", "build", "--out", str(tmp_path / "c"), "--quiet",
                          "--sources-per-row", "1,two"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--sources-per-row" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "c").exists()


def test_a_mix_keep_silent_build_mixes_only_images_with_a_silent_manifest_object(demo_corpus, tmp_path):
    """Checked against the demo's LVIS JSON itself: every mixed row's image holds at least one more
    exhaustively annotated manifest category than the row plays."""
    from avsynth.manifest import load_manifest

    doc = {}
    for path in (demo_corpus.lvis_train_json, demo_corpus.lvis_val_json):
        d = json.loads(Path(path).read_text())
        for k in ("categories", "images", "annotations"):
            doc.setdefault(k, []).extend(d[k])
    to_manifest = load_manifest().by_source_label("lvis")
    name = {c["id"]: to_manifest[c["name"]].name for c in doc["categories"] if c["name"] in to_manifest}
    not_exhaustive = {str(i["id"]): set(i["not_exhaustive_category_ids"]) for i in doc["images"]}
    present: dict[str, set] = {}
    for a in doc["annotations"]:
        if a["category_id"] in name and a["category_id"] not in not_exhaustive[str(a["image_id"])]:
            present.setdefault(str(a["image_id"]), set()).add(name[a["category_id"]])
    out = tmp_path / "silent"
    result = build(options(out, demo_corpus, sources_per_row=2, mix_keep_silent=True), progress=False)
    assert result.record.arguments["mix_keep_silent"] is True
    assert "`--mix-keep-silent`: a multi-source row is made only from" in (out / "README.md").read_text()
    rows = [r for p in sorted((out / "data").glob("*.parquet"))
            for r in pq.read_table(p, columns=["image_id", "sources"]).to_pylist()]
    assert rows
    for r in rows:
        played = {s["category"] for s in r["sources"]}
        assert len(played) == 2 and played < present[r["image_id"]]  # a strict subset: one stays silent
    assert result.record.filtered["image would keep no usable category silent (--mix-keep-silent)"] > 0


def test_k_list_messages_keep_silent_k1_and_skip_counts():
    # the exact one-line messages a user reads (the CLI prints them after "error: ")
    with pytest.raises(ValueError) as err:
        parse_sources_per_row(0)
    assert str(err.value) == "--sources-per-row must be at least 1"
    with pytest.raises(ValueError) as err:
        parse_sources_per_row("1,x")
    assert str(err.value) == "--sources-per-row: 'x' is not K or K:WEIGHT (whole numbers), e.g. 2 or 1,2 or 1:3,2:1"
    # --mix-keep-silent asks one more category of a mixed row only: K = 1 still fits one usable category
    assert choose_k(((1, 1), (2, 1)), 1, 0, "lvis:1", keep_silent=True) == 1
    assert choose_k(((1, 1), (2, 1)), 2, 0, "lvis:1", keep_silent=True) == 1  # K = 2 would leave none silent
    # every image short of the smallest K is counted once
    recs = two_category_images(5) + [inst(60, "dog", 600), inst(61, "cat", 610)]
    assert plan_of(recs, "2,3").filtered == {SKIP_FEW_CATEGORIES: 2}
    # skips of the K = 1 and the K = 2 rows add up: with every mask below --min-mask-area (3 instances of
    # 100 px, 300 px as a mix, in 100 x 50 images) each candidate row of the unfiltered plan is counted
    recs = two_category_images(30)
    rows = plan_of(recs, "1,2").rows["train"]
    assert {len(r.sources) for r in rows} == {1, 2}
    dropped = plan_of(recs, "1,2", min_mask_area=0.5)
    assert dropped.rows["train"] == [] and dropped.filtered == {"mask area below --min-mask-area": len(rows)}
