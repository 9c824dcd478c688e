"""Tests for bugs that once went unnoticed by the whole suite (issue 17): each was planted in the
code, shown to pass every other test, and is caught here. The expected values are stated from the
fixture's construction, never computed by the code under test."""

from __future__ import annotations

import json
import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from avsynth.errors import SourceError
from avsynth.media.mask import decode_png
from avsynth.plan import RowSpec
from avsynth.sources import avs_synthetic as A
from avsynth.sources.records import AudioClip, ImageInstance, MaskRef, SkipCounter

# ---------------------------------------------------------------------------------- unpickler


def _p0_string(s: str) -> bytes:
    return b"V" + s.encode() + b"\n"


def _p0_global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _p0_call(callee: bytes, *args: bytes) -> bytes:
    """Protocol-0 bytes that call ``callee`` (a pushed object) with ``args`` (pushed objects)."""
    return callee + b"(" + b"".join(args) + b"tR"


def _hostile_pickles(marker: Path) -> dict[str, bytes]:
    """Pickles that would create ``marker`` if the unpickler let the named global through."""
    code = f"open({str(marker)!r}, 'w').close()"
    touch = f"touch {marker}"
    imp = _p0_call(_p0_global("builtins", "__import__"), _p0_string("os"))
    system = _p0_call(_p0_global("builtins", "getattr"), imp, _p0_string("system"))

    class Reduce:
        def __init__(self, fn, args):
            self.fn, self.args = fn, args

        def __reduce__(self):
            return self.fn, self.args

    out = {
        "eval (protocol 0, bytes by hand)": _p0_call(_p0_global("builtins", "eval"), _p0_string(code)) + b".",
        "exec (protocol 0, bytes by hand)": _p0_call(_p0_global("builtins", "exec"), _p0_string(code)) + b".",
        "getattr(__import__('os'), 'system')(...)": _p0_call(system, _p0_string(touch)) + b".",
        "__import__ under the Python 2 name __builtin__": _p0_call(
            _p0_call(_p0_global("__builtin__", "getattr"),
                     _p0_call(_p0_global("__builtin__", "__import__"), _p0_string("os")),
                     _p0_string("system")),
            _p0_string(touch)) + b".",
    }
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        out[f"eval protocol {proto}"] = pickle.dumps({1: Reduce(eval, (code,))}, protocol=proto)
        out[f"exec protocol {proto}"] = pickle.dumps({1: Reduce(exec, (code,))}, protocol=proto)
    return out


@pytest.mark.parametrize("name", sorted(_hostile_pickles(Path("/x"))))
def test_unpickler_refuses_eval_exec_getattr_import(tmp_path, name):
    marker = tmp_path / "pwned"
    path = tmp_path / A.POOL_FILE
    path.write_bytes(_hostile_pickles(marker)[name])
    with pytest.raises(SourceError, match=r"refusing to unpickle (builtins|__builtin__)\.(eval|exec|getattr|__import__)") as info:
        A.safe_unpickle(path)
    assert A.POOL_FILE in str(info.value)
    assert not marker.exists()


def test_unpickler_allows_exactly_the_builtin_containers_and_scalars(tmp_path):
    """The allow-list, stated here: containers and scalars pass, every other builtin is refused."""
    allowed = {"list", "dict", "set", "frozenset", "tuple", "str", "bytes", "int", "float", "bool",
               "complex"}
    path = tmp_path / "p.pkl"
    import builtins

    for name in sorted(dir(builtins)):
        obj = getattr(builtins, name)
        if not callable(obj) or name.startswith("_") and name != "__import__":
            continue
        path.write_bytes(_p0_global("builtins", name) + b".")
        if name in allowed:
            assert A.safe_unpickle(path) is obj, name
        else:
            with pytest.raises(SourceError, match=f"refusing to unpickle builtins.{name}"):
                A.safe_unpickle(path)
    # an allowed name from another module is refused too (the module is part of the check)
    path.write_bytes(_p0_global("os", "int") + b".")
    with pytest.raises(SourceError, match="refusing to unpickle os.int"):
        A.safe_unpickle(path)


# ------------------------------------------------------------------------------ a built row


W, H = 40, 30


def _png(path: Path, box: tuple[int, int, int, int]) -> Path:
    """A W x H mask PNG with the rectangle rows y0:y1, columns x0:x1 set."""
    x0, y0, x1, y1 = box
    m = np.zeros((H, W), np.uint8)
    m[y0:y1, x0:x1] = 255
    Image.fromarray(m, "L").save(path)
    return path


@pytest.fixture()
def two_dogs(tmp_path, real_dir) -> RowSpec:
    """One real JPEG (resized to W x H) with two disjoint dog instances, paired with the real clip."""
    image = tmp_path / "img.jpg"
    with Image.open(real_dir / "images" / "dog.jpg") as im:
        im.convert("RGB").resize((W, H)).save(image, quality=90)
    boxes = [(2, 3, 12, 9), (20, 15, 35, 28)]  # 10*6 + 15*13 = 255 pixels, disjoint
    insts = tuple(
        ImageInstance(source="openimages", image_id="im1", annotation_id=f"a{k}", category="dog",
                      source_label="Dog", image_path=image, width=W, height=H,
                      mask=MaskRef(png=_png(tmp_path / f"m{k}.png", b)), bbox=(0, 0, 1, 1),
                      area=1.0, license="CC BY 2.0")
        for k, b in enumerate(boxes)
    )
    clip = AudioClip("vggsound", "FwVYUHKoLtQ_000034", "playing violin, fiddle", "train",
                     real_dir / "vggsound" / "FwVYUHKoLtQ_000034.wav", license="CC BY 4.0")
    return RowSpec(id="train-im1-c0", split="train", category="dog", category_id=0,
                   instances=insts, clip=clip, audio_offset_s=1.0, audio_seconds=1.0)


def test_category_mode_row_mask_is_the_union_of_its_instances(two_dogs):
    from avsynth.build.rows import WorkerOptions, triplet_row

    row = triplet_row(two_dogs, WorkerOptions(mask_mode="category"), SkipCounter(), {})
    expected = np.zeros((H, W), bool)
    expected[3:9, 2:12] = True
    expected[15:28, 20:35] = True
    assert np.array_equal(decode_png(row["mask"]["bytes"]), expected)
    assert row["mask_area"] == pytest.approx(255 / (W * H))
    assert row["bbox"] == pytest.approx([2 / W, 3 / H, 33 / W, 25 / H])
    assert row["annotation_id"] == "a0+a1"


def test_row_license_names_image_and_audio_licences(two_dogs):
    from avsynth.build.rows import WorkerOptions, triplet_row

    row = triplet_row(two_dogs, WorkerOptions(), SkipCounter(), {})
    assert row["license"] == "CC BY 2.0; audio: CC BY 4.0"


# ---------------------------------------------------------------------------------- row groups


def test_triplet_shards_have_about_100_rows_per_row_group(tmp_path):
    """README: "triplets, ~100 rows per row group" — 250 rows give groups of 100, 100, 50."""
    from avsynth.shards.schema import ROW_SCHEMA
    from avsynth.shards.writer import write_shard
    from tests.test_shards import make_row

    rec = write_shard((make_row(i, "train") for i in range(250)),
                      tmp_path / "train-00000-of-00001.parquet", schema=ROW_SCHEMA)
    md = pq.ParquetFile(rec.path).metadata
    assert [md.row_group(g).num_rows for g in range(md.num_row_groups)] == [100, 100, 50]


# ------------------------------------------------------------------------------------ verify


def test_verify_reports_an_audio_clip_in_two_splits(tmp_path):
    from avsynth.io import sha256_file
    from avsynth.shards.schema import ROW_SCHEMA
    from avsynth.shards.verify import verify_dir
    from avsynth.shards.writer import write_shard
    from tests.test_shards import make_row, make_shard_dir

    root = make_shard_dir(tmp_path / "ds", splits={"train": (3, 1), "validation": (2, 1)},
                          pool_per_category=0)
    assert verify_dir(root).ok
    # validation row 4 gets train row 0's clip; its image stays its own
    rows = [make_row(3, "validation"), make_row(4, "validation")]
    rows[1]["audio_id"] = "trainclip0"
    path = root / "data" / "validation-00000-of-00001.parquet"
    path.unlink()
    write_shard(rows, path, schema=ROW_SCHEMA)
    record = json.loads((root / "manifest.json").read_text())
    for entry in record["shards"]:
        if entry["path"] == "data/validation-00000-of-00001.parquet":
            entry.update(sha256=sha256_file(path), bytes=path.stat().st_size)
    (root / "manifest.json").write_text(json.dumps(record))
    problems = [str(p) for p in verify_dir(root).problems]
    assert len(problems) == 1, problems
    assert "audio clip vggsound:trainclip0 is in both 'train' and 'validation'" in problems[0]


# -------------------------------------------------------------------------- SAMA-AVS adapters


def test_sama_audio_token_is_added_before_each_block(one_torch_thread):
    """The official encoder (anno-free-AVS, models/mmseg/models/sam/image_encoder.py) does
    ``x = prompt[i].reshape(B, 1, 1, -1) + x; x = blk(x)``: block i sees its audio token added to
    its input, and the neck sees the last block's output unchanged. Checked by recording each
    block's input and output with hooks."""
    from avsynth.modeling import build_model, load_config

    torch.manual_seed(0)
    model = build_model(load_config("sama-avs-tiny")).eval()
    enc = model.sam.image_encoder
    g = torch.Generator().manual_seed(1)
    images, audio = torch.randn(2, 3, 64, 64, generator=g), torch.randn(2, 128, generator=g)
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    hooks = [b.register_forward_hook(lambda m, i, o: seen.append((i[0].detach(), o.detach())))
             for b in enc.blocks]
    neck_in: list[torch.Tensor] = []
    hooks.append(enc.neck.register_forward_pre_hook(lambda m, i: neck_in.append(i[0].detach())))
    with torch.no_grad():
        model.encode_image(images, audio)
        tokens = enc.patch_embed(images) + enc.pos_embed
        ad = model.adapters
        token = [ad.shared_up(torch.nn.functional.gelu(ad.down[i](audio)))[:, None, None, :]
                 for i in range(len(enc.blocks))]
    for h in hooks:
        h.remove()
    assert len(seen) == len(enc.blocks) >= 2
    previous = tokens
    for i, (block_in, block_out) in enumerate(seen):
        torch.testing.assert_close(block_in, previous + token[i], rtol=0, atol=1e-6)
        previous = block_out
    torch.testing.assert_close(neck_in[0], seen[-1][1].permute(0, 3, 1, 2), rtol=0, atol=0)
    assert token[0].abs().max() > 1e-3  # the audio token is not zero: the check can fail


# ----------------------------------------------------------------------------------- resume


def test_resume_checks_a_shard_written_but_not_recorded(tmp_path, demo_corpus):
    """The crash window resume exists for: a shard renamed into place, its record not yet written.
    Resume must regenerate it to compare digests: an intact file is kept (and recorded), a damaged
    one is refused."""
    import shutil

    from avsynth.build import build
    from avsynth.errors import BuildError
    from tests.test_build import digest_tree, options

    small = {"train": 30, "validation": 10, "test": 10}
    ref = tmp_path / "ref"
    build(options(ref, demo_corpus, categories="dog,cat", sizes=small, rows_per_shard=10),
          progress=False)
    rel = sorted((ref / "data").glob("train-*.parquet"))[-1].relative_to(ref).as_posix()
    record = ref / ".avsynth" / "shards" / rel.replace("/", "__").replace(".parquet", ".json")
    assert (ref / rel).exists() and record.exists()
    want = hashlib_sha256(ref / rel)

    intact = tmp_path / "intact"
    shutil.copytree(ref, intact)
    (intact / "manifest.json").unlink()
    (intact / record.relative_to(ref)).unlink()
    before = (intact / rel).stat().st_mtime_ns
    result = build(options(intact, demo_corpus, categories="dog,cat", sizes=small,
                           rows_per_shard=10, resume=True), progress=False)
    assert result.shards_written == 0
    assert (intact / rel).stat().st_mtime_ns == before  # kept, not rewritten
    assert json.loads((intact / record.relative_to(ref)).read_text())["sha256"] == want
    assert digest_tree(intact) == digest_tree(ref)

    damaged = tmp_path / "damaged"
    shutil.copytree(ref, damaged)
    (damaged / "manifest.json").unlink()
    (damaged / record.relative_to(ref)).unlink()
    data = bytearray((damaged / rel).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (damaged / rel).write_bytes(bytes(data))
    with pytest.raises(BuildError, match=f"{Path(rel).name}: an existing shard differs"):
        build(options(damaged, demo_corpus, categories="dog,cat", sizes=small, rows_per_shard=10,
                      resume=True), progress=False)


def hashlib_sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()



# ------------------------------------------------------------- media/mask: mutmut survivors


def test_rasterize_refuses_a_zero_side_and_names_it():
    from avsynth.media.mask import rasterize

    ref = MaskRef(polygons=((0.0, 0.0, 3.0, 0.0, 3.0, 3.0),))
    for w, h in ((0, 5), (5, 0), (0, 0)):
        with pytest.raises(ValueError, match=f"bad mask size {w}x{h}"):
            rasterize(ref, w, h)


def test_degenerate_polygons_give_an_empty_bool_mask():
    from avsynth.media.mask import rasterize

    out = rasterize(MaskRef(polygons=((0.0, 0.0, 3.0, 3.0),)), 4, 3)  # 2 points: no area
    assert out.dtype == np.bool_ and out.shape == (3, 4) and not out.any()


def test_mask_errors_name_the_file_and_the_problem(tmp_path):
    import zipfile

    from avsynth.media.mask import _from_rle, decode_png, read_png_mask

    with pytest.raises(SourceError) as info:
        _from_rle("!!not-rle", 3, 4)
    assert str(info.value).startswith("malformed RLE mask of size 3x4: ")
    archive = tmp_path / "masks.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("bad.png", b"not a png")
    with pytest.raises(SourceError) as info:
        read_png_mask(archive, "missing.png")
    assert str(info.value) == f"{archive}: zip archive has no member 'missing.png'"
    with pytest.raises(SourceError) as info:
        read_png_mask(archive, "bad.png")
    assert str(info.value).startswith(f"{archive}!bad.png: not a decodable mask image (")
    with pytest.raises(SourceError) as info:
        read_png_mask(tmp_path / "absent.png")
    assert str(info.value).startswith(f"{tmp_path / 'absent.png'}: cannot read mask: ")
    with pytest.raises(SourceError) as info:
        decode_png(b"junk", "x.png")
    assert str(info.value).startswith("x.png: not a decodable mask image (")


def _png_bytes(img: Image.Image) -> bytes:
    import io

    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_decode_png_ignores_alpha_and_reads_colour_or_index():
    """Foreground = a non-zero colour (or palette index); the alpha channel is not the mask."""
    from avsynth.media.mask import decode_png

    rgba = Image.new("RGBA", (3, 1))
    rgba.putdata([(0, 0, 0, 255), (9, 0, 0, 0), (0, 0, 200, 128)])
    assert decode_png(_png_bytes(rgba)).tolist() == [[False, True, True]]
    la = Image.new("LA", (3, 1))
    la.putdata([(0, 255), (7, 0), (0, 0)])
    assert decode_png(_png_bytes(la)).tolist() == [[False, True, False]]
    p = Image.new("P", (3, 1))
    p.putpalette([0, 0, 0, 255, 255, 255, 0, 0, 0])  # index 2 is black: the index counts
    p.putdata([0, 1, 2])
    assert decode_png(_png_bytes(p)).tolist() == [[False, True, True]]


def test_mask_encode_and_union_refuse_bad_input_with_a_message():
    from avsynth.media.mask import encode_png, union

    for bad in (np.ones(5, bool), np.ones((0, 3), bool), np.ones((2, 2, 2), bool)):
        with pytest.raises(ValueError, match="mask must be a non-empty 2-D array"):
            encode_png(bad)
    with pytest.raises(ValueError, match="^union of no masks$"):
        union([])
    with pytest.raises(ValueError, match=r"mask shapes differ: \(2, 2\) vs \(2, 3\)"):
        union([np.ones((2, 2), bool), np.ones((2, 3), bool)])


# ------------------------------------------------------------------- plan: mutmut survivors


def test_unbalanced_quotas_are_proportional_with_largest_remainders():
    """PlanOptions(balance=False): quotas in proportion to what each category has, the leftover
    rows to the largest remainders (ties by name), hand-computed."""
    from avsynth.plan import _proportional

    assert _proportional({"a": 10, "b": 30}, 20, None) == {"a": 5, "b": 15}
    assert _proportional({"a": 1, "b": 2}, 2, None) == {"a": 1, "b": 1}  # remainders 2/3 vs 1/3
    assert _proportional({"a": 1, "b": 1, "c": 1}, 2, None) == {"a": 1, "b": 1, "c": 0}
    assert _proportional({"a": 3, "b": 7}, 5, None) == {"a": 2, "b": 3}  # 1.5 / 3.5: equal remainders, a first
    assert _proportional({"a": 10, "b": 30}, 100, 5) == {"a": 5, "b": 5}  # capped, all fit
    assert _proportional({"a": 4, "b": 6}, 10, None) == {"a": 4, "b": 6}  # exactly enough
    assert _proportional({"a": 0, "b": 9}, 3, None) == {"a": 0, "b": 3}
    assert _proportional({"a": 10, "b": 30}, 8, 4) == {"a": 4, "b": 4}


def test_plan_from_rows_keeps_the_given_assignment():
    from avsynth.plan import PlanOptions, PoolSpec, plan_from_rows

    clip = AudioClip("avs-synthetic", "c", "dog barking", "train", Path("/a.wav"))
    inst = ImageInstance(source="avs-synthetic", image_id="1", annotation_id="1", category="dog",
                         source_label="dog", image_path=Path("/i.jpg"), width=4, height=4,
                         mask=MaskRef(png=Path("/m.png")), bbox=(0, 0, 1, 1), area=1.0)
    row = lambda i, s: RowSpec(f"{s}{i}", s, "dog", 0, (inst,), clip, 0.0, 1.0)  # noqa: E731
    rows = {"train": [row(i, "train") for i in range(5)], "validation": [row(0, "validation")],
            "test": []}
    pool = [PoolSpec("dog", 0, clip, 0.0, 1.0)] * 3
    plan = plan_from_rows(rows, pool, [{"name": "dog", "category_id": 0}], PlanOptions(rows_per_shard=2))
    assert plan.requested == plan.targets == {"train": 5, "validation": 1, "test": 0}
    assert plan.shortfall == {} and plan.filtered == {} and plan.available == {}
    assert [(s.kind, s.split, s.index, s.num_shards, len(s.items)) for s in plan.shards] == [
        ("rows", "train", 0, 3, 2), ("rows", "train", 1, 3, 2), ("rows", "train", 2, 3, 1),
        ("rows", "validation", 0, 1, 1), ("pool", "train", 0, 2, 2), ("pool", "train", 1, 2, 1)]
    assert plan.rows is rows and plan.pool is pool
    assert plan.counts() == {
        "train": {"rows": 5, "num_shards": 3, "per_category": {"dog": 5}},
        "validation": {"rows": 1, "num_shards": 1, "per_category": {"dog": 1}},
        "test": {"rows": 0, "num_shards": 0, "per_category": {}},
    }


def _inst(img: int, cat: str, ann: str = "", w: int = 50, h: int = 40, area: float = 100.0):
    return ImageInstance(source="lvis", image_id=str(img), annotation_id=ann or f"{img}", category=cat,
                         source_label=cat, image_path=Path(f"/x/{img}.jpg"), width=w, height=h,
                         mask=MaskRef(polygons=((0.0, 0.0, 9.0, 0.0, 9.0, 9.0),)), bbox=(0, 0, 9, 9),
                         area=area)


def _clips(cat: str, n_train: int, n_test: int) -> list[AudioClip]:
    return [AudioClip("vggsound", f"{cat}-{s}-{i}", f"{cat} sound", s, Path(f"/a/{cat}{s}{i}.wav"))
            for s, n in (("train", n_train), ("test", n_test)) for i in range(n)]



def _manifest():
    from avsynth.manifest import Category, Manifest

    return Manifest("m", (Category(name="dog", category_id=7, lvis=("dog",), vggsound=("dog sound",)),
                          Category(name="cat", category_id=9, lvis=("cat",), vggsound=("cat sound",))))


def test_plan_rows_carry_their_split_category_id_window_and_round_robin_clips():
    from avsynth.plan import PlanOptions, make_plan, seeded_offset

    insts = [_inst(i, "dog" if i % 2 else "cat") for i in range(40)]
    clips = _clips("dog", 4, 6) + _clips("cat", 4, 6)
    opts = PlanOptions(seed=4, sizes={"train": 20, "validation": 6, "test": 6}, clip_seconds=2.5)
    plan = make_plan(insts, clips, _manifest(), opts)
    for split, rows in plan.rows.items():
        assert len(rows) == {"train": 20, "validation": 6, "test": 6}[split]
        for r in rows:
            assert r.split == split and r.category_id == {"dog": 7, "cat": 9}[r.category]
            assert r.audio_seconds == 2.5
            assert r.audio_offset_s == seeded_offset(r.clip.audio_id, 4, 2.5)
        for cat in ("dog", "cat"):  # each clip of the pool used in turn: counts differ by <= 1
            used = Counter(r.clip.audio_id for r in rows if r.category == cat)
            pool = {c.audio_id for c in clips if c.label == f"{cat} sound"
                    and c.split == ("train" if split == "train" else "test")}
            n = sum(used.values())
            k = len(pool) if split == "train" else 3  # 6 test clips: 3 for validation, 3 for test
            assert max(used.values()) - min(used.values()) <= 1 and len(used) == min(n, k), (split, cat, used)
    # what the sources offered, counted by hand: 20 dog and 20 cat images, one unit each
    assert plan.available == {c: {"units": 20, "images": 20, "clips_train": 4, "clips_test": 6}
                              for c in ("dog", "cat")}
    # the 6 test clips of a category are dealt 3 / 3 to validation and test
    for cat in ("dog", "cat"):
        val = {r.clip.audio_id for r in plan.rows["validation"] if r.category == cat}
        test = {r.clip.audio_id for r in plan.rows["test"] if r.category == cat}
        assert len(val) == len(test) == 3 and not val & test


def test_every_seeded_choice_moves_with_the_seed():
    """--seed drives the image order, the validation/test division of the test clips and the
    order of the train clips: each changes between seeds (over 6 seeds, at least 4 distinct)."""
    from avsynth.plan import PlanOptions, make_plan

    insts = [_inst(i, "dog" if i % 2 else "cat") for i in range(40)]
    clips = _clips("dog", 8, 8) + _clips("cat", 8, 8)
    test_images, val_clips, train_pairs = set(), set(), set()
    for seed in range(6):
        plan = make_plan(insts, clips, _manifest(),
                         PlanOptions(seed=seed, sizes={"train": 4, "validation": 4, "test": 4}))
        test_images.add(frozenset(r.instances[0].image_id for r in plan.rows["test"]))
        val_clips.add(frozenset(r.clip.audio_id for r in plan.rows["validation"]))
        train_pairs.add(frozenset((r.id, r.clip.audio_id) for r in plan.rows["train"]))
    assert min(len(test_images), len(val_clips), len(train_pairs)) >= 4
    # and the test images are not simply the first ones by key
    assert frozenset({"0", "1", "10", "11"}) not in test_images


def test_unbalanced_plan_and_caps_in_every_split():
    from avsynth.plan import PlanOptions, make_plan

    insts = [_inst(i, "dog" if i < 30 else "cat") for i in range(40)]  # 30 dog, 10 cat images
    clips = _clips("dog", 2, 2) + _clips("cat", 2, 2)
    plan = make_plan(insts, clips, _manifest(), PlanOptions(
        seed=1, sizes={"train": 8, "test": 4}, balance=False))
    count = {s: Counter(r.category for r in rows) for s, rows in plan.rows.items()}
    assert plan.requested == {"train": 8, "validation": 0, "test": 4}
    assert count["test"] == {"dog": 3, "cat": 1}  # 4 * 30/40, 4 * 10/40
    assert count["train"] == {"dog": 6, "cat": 2}  # 8 * 27/36, 8 * 9/36
    capped = make_plan(insts, clips, _manifest(), PlanOptions(
        seed=1, sizes={"train": 8, "validation": 4, "test": 4}, max_per_category=1))
    assert all(Counter(r.category for r in rows) == {"dog": 1, "cat": 1} for rows in capped.rows.values())
    capped = make_plan(insts, clips, _manifest(), PlanOptions(
        seed=1, sizes={"train": 8, "validation": 4, "test": 4}, max_per_category=1, balance=False))
    assert all(Counter(r.category for r in rows) == {"dog": 1, "cat": 1} for rows in capped.rows.values())


def test_units_skip_unknown_categories_and_keep_instances_apart():
    from avsynth.plan import PlanOptions, make_units

    insts = [_inst(1, "zebra", "z1"), _inst(1, "dog", "a"), _inst(1, "dog", "b"),
             _inst(2, "cat", "c", w=1, h=1, area=1.0)]
    units, _ = make_units(insts, _manifest(), PlanOptions(mask_mode="instance"))
    assert [(u.key, u.category_id, len(u.instances)) for u in units] == [
        ("lvis-1-a", 7, 1), ("lvis-1-b", 7, 1), ("lvis-2-c", 9, 1)]
    units, filtered = make_units(insts, _manifest(), PlanOptions(min_mask_area=0.9))
    assert [u.key for u in units] == ["lvis-2-c"]  # the 1x1 mask covers its whole 1x1 image
    assert filtered == {"mask area below --min-mask-area": 2}
    units, _ = make_units(insts, _manifest(), PlanOptions(mask_mode="category"))
    assert [(u.key, len(u.instances)) for u in units] == [("lvis-1-c7", 2), ("lvis-2-c9", 1)]
