"""Which epoch ``best.pt`` keeps when validation mIoUs tie (recipe key ``best_tie``).

The official AAVS trainer keeps the earlier epoch (``if res["miou"] > max_miou``, strict:
``GeWu-Lab/Stepping-Stones`` de6a17b ``avs/train.py:106``); the tiny AAVS recipe takes the later one.
"""

from __future__ import annotations

import json

import pytest

from avsynth.errors import AvsynthError
from avsynth.modeling.registry import load_config
from avsynth.sources.avsbench import AVSBenchSource
from avsynth.training.recipe import resolve_recipe
from avsynth.training.trainer import TrainConfig, train
from tests.avsbench_fixture import pick_rows, write_semantic_tree


def test_tie_rule_by_hand():
    earlier, later = resolve_recipe({}, {}), resolve_recipe({"best_tie": "later"}, {})
    assert earlier.best_tie == "earlier"
    # (epoch mIoU, best so far) -> new best?
    assert [earlier.improves(m, b) for m, b in ((0.0, -1.0), (0.0, 0.0), (0.3, 0.3), (0.31, 0.3), (0.2, 0.3))] \
        == [True, False, False, True, False]
    assert [later.improves(m, b) for m, b in ((0.0, -1.0), (0.0, 0.0), (0.3, 0.3), (0.31, 0.3), (0.2, 0.3))] \
        == [True, True, True, True, False]
    with pytest.raises(AvsynthError, match="best_tie must be one of"):
        resolve_recipe({"best_tie": "lower-loss"}, {})
    assert resolve_recipe(load_config("aavs-tiny")["train"], {}).best_tie == "later"
    for name in ("aavs-swin-b", "aavs-avss-swin-b", "sama-avs-vit-h", "gavs-vit-b"):  # the official rule
        assert resolve_recipe(load_config(name)["train"], {}).best_tie == "earlier", name


@pytest.mark.parametrize("tie", ["earlier", "later"])
def test_trainer_keeps_the_epoch_the_rule_names(tmp_path_factory, labels_dir, tie):
    rows = pick_rows(labels_dir / "gavs_avs_v3" / "metadata.csv", multi_object=False)
    root = write_semantic_tree(tmp_path_factory.mktemp("tie") / "avsbench", rows[rows["label"] == "v1s"],
                               labels_dir / "avsbench_avss_classes.csv", (64, 48))
    cfg = load_config("aavs-tiny")
    for key in ("phase2_divisor", "phase2_lr"):  # one phase, so nothing but the steps changes the weights
        cfg["train"].pop(key)
    cfg["train"]["best_tie"] = tie
    out = tmp_path_factory.mktemp("run") / tie
    # lr 1e-12: the weights move by ~1e-12, the thresholded predictions (and so the mIoU) stay the same
    r = train(TrainConfig(out=out, model=cfg, avsbench=AVSBenchSource(root, subset="s4"), epochs=2, lr=1e-12, lr_min=0.0,
                          cpu=True, num_workers=0, progress=False))
    mious = [h["val_miou"] for h in r.history]
    assert mious[0] == mious[1]
    assert r.best_epoch == (1 if tie == "earlier" else 2)
    assert json.loads((out / "result.json").read_text())["best_epoch"] == r.best_epoch
