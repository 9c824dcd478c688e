"""Checks of an AVS-Synthetic release before anything is written (``import-avs-synthetic``).

- Class ids and names must agree one to one: a row whose ``class_id`` names another class
  elsewhere in the file, or a class name under two ids, is a one-line BuildError naming both rows
  (the shards would otherwise carry inconsistent ``category_id``s).
- The leakage rules ``avsynth verify`` enforces are applied here, and repaired with a count: an
  image or a named audio clip in two splits is kept in the first split (train, validation, test
  order) and its later rows are counted skips; pool clips that validation or test rows use are
  left out of the train draw.
"""

from __future__ import annotations

from avsynth.errors import BuildError
from avsynth.shards.schema import SPLITS
from avsynth.sources.records import SkipCounter

SKIP_IMAGE_TWO_SPLITS = "avs-synthetic: image in two splits (first split kept)"
SKIP_AUDIO_TWO_SPLITS = "avs-synthetic: audio clip in two splits (first split kept)"
SKIP_POOL_EVAL_CLIP = "avs-synthetic: pool clip used by validation/test (left out of train draw)"


def check_class_ids(rows, where: str) -> None:
    """One name per class id and one id per name, or a BuildError naming the two rows."""
    by_id: dict[int, tuple[str, str]] = {}
    by_name: dict[str, tuple[int, str]] = {}
    for r in rows:
        iid = r.instance.annotation_id
        name, first = by_id.setdefault(r.category_id, (r.category, iid))
        if name != r.category:
            raise BuildError(
                f"{where}: instance {iid}: class_id {r.category_id} is {r.category!r} here but "
                f"{name!r} at instance {first}; fix the class_id / class_name columns"
            )
        cid, first = by_name.setdefault(r.category, (r.category_id, iid))
        if cid != r.category_id:
            raise BuildError(
                f"{where}: instance {iid}: class {r.category!r} has class_id {r.category_id} here "
                f"but {cid} at instance {first}; fix the class_id / class_name columns"
            )


def remove_leaks(rows, skips: SkipCounter) -> list:
    """The rows without split leakage (see the module docstring); dropped rows are counted."""
    order = {s: i for i, s in enumerate(SPLITS)}
    ranked = sorted(enumerate(rows), key=lambda t: (order[t[1].split], t[0]))
    image_split: dict[str, str] = {}
    audio_split: dict[str, str] = {}
    keep: list[tuple[int, object]] = []
    for i, r in ranked:
        img = r.instance.image_id
        if image_split.setdefault(img, r.split) != r.split:
            skips.skip(SKIP_IMAGE_TWO_SPLITS,
                       f"{r.instance.annotation_id}: image {img} ({image_split[img]} and {r.split})")
            continue
        if r.audio_name is not None and audio_split.setdefault(r.audio_name, r.split) != r.split:
            skips.skip(SKIP_AUDIO_TWO_SPLITS, f"{r.instance.annotation_id}: clip {r.audio_name} "
                       f"({audio_split[r.audio_name]} and {r.split})")
            continue
        keep.append((i, r))
    return [r for _, r in sorted(keep, key=lambda t: t[0])]


def eval_clips(rows) -> set[str]:
    """Audio clips that validation and test rows name (never drawn for train rows)."""
    return {r.audio_name for r in rows if r.split != "train" and r.audio_name is not None}
