"""Generate the fixture of the reference's localisation ground truth and scores (documentation only:
no reference code here; it imports ``utils.py`` of hche11/Localizing-Visual-Sounds-the-Hard-Way from
the path given on the command line).

    python tests/data/official/lvs_localization/generate.py --reference /path/to/Localizing-Visual-Sounds-the-Hard-Way \
        --vggss ../shared/data/labels/vggss/vggss.json --out tests/data/official/lvs_localization

Writes ``fixture.npz``: the reference's ``testset_gt`` maps for VGG-SS entries (all 12 with a corrupt
coordinate and 12 others) and for the Flickr-SoundNet XML files in ``xml/``; per-sample
``Evaluator.cal_CIOU`` values of seeded random binary predictions against those maps, and
``Evaluator.final()`` / ``Evaluator.cal_AUC()`` over them.
"""

from __future__ import annotations

import argparse
import json
import sys
from argparse import Namespace
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", type=Path, required=True)
    ap.add_argument("--vggss", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    sys.path.insert(0, str(a.reference))
    import sklearn
    import utils  # the reference's utils.py

    utils.sklearn = sklearn  # cal_AUC calls sklearn.metrics.auc but utils.py only imports `metrics`
    ann = json.loads(a.vggss.read_text())
    corrupt = [e["file"] for e in ann if any(v < 0 for b in e["bbox"] for v in b)]
    rng = np.random.default_rng(0)
    others = [ann[i]["file"] for i in sorted(rng.choice(len(ann), 12, replace=False))]
    vgg_ids = corrupt + others
    args = Namespace(testset="vggss", gt_all={e["file"]: e["bbox"] for e in ann})
    vgg_maps = np.stack([utils.testset_gt(args, f + ".mp4") for f in vgg_ids])
    xml_ids = sorted(p.stem for p in (a.out / "xml").glob("*.xml"))
    args = Namespace(testset="flickr", gt_path=str(a.out / "xml") + "/")
    flickr_maps = np.stack([utils.testset_gt(args, i + ".jpg") for i in xml_ids])
    gts = np.concatenate([vgg_maps, flickr_maps])
    preds = np.stack([(rng.random((224, 224)) < p).astype(float) if k % 3 else
                      np.pad(np.ones((100 + k, 120)), ((k, 124 - 2 * k), (30, 74)))
                      for k, p in enumerate(np.linspace(0.05, 0.95, len(gts)))])
    ev = utils.Evaluator()
    cious = np.array([ev.cal_CIOU(p, g, 0.5)[0] for p, g in zip(preds, gts)])
    np.savez_compressed(a.out / "fixture.npz", vggss_ids=np.array(vgg_ids), vggss_maps=vgg_maps.astype(np.float32),
                        flickr_ids=np.array(xml_ids), flickr_maps=flickr_maps.astype(np.float32),
                        preds=np.packbits(preds.astype(bool), axis=-1), cious=cious,
                        final=np.array(ev.final()), auc=np.array(ev.cal_AUC()))


if __name__ == "__main__":
    main()
