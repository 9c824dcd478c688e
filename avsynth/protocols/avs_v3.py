"""The GAVS AVS-V3 protocol (AAAI 2024): which videos of a tree make up each split
(:func:`select_avs_v3`), then unseen-class evaluation and k-shot fine-tuning (:func:`avs_v3`).

The split files are shipped with :mod:`avsynth.sources.avs_v3`. Their uid lists select videos of
the AVSBench semantic release; on the demo tree (whose videos have other uids) the same class split
is applied by name, which the results say.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from avsynth.modeling.base import AVSegmenter
from avsynth.modeling.registry import build_vggish_for
from avsynth.modeling.vggish import VGGishEmbedder
from avsynth.protocols.common import (
    EvalOptions,
    FineTuneOptions,
    checkpoint_config,
    evaluate_avsbench,
    fine_tune,
    load_model,
    on_cpu,
)
from avsynth.protocols.results import BenchError, EvalResult, make_result
from avsynth.sources.avs_v3 import AVS_V3_SHOTS, NOT_CLASSES, avs_v3_unseen_classes, shipped_avs_v3
from avsynth.sources.avsbench import AVSBenchDataset, AVSBenchSource, AVSBenchVideo, load_metadata


@dataclass
class AVSV3Selection:
    """The videos of each AVS-V3 split in one AVSBench tree.

    ``mode``: ``release`` (the shipped uid lists, restricted to uids in the tree's metadata; the
    rest are counted in ``missing``) or ``demo-class-split`` (the demo tree: videos split by the
    AVS-V3 unseen class names, k-shot train videos drawn per unseen class from ``seed``).
    """

    mode: str
    uids: dict[str, list[str]]
    missing: dict[str, int]
    unseen_classes: list[str]
    classes_present: list[str]

    def note(self) -> str:
        if self.mode == "release":
            lost = sum(self.missing.values())
            return ("AVS-V3 splits of GAVS (AAAI 2024) on the AVSBench release"
                    + (f"; {lost} listed uids are not in this tree's metadata.csv and were skipped "
                       f"({', '.join(f'{k}: {v}' for k, v in self.missing.items() if v)})" if lost else ""))
        return ("DEMO tree: the AVS-V3 uids do not exist here, so its class split is applied by name "
                f"(unseen classes present: {', '.join(self.classes_present) or 'none'}); not the "
                "real AVS-V3 benchmark, which needs the AVSBench semantic release")


def _objects(a_obj: str) -> set[str]:
    return {o for o in str(a_obj).split("_") if o} - NOT_CLASSES


def select_avs_v3(metadata: pd.DataFrame, *, k_shots: Sequence[int] = (), demo: bool = False,
                  seed: int = 0, root: Path | None = None) -> AVSV3Selection:
    """Which videos of a tree (its ``metadata.csv`` as a DataFrame) make up each AVS-V3 split.

    With the real release the shipped uid lists are used (uids absent from the metadata are
    counted, not fatal, unless none of them is present). With ``demo`` (a tree without AVS-V3
    uids) the class split is applied by name. Splits: seen_train, seen_val, unseen, and for each
    k: ``{k}_shot_train`` / ``{k}_shot_test``.
    """
    unseen_cls = avs_v3_unseen_classes()
    for k in k_shots:
        if k not in AVS_V3_SHOTS:
            raise BenchError(f"AVS-V3 defines 1, 3 and 5-shot splits; got k={k}")
    present = set(metadata["uid"])
    names = ["seen_train", "seen_val", "unseen"] + [f"{k}_shot_{p}" for k in k_shots for p in ("train", "test")]
    tables = {n: shipped_avs_v3(n) for n in names}
    found = {n: [u for u in t["uid"] if u in present] for n, t in tables.items()}
    if any(found[n] for n in ("unseen", "seen_train")):
        return AVSV3Selection(
            mode="release", uids=found,
            missing={n: len(tables[n]) - len(found[n]) for n in names},
            unseen_classes=unseen_cls,
            classes_present=sorted({o for u in found["unseen"] for o in _objects(_a_obj(metadata)[u])}
                                   & set(unseen_cls)),
        )
    if not demo:
        raise BenchError(f"{root or 'the AVSBench tree'}: none of the AVS-V3 uids is in its metadata.csv; "
                         "AVS-V3 needs the AVSBench semantic release (v1m + v2 videos)")
    return _demo_selection(metadata, unseen_cls, k_shots, seed)


def _a_obj(metadata: pd.DataFrame) -> dict[str, str]:
    """uid → a_obj of a metadata table."""
    return dict(zip(metadata["uid"], metadata["a_obj"]))


def _demo_selection(metadata: pd.DataFrame, unseen_cls: list[str], k_shots: Sequence[int],
                    seed: int) -> AVSV3Selection:
    unseen_set = set(unseen_cls)
    rows = metadata.to_dict("records")
    is_unseen = {r["uid"]: bool(_objects(r["a_obj"]) & unseen_set) for r in rows}
    uids: dict[str, list[str]] = {
        "seen_train": [r["uid"] for r in rows if not is_unseen[r["uid"]] and r["split"] == "train"],
        "seen_val": [r["uid"] for r in rows if not is_unseen[r["uid"]] and r["split"] == "val"],
        "unseen": [r["uid"] for r in rows if is_unseen[r["uid"]]],
    }
    # k-shot: per unseen class (a video's first unseen object), k videos drawn from the seed,
    # preferring the AVSBench train split and always leaving one video of the class for the test
    by_class: dict[str, list[dict]] = {}
    for r in rows:
        if is_unseen[r["uid"]]:
            by_class.setdefault(min(_objects(r["a_obj"]) & unseen_set), []).append(r)
    for k in k_shots:
        train: list[str] = []
        for cls, members in sorted(by_class.items()):
            ranked = sorted(members, key=lambda r: (r["split"] != "train", hashlib.sha256(
                f"{seed}:{cls}:{r['uid']}".encode()).hexdigest()))
            train.extend(r["uid"] for r in ranked[: min(k, len(ranked) - 1)])
        chosen = set(train)
        uids[f"{k}_shot_train"] = [u for u in uids["unseen"] if u in chosen]
        uids[f"{k}_shot_test"] = [u for u in uids["unseen"] if u not in chosen]
    a_obj = _a_obj(metadata)
    present = sorted({o for u in uids["unseen"] for o in _objects(a_obj[u])} & unseen_set)
    return AVSV3Selection(mode="demo-class-split", uids=uids, missing={n: 0 for n in uids},
                          unseen_classes=unseen_cls, classes_present=present)


@dataclass(frozen=True)
class UidListSource(AVSBenchSource):
    """Trainer data: AVSBench videos named by uid lists (any AVSBench split), ``train_uids`` for
    training and ``val_uids`` for model selection (the AVS-V3 protocol mixes AVSBench splits)."""

    train_uids: tuple[str, ...] = ()
    val_uids: tuple[str, ...] = ()

    def videos(self, split: str, uids: Sequence[str] | None = None) -> list[AVSBenchVideo]:
        wanted = self.train_uids if split == self.train_split else self.val_uids
        return list(AVSBenchDataset(self.root, self.subset, None, resolution=None, mode="binary",
                                    uids=wanted).videos)


def _uid_source(root: Path, train: Sequence[str], val: Sequence[str]) -> UidListSource:
    return UidListSource(root=Path(root), subset="all", train_split="avs_v3_train",
                         val_split="avs_v3_val", train_uids=tuple(train), val_uids=tuple(val))


def avs_v3(checkpoint: str | Path, root: str | Path, *, k_shots: Sequence[int] = (), out_dir: str | Path,
           demo: bool = False, seen_epochs: int = 0, opts: EvalOptions | None = None,
           ft: FineTuneOptions | None = None, config: dict | None = None,
           notes: Sequence[str] = (), model: AVSegmenter | None = None,
           vggish: VGGishEmbedder | None = None) -> list[EvalResult]:
    """The AVS-V3 protocol: unseen-class evaluation, then k-shot fine-tuning per k.

    ``seen_epochs`` > 0 first trains the checkpoint on ``seen_train`` (val ``seen_val``), as GAVS
    does; the k-shot runs start from that model (``ft.epochs`` each, GAVS: 10). With 0 the
    checkpoint itself is the base (the synthetic-pretraining zero-shot setting).
    """
    opts, ft = opts or EvalOptions(), ft or FineTuneOptions()
    root, out_dir = Path(root), Path(out_dir)
    config = config or checkpoint_config(checkpoint, ft.sam_checkpoint, ft.vggish_checkpoint)
    sel = select_avs_v3(load_metadata(root), k_shots=k_shots, demo=demo, seed=ft.seed, root=root)
    notes = [*notes, sel.note()]
    if not sel.uids["unseen"]:
        raise BenchError(f"{root}: no video of an AVS-V3 unseen class ({', '.join(sel.unseen_classes)})")
    vggish = vggish or build_vggish_for(config)
    base = Path(checkpoint)
    results = []
    if seen_epochs > 0:
        source = _uid_source(root, sel.uids["seen_train"], sel.uids["seen_val"])
        base, summary = fine_tune(checkpoint, config, source, out_dir / "finetune" / "avs_v3-seen",
                                  FineTuneOptions(**{**asdict(ft), "epochs": seen_epochs}), opts.f_group,
                                  out_dir / "cache" / "vggish", cpu=on_cpu(opts))
    model = load_model(base, config) if seen_epochs > 0 or model is None else model
    test = AVSBenchDataset(root, "all", None, resolution=opts.resolution, mode="binary", uids=sel.uids["unseen"])
    res = make_result(evaluate_avsbench(model, vggish, test, opts), protocol="avs-v3", dataset="avs-v3",
                  subset="unseen", split=None, resolution=opts.resolution, notes=notes,
                  setting={"base": "seen_train" if seen_epochs > 0 else "checkpoint"},
                  skipped={k: v for k, v in sel.missing.items() if v})
    if seen_epochs > 0:
        res.setting["fine_tune"] = summary
    results.append(res)
    for k in k_shots:
        train_uids, test_uids = sel.uids[f"{k}_shot_train"], sel.uids[f"{k}_shot_test"]
        if not train_uids or not test_uids:
            raise BenchError(f"{root}: AVS-V3 {k}-shot has {len(train_uids)} train and {len(test_uids)} "
                             "test videos in this tree; both must be non-empty")
        val_uids = sel.uids["seen_val"] or train_uids
        source = _uid_source(root, train_uids, val_uids)
        best, summary = fine_tune(base, config, source, out_dir / "finetune" / f"avs_v3-{k}shot", ft,
                                  opts.f_group, out_dir / "cache" / "vggish", cpu=on_cpu(opts))
        model = load_model(best, config)
        test = AVSBenchDataset(root, "all", None, resolution=opts.resolution, mode="binary", uids=test_uids)
        r = make_result(evaluate_avsbench(model, vggish, test, opts), protocol="avs-v3", dataset="avs-v3",
                    subset=f"{k}_shot_test", split=None, resolution=opts.resolution, notes=notes,
                    setting={"k_shot": k, "fine_tune": summary},
                    skipped={n: sel.missing.get(n, 0) for n in (f"{k}_shot_train", f"{k}_shot_test")
                             if sel.missing.get(n)})
        results.append(r)
    return results


__all__ = ["AVSV3Selection", "UidListSource", "avs_v3", "select_avs_v3"]
