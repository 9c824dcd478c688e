"""Rows of extended builds: multi-source mixes, off-screen negatives, semantic masks.

A row here is the single-source row of :func:`avsynth.build.rows.triplet_row` plus the columns
``sources`` (one entry per sounding source), ``negative`` and, with ``--semantic``,
``semantic_mask`` (8-bit class ids, 0 = background). The audio of a K-source row is the
:func:`avsynth.media.mix.mix` of its K windows (RMS-normalised, seeded gains); a single-source
or negative row keeps its window as is (gain 0 dB). The binary ``mask`` is the union of the
sounding instances; a negative row's mask is empty and its ``semantic_mask`` all background.
"""

from __future__ import annotations

from avsynth.build.inputs import checked_image, counted
from avsynth.errors import BuildError
from avsynth.manifest import Manifest
from avsynth.plan import RowSpec
from avsynth.sources.records import SkipCounter

#: ``--semantic-classes``: the manifest's own ids (category_id + 1) or AVSBench's 71 AVSS classes.
CLASS_SPACES = ("manifest", "avsbench")


def semantic_class_ids(manifest: Manifest, space: str, avss_classes: list[str] | None = None) -> dict[str, int]:
    """Category name -> 8-bit class id (0 is background).

    ``manifest``: ``category_id + 1``. ``avsbench``: the index of the category's ``avsbench``
    class in the AVSS class list (background = 0); a category without one is an error naming it
    (choose categories AVSBench has, or the manifest class space).
    """
    if space == "manifest":
        ids = {c.name: c.category_id + 1 for c in manifest.categories}
        worst = max(ids.values(), default=0)
        if worst > 255:
            raise BuildError(f"--semantic: manifest {manifest.name!r} has ids up to {worst - 1}; 8-bit masks hold 255 classes")
        return ids
    if space != "avsbench":
        raise BuildError(f"--semantic-classes must be one of {', '.join(CLASS_SPACES)}, not {space!r}")
    if avss_classes is None:
        from avsynth.sources.avsbench import load_palette

        avss_classes = list(load_palette()[0])
    missing = [c.name for c in manifest.categories if not c.avsbench]
    if missing:
        raise BuildError(
            f"--semantic-classes avsbench: {len(missing)} selected categories have no 'avsbench' class in "
            f"manifest {manifest.name!r} ({', '.join(missing[:8])}); select categories AVSBench has or use "
            "--semantic-classes manifest"
        )
    unknown = [c.avsbench for c in manifest.categories if c.avsbench not in avss_classes[1:]]
    if unknown:
        raise BuildError(f"manifest {manifest.name!r}: 'avsbench' names not among the AVSS classes: {unknown}")
    return {c.name: avss_classes.index(c.avsbench) for c in manifest.categories}


def extended_row(item: RowSpec, opts, skips: SkipCounter, cache: dict, *, base_row,
                 note_window=None) -> dict | None:
    """The row of ``item`` with the extended columns; bad inputs are counted in ``skips``.

    Every source's window passes the build's audio checks (long enough, not silent; see
    :mod:`avsynth.media.checks`); ``note_window(row_id, planned_s, window)`` records a window that was
    padded or moved.

    ``base_row(item, opts, skips, cache)`` makes the single-source columns of a positive row
    (:func:`avsynth.build.rows.triplet_row`, passed in by its caller).
    """
    import numpy as np

    from avsynth.media.audio import encode_audio
    from avsynth.media.checks import checked_window
    from avsynth.media.mask import encode_label_png, encode_png, rasterize
    from avsynth.media.mix import mix

    if item.negative:
        row = _negative_base(item, opts, skips, cache, encode_png)
    else:
        row = base_row(item, opts, skips, cache)
    if row is None:
        return None
    sources = item.sources
    offsets = [float(s.audio_offset_s) for s in sources]

    def window(i: int, clip, planned: float):
        samples, win = checked_window(clip.path, planned, item.audio_seconds, target_sr=opts.sample_rate,
                                      key=str(clip.path), pad_short=getattr(opts, "pad_short_audio", False))
        if note_window is not None:
            note_window(item.id, planned, win)
        if i < len(offsets):
            offsets[i] = float(win.offset_s)
        return samples, win

    if len(sources) > 1:
        waves = counted(skips, "unreadable audio file",
                        lambda: [window(i, s.clip, s.audio_offset_s)[0] for i, s in enumerate(sources)])
        if waves is None:
            return None
        row["audio"] = {"bytes": encode_audio(mix(waves, [s.gain_db for s in sources]), opts.sample_rate,
                                              fmt=opts.audio_format),
                        "path": f"{item.id}.{opts.audio_format}"}
        row["audio_id"] = "+".join(s.clip.audio_id for s in sources)
        row["audio_label"] = " + ".join(s.clip.label for s in sources)
        row["license"] = "; ".join(sorted({i.license for i in item.instances if i.license})
                                   + [f"audio: {s.clip.license}" for s in sources])
    elif item.negative:
        got = counted(skips, "unreadable audio file", window, 0, item.clip, item.audio_offset_s)
        if got is None:
            return None
        wave, win = got
        audio = encode_audio(wave, opts.sample_rate, fmt=opts.audio_format)
        row["audio"] = {"bytes": audio, "path": f"{item.clip.audio_id}.{opts.audio_format}"}
        row["audio_offset_s"] = float(win.offset_s)
    if len(sources) == 1 and not item.negative:  # the base row checked (and maybe moved) the window
        offsets[0] = float(row["audio_offset_s"])
    row["sources"] = [
        {"category": s.category, "category_id": s.category_id, "audio_id": s.clip.audio_id,
         "offset": offsets[i], "gain_db": float(s.gain_db)}
        for i, s in enumerate(sources)
    ]
    row["negative"] = bool(item.negative)
    if opts.semantic:
        ids = dict(opts.semantic_ids)
        labels = np.zeros((row["height"], row["width"]), dtype=np.uint8)
        for s in sources:  # in source order: a later source wins where instances overlap
            for inst in s.instances:
                labels[rasterize(inst.mask, row["width"], row["height"])] = ids[s.category]
        row["semantic_mask"] = {"bytes": encode_label_png(labels), "path": f"{item.id}.semantic.png"}
    return row


def _negative_base(item: RowSpec, opts, skips: SkipCounter, cache: dict, encode_png) -> dict | None:
    """The single-source columns of an off-screen row: the image, an empty mask, the clip."""
    import numpy as np

    lab = item.image
    image = checked_image(cache, lab.image_path, lab.width, lab.height, skips)
    if image is None:
        return None
    return {
        "id": item.id, "split": item.split, "category": item.category, "category_id": item.category_id,
        "image": {"bytes": image.bytes, "path": f"{lab.image_id}.jpg"},
        "mask": {"bytes": encode_png(np.zeros((image.height, image.width), dtype=bool)), "path": f"{item.id}.png"},
        "audio": None, "width": image.width, "height": image.height, "mask_area": 0.0,
        "bbox": [0.0, 0.0, 0.0, 0.0], "image_source": lab.source, "image_id": str(lab.image_id),
        "annotation_id": "", "audio_source": item.clip.source, "audio_id": item.clip.audio_id,
        "audio_label": item.clip.label, "audio_offset_s": float(item.audio_offset_s),
        "audio_seconds": float(item.audio_seconds),
        "license": "; ".join([lab.license, f"audio: {item.clip.license}"] if lab.license else [f"audio: {item.clip.license}"]),
    }
