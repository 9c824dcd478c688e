"""Fuzz (issue 12): randomly corrupted variants of every source format — truncated, bytes flipped,
fields swapped — go through the reader layer and the row production in-process (seeded), plus a
few CLI builds. Allowed outcomes: a value, a counted skip (SourceError / Rejected inside the row
path) or a one-line AvsynthError; never another exception (a traceback). Whatever comes out must
agree with the corrupted source, checked against an independent reading of it (soundfile, PIL,
pycocotools, the csv module)."""

from __future__ import annotations

import csv
import io
import json
import random
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image
from pycocotools import mask as coco_mask

from avsynth.errors import AvsynthError
from avsynth.manifest import select_categories
from avsynth.media.audio import encode_audio, load_clip, window_samples
from avsynth.media.checks import Rejected, choose_window
from avsynth.media.mask import rasterize_checked
from avsynth.sources.records import MaskRef, SkipCounter

MANIFEST = select_categories("46")


def _corrupt(data: bytes, rng: random.Random) -> bytes:
    """One random corruption: truncate, flip bytes, zero a run, or duplicate a slice."""
    b = bytearray(data)
    kind = rng.choice(["truncate", "flip", "zero", "dup"])
    if kind == "truncate":
        return bytes(b[: rng.randrange(0, len(b))])
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        return bytes(b)
    if kind == "zero":
        i = rng.randrange(len(b))
        n = rng.randint(1, 64)
        b[i : i + n] = bytes(len(b[i : i + n]))
        return bytes(b)
    i, j = sorted(rng.randrange(len(b)) for _ in range(2))
    return bytes(b[:j] + b[i:j] + b[j:])


def _outcome(fn):
    """("ok", value) | ("skip", reason) | ("error", message); anything else propagates (fails)."""
    try:
        return "ok", fn()
    except Rejected as rej:
        return "skip", rej.reason
    except AvsynthError as err:
        assert "\n" not in str(err), f"multi-line error: {err!r}"
        return "error", str(err)


# ---- audio: WAV bytes → the row's audio ------------------------------------------------------


def test_fuzzed_wavs_give_a_skip_or_the_files_own_samples(demo_corpus, tmp_path):
    rng = random.Random(0)
    wavs = sorted(Path(demo_corpus.vggsound_audio).glob("*.wav"))[:8]
    seen = {"ok": 0, "skip": 0, "error": 0}
    for n in range(240):
        src = wavs[n % len(wavs)]
        path = tmp_path / f"v{n}.wav"
        path.write_bytes(_corrupt(src.read_bytes(), rng))
        offset = rng.choice([0.0, 2.5, 7.0])

        def row_audio():
            wave, sr = load_clip(path)
            win = choose_window(wave, sr, offset, 3.0, key=str(path))
            return win, sr, encode_audio(window_samples(wave, sr, win.offset_s, 3.0, sr), sr, "wav")

        kind, value = _outcome(row_audio)
        seen[kind] += 1
        if kind == "ok":
            win, sr, data = value
            got, _ = sf.read(io.BytesIO(data), dtype="int16")
            start = int(round(win.offset_s * sr))
            with sf.SoundFile(str(path)) as f:  # independent read of the corrupted file
                if f.channels != 1:
                    continue  # a flipped header byte can make the file stereo: averaged, fine
                f.seek(start)
                ref = f.read(3 * sr, dtype="int16")
            # stored as round(x * 32767) of the float x = int16 / 32768: within one step
            assert np.abs(got[: len(ref)].astype(int) - ref.astype(int)).max(initial=0) <= 1, path
            assert not np.any(got[len(ref):])
    assert seen["ok"] and seen["skip"] + seen["error"], seen


# ---- Open Images mask PNGs → the row's mask ----------------------------------------------------


def test_fuzzed_mask_pngs_give_a_skip_or_a_single_channel_mask(demo_corpus, tmp_path):
    rng = random.Random(1)
    zips = sorted(Path(demo_corpus.openimages_root).glob("*-masks/*.zip"))
    pngs = []
    for z in zips:
        with zipfile.ZipFile(z) as zf:
            pngs += [zf.read(n) for n in zf.namelist() if n.endswith(".png")]
    pngs = pngs[:10]
    assert pngs
    seen = {"ok": 0, "skip": 0, "error": 0}
    for n in range(240):
        data = pngs[n % len(pngs)]
        if n % 5 == 0:  # a well-formed PNG of the wrong kind: RGB, or the wrong aspect ratio
            img = Image.open(io.BytesIO(data))
            img = img.convert("RGB") if n % 10 == 0 else img.resize((img.width, img.height * 3))
            buf = io.BytesIO()
            img.save(buf, format="PNG")
            data = buf.getvalue()
        else:
            data = _corrupt(data, rng)
        path = tmp_path / f"m{n}.png"
        path.write_bytes(data)
        w, h = Image.open(io.BytesIO(pngs[n % len(pngs)])).size
        kind, value = _outcome(lambda: rasterize_checked(MaskRef(png=path), w, h, f"oi:{n}"))
        seen[kind] += 1
        if kind == "ok":
            ref = Image.open(path)  # the source decodes, single-channel, of the image's shape
            assert ref.mode in ("1", "L", "P", "I", "I;16")
            assert value.shape == (h, w) and value.dtype == bool
            assert np.array_equal(value, np.asarray(ref) != 0)
    assert seen["ok"] and seen["skip"] + seen["error"], seen


# ---- LVIS JSON: fields swapped / bytes corrupted → instances → masks ---------------------------


def _swap_fields(data: dict, rng: random.Random) -> dict:
    anns = data["annotations"]
    a = rng.choice(anns)
    img = next(i for i in data["images"] if i["id"] == a["image_id"])
    choice = rng.randrange(7)
    if choice == 0:
        a["segmentation"] = {"counts": rng.choice(["zz", "0", "", "PPYo1"]),
                             "size": [img["height"], img["width"]]}
    elif choice == 1:
        big = rng.choice([1e9, -1e9, float("nan"), 1e3])
        a["segmentation"] = [[big, 0.0, big, big, 0.0, big]]
    elif choice == 2:
        img["width"], img["height"] = img["height"], img["width"]
    elif choice == 3:
        b = rng.choice(anns)
        a["category_id"], b["category_id"] = b["category_id"], a["category_id"]
    elif choice == 4:
        a["bbox"] = rng.choice([["x", 1, 2, 3], [0, 0, -1, 5], None])
    elif choice == 5:
        rle = coco_mask.encode(np.asfortranarray(
            np.random.default_rng(rng.randrange(1 << 30)).random((img["height"], img["width"])) > 0.5
        ).astype(np.uint8))
        a["segmentation"] = {"counts": rle["counts"].decode(),
                             "size": [img["height"], img["width"]]}
    else:
        a["image_id"] = rng.choice([10**12, "x", a["image_id"]])
    return data


def test_fuzzed_lvis_gives_errors_skips_or_masks_equal_to_pycocotools(demo_corpus, tmp_path):
    from avsynth.sources.lvis import read_lvis

    rng = random.Random(2)
    src = Path(demo_corpus.lvis_train_json)
    text = src.read_text()
    seen = {"ok": 0, "skip": 0, "error": 0}
    for n in range(90):
        path = tmp_path / f"lvis{n}.json"
        if n % 3 == 0:
            path.write_bytes(_corrupt(text.encode(), rng))
        else:
            data = json.loads(text)
            for _ in range(rng.randint(1, 4)):
                data = _swap_fields(data, rng)
            path.write_text(json.dumps(data))
        kind, instances = _outcome(lambda: read_lvis([path], Path(demo_corpus.coco_root), MANIFEST,
                                                     SkipCounter()))
        seen[kind] += 1
        if kind != "ok":
            continue
        raw = json.loads(path.read_text())
        anns = {str(a["id"]): a for a in raw["annotations"]}
        for inst in instances[:: max(1, len(instances) // 12)]:
            ann = anns[inst.annotation_id]  # the instance agrees with its annotation
            assert str(ann["image_id"]) == inst.image_id
            k, mask = _outcome(lambda: rasterize_checked(inst.mask, inst.width, inst.height, "x"))
            if k != "ok":
                continue
            seg = ann["segmentation"]
            if isinstance(seg, dict):
                ref = coco_mask.decode({"size": seg["size"], "counts": seg["counts"].encode()})
            else:
                ref = coco_mask.decode(coco_mask.merge(
                    coco_mask.frPyObjects([p for p in seg if len(p) >= 6], inst.height, inst.width)))
            assert np.array_equal(mask, ref.astype(bool)), inst.annotation_id
    assert seen["ok"] and seen["error"], seen


# ---- CSVs: VGGSound and Open Images ------------------------------------------------------------


def _fuzz_csv(text: str, rng: random.Random) -> str:
    lines = text.splitlines(keepends=True)
    if rng.random() < 0.5:
        return _corrupt(text.encode(), rng).decode("utf-8", "replace")
    for _ in range(rng.randint(1, 5)):
        i = rng.randrange(len(lines))
        fields = next(csv.reader([lines[i]]))
        if len(fields) > 1:
            a, b = rng.sample(range(len(fields)), 2)
            fields[a], fields[b] = fields[b], fields[a]
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(fields)
        lines[i] = buf.getvalue()
    return "".join(lines)


def test_fuzzed_vggsound_csv_clips_agree_with_their_rows(demo_corpus, tmp_path):
    from avsynth.sources.vggsound import read_vggsound

    rng = random.Random(3)
    text = Path(demo_corpus.vggsound_csv).read_text()
    seen = {"ok": 0, "skip": 0, "error": 0}
    for n in range(200):
        path = tmp_path / f"vgg{n}.csv"
        path.write_text(_fuzz_csv(text, rng))
        kind, index = _outcome(lambda: read_vggsound(path, Path(demo_corpus.vggsound_audio),
                                                     MANIFEST, SkipCounter()))
        seen[kind] += 1
        if kind != "ok":
            continue
        rows = set()
        for fields in csv.reader(io.StringIO(path.read_text())):
            if len(fields) == 4 and fields[1].strip().isdigit():
                rows.add((f"{fields[0].strip()}_{int(fields[1]):06d}", fields[2].strip(),
                          fields[3].strip()))
        for clip in index.clips:  # every clip is a row of the corrupted csv, label and split
            assert (clip.audio_id, clip.label, clip.split) in rows, clip
    assert seen["ok"], seen


def test_fuzzed_openimages_csv_instances_agree_with_their_rows(demo_corpus, tmp_path):
    from avsynth.sources.openimages import read_openimages

    rng = random.Random(4)
    root = tmp_path / "oi"
    shutil.copytree(demo_corpus.openimages_root, root)
    csv_path = root / "validation-annotations-object-segmentation.csv"
    text = csv_path.read_text()
    seen = {"ok": 0, "skip": 0, "error": 0}
    for n in range(200):
        csv_path.write_text(_fuzz_csv(text, rng))
        kind, instances = _outcome(lambda: read_openimages(root, "validation", MANIFEST,
                                                           SkipCounter()))
        seen[kind] += 1
        if kind != "ok":
            continue
        with open(csv_path, newline="", encoding="utf-8", errors="replace") as f:
            rows = {(r.get("ImageID"), Path(r.get("MaskPath") or "").stem)
                    for r in csv.DictReader(f)}
        for inst in instances:
            assert (inst.image_id, inst.annotation_id) in rows, inst
    assert seen["ok"], seen


# ---- a few CLI builds on corrupted corpora -----------------------------------------------------


@pytest.mark.slow
def test_fuzzed_corpora_through_the_cli(demo_corpus, tmp_path):
    rng = random.Random(5)
    for n in range(2):
        root = tmp_path / f"c{n}"
        for name in ("lvis", "coco", "openimages", "vggsound"):
            shutil.copytree(Path(demo_corpus.root) / name, root / name)
        wavs = sorted((root / "vggsound/audio").glob("*.wav"))
        for p in rng.sample(wavs, 20):
            p.write_bytes(_corrupt(p.read_bytes(), rng))
        lvis = root / "lvis/lvis_v1_train.json"
        data = json.loads(lvis.read_text())
        for _ in range(10):
            data = _swap_fields(data, rng)
        lvis.write_text(json.dumps(data))
        oi = root / "openimages/train-annotations-object-segmentation.csv"
        oi.write_text(_fuzz_csv(oi.read_text(), rng))
        out = tmp_path / f"out{n}"
        res = subprocess.run(
            [sys.executable, "-m", "avsynth", "build", "--out", str(out), "--quiet",
             "--workers", "1", "--num-train", "60", "--num-val", "12", "--num-test", "12",
             "--coco-root", str(root / "coco"), "--lvis-json", str(lvis),
             "--lvis-json", str(root / "lvis/lvis_v1_val.json"),
             "--openimages-root", str(root / "openimages"),
             "--vggsound-csv", str(root / "vggsound/vggsound.csv"),
             "--vggsound-audio", str(root / "vggsound/audio")],
            capture_output=True, text=True, timeout=300)
        assert "Traceback" not in res.stderr, res.stderr
        assert res.returncode in (0, 2), res.stderr
        if res.returncode == 2:
            assert len([ln for ln in res.stderr.splitlines() if ln.strip()]) == 1, res.stderr
        else:
            verify = subprocess.run([sys.executable, "-m", "avsynth", "verify", str(out)],
                                    capture_output=True, text=True, timeout=300)
            assert verify.returncode == 0, verify.stdout
