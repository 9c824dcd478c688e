"""The dataset card (``DIR/README.md``) of a shard directory, rendered from its build record.

The card is a Hugging Face dataset card: YAML front matter (``configs`` mapping each split to its
Parquet files, ``dataset_info`` with the row features and split sizes, licence, task categories,
tags) followed by a Markdown body (what the data is, how it was built, counts per split and
category, skipped inputs, shortfall, licences, how to load it, citations). The text depends only
on the record (and the example image paths), never on the clock, so rebuilding gives the same card.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Mapping

import yaml

from avsynth.io import atomic_write_text
from avsynth.shards.record import BuildRecord
from avsynth.shards.schema import SPLITS, hf_features_dict, row_layout

CARD_NAME = "README.md"
DEFAULT_PRETTY_NAME = "avsynth audio-visual segmentation triplets"

# Source datasets: licence notes shown in the card. Each row's `license` column repeats its terms.
LICENCE_NOTES: tuple[tuple[str, str], ...] = (
    (
        "LVIS v1",
        "Annotations (instance masks, categories) are CC BY 4.0 (LVIS consortium). The images are "
        "COCO 2017 images, which come from Flickr: they remain subject to the Flickr Terms of Use "
        "and to the licence each photograph was published under (see the COCO terms of use).",
    ),
    (
        "Open Images V7",
        "Annotations, including the segmentation masks, are CC BY 4.0 (Google LLC). The images are "
        "listed by Open Images as having a CC BY 2.0 licence; attribute each image to its author "
        "as given in the Open Images image metadata.",
    ),
    (
        "VGGSound",
        "The VGGSound list (video ids, start times, labels) is CC BY 4.0 (Visual Geometry Group, "
        "University of Oxford). The audio is cut from YouTube videos, which belong to their "
        "uploaders and are subject to YouTube's Terms of Service.",
    ),
)

CITATIONS: tuple[str, ...] = (
    """@inproceedings{liu2024annotationfree,
  title     = {Annotation-free Audio-Visual Segmentation},
  author    = {Liu, Jinxiang and Wang, Yu and Ju, Chen and Ma, Chaofan and Zhang, Ya and Xie, Weidi},
  booktitle = {Proceedings of the IEEE/CVF Winter Conference on Applications of Computer Vision (WACV)},
  year      = {2024}
}""",
    """@inproceedings{gupta2019lvis,
  title     = {{LVIS}: A Dataset for Large Vocabulary Instance Segmentation},
  author    = {Gupta, Agrim and Doll{\\'a}r, Piotr and Girshick, Ross},
  booktitle = {Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  pages     = {5356--5364},
  year      = {2019}
}""",
    """@article{kuznetsova2020openimages,
  title   = {The Open Images Dataset {V4}: Unified Image Classification, Object Detection, and Visual Relationship Detection at Scale},
  author  = {Kuznetsova, Alina and Rom, Hassan and Alldrin, Neil and Uijlings, Jasper and Krasin, Ivan and Pont-Tuset, Jordi and Kamali, Shahab and Popov, Stefan and Malloci, Matteo and Kolesnikov, Alexander and Duerig, Tom and Ferrari, Vittorio},
  journal = {International Journal of Computer Vision (IJCV)},
  volume  = {128},
  number  = {7},
  pages   = {1956--1981},
  year    = {2020}
}""",
    """@inproceedings{chen2020vggsound,
  title     = {{VGGSound}: A Large-scale Audio-Visual Dataset},
  author    = {Chen, Honglie and Xie, Weidi and Vedaldi, Andrea and Zisserman, Andrew},
  booktitle = {IEEE International Conference on Acoustics, Speech and Signal Processing (ICASSP)},
  pages     = {721--725},
  year      = {2020}
}""",
    """@inproceedings{zhou2022avsbench,
  title     = {Audio-Visual Segmentation},
  author    = {Zhou, Jinxing and Wang, Jianyuan and Zhang, Jiayi and Sun, Weixuan and Zhang, Jing and Birchfield, Stan and Guo, Dan and Kong, Lingpeng and Wang, Meng and Zhong, Yiran},
  booktitle = {European Conference on Computer Vision (ECCV)},
  pages     = {386--403},
  year      = {2022}
}""",
)

# Column documentation for the card's schema table (DESIGN §4).
COLUMN_DOCS: dict[str, str] = {
    "id": "unique row id",
    "split": "train / validation / test",
    "category": "category name (from the manifest)",
    "category_id": "category index in the manifest file",
    "image": "the original JPEG bytes, passed through",
    "mask": "binary mask PNG (non-zero = the sounding object), same size as the image",
    "audio": "mono 16 kHz audio window (FLAC or WAV)",
    "width": "image width in pixels",
    "height": "image height in pixels",
    "mask_area": "mask area as a fraction of the image",
    "bbox": "mask bounding box, normalised [x, y, w, h]",
    "image_source": "dataset the image and mask come from",
    "image_id": "image id in that dataset",
    "annotation_id": "instance / annotation id in that dataset",
    "audio_source": "dataset the audio comes from",
    "audio_id": "clip id in that dataset",
    "audio_label": "the clip's label in that dataset",
    "audio_offset_s": "start of the window in the source clip (seconds)",
    "audio_seconds": "window length (seconds)",
    "license": "licence terms of this row's sources",
    "sources": "every sounding source: category, category_id, audio_id, offset (s), gain_db of the "
               "mix (multi-source rows: RMS-normalised windows, seeded gains; else 0 dB). "
               "`category` is the first source's",
    "negative": "off-screen row: the clip's category is verified absent from the image "
                "(LVIS neg_category_ids / Open Images human-verified negative); the mask is empty",
    "semantic_mask": "8-bit class ids of the sounding instances, 0 = background (see the class table)",
}


# ---------------------------------------------------------------------------------------------
# Record access


def present_splits(record: BuildRecord | Mapping) -> list[str]:
    """Splits that have at least one shard file in the record, in train/validation/test order."""
    return BuildRecord.coerce(record).present_splits()


def _or(value: Any, default: Any) -> Any:
    """``value``, or ``default`` when the record does not have it."""
    return default if value is None else value


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket for ``n`` rows."""
    bounds = [
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
        (100_000_000, "10M<n<100M"),
    ]
    for limit, label in bounds:
        if n < limit:
            return label
    return "n>100M"


def _pretty_name(record: BuildRecord) -> str:
    """``name`` from the record if any, else built from the manifest and the category count."""
    args = record.arguments
    name = record.extra.get("name") or args.get("name")
    if name:
        return str(name)
    manifest = args.get("manifest")
    n = len(record.category_names())
    if isinstance(manifest, str) and manifest:
        return f"{DEFAULT_PRETTY_NAME} ({Path(manifest).stem}, {n} categories)"
    return DEFAULT_PRETTY_NAME


# ---------------------------------------------------------------------------------------------
# Front matter


#: The Hub's ``source_datasets`` names of the sources a build can read (record.sources keys).
SOURCE_DATASETS = {"lvis": "extended|lvis", "openimages": "extended|open-images-v7",
                   "vggsound": "extended|vggsound"}


def card_data(record: BuildRecord | Mapping):
    """The card's metadata as ``huggingface_hub.DatasetCardData`` (licence with its link to the
    card's licence section, source datasets, ``configs``, ``dataset_info``, tags...)."""
    from huggingface_hub import DatasetCardData

    meta = card_metadata(record)
    return DatasetCardData(**meta)


def card_metadata(record: BuildRecord | Mapping) -> dict[str, Any]:
    """The card's YAML metadata as a dict (``configs``, ``dataset_info``, licence, tags...)."""
    import datasets  # local: keeps `import avsynth.shards` light

    record = BuildRecord.coerce(record)
    splits = record.present_splits()
    features = datasets.Features.from_dict(hf_features_dict(*row_layout(record.arguments)))
    split_dict = datasets.SplitDict()
    for split in splits:
        split_dict.add(
            datasets.SplitInfo(
                name=split,
                num_bytes=record.split_bytes(split),
                num_examples=record.split_rows(split),
            )
        )
    download = sum(int(s.bytes or 0) for s in record.shards)
    return {
        "pretty_name": _pretty_name(record),
        "license": "other",
        "license_name": "mixed-source-licences",
        "license_link": "README.md#licences",
        "source_datasets": [SOURCE_DATASETS[k] for k in SOURCE_DATASETS if k in record.sources] or ["original"],
        "task_categories": ["image-segmentation", "audio-classification"],
        "tags": ["audio-visual-segmentation", "avs", "synthetic", "lvis", "open-images", "vggsound", "avsynth"],
        "size_categories": [size_category(record.total_rows())],
        "configs": [
            {
                "config_name": "default",
                "default": True,
                "data_files": [{"split": s, "path": f"data/{s}-*"} for s in splits],
            }
        ],
        "dataset_info": {
            "features": features._to_yaml_list(),
            "splits": split_dict._to_yaml_list(),
            "download_size": download,
            "dataset_size": download,
        },
    }


# ---------------------------------------------------------------------------------------------
# Body


def _table(header: list[str], rows: Iterable[list[Any]]) -> str:
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _json_block(value: Any) -> str:
    return "```json\n" + json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n```"


def _summary(record: BuildRecord) -> str:
    n_cat = len(record.category_names())
    counts = ", ".join(f"{record.split_rows(s):,} {s}" for s in SPLITS)
    tool = record.tool
    demo = (
        "\n\n**Demo data.** This build used avsynth's generated demo corpora (in the LVIS and "
        "VGGSound file formats), not the real datasets: use it to test pipelines, not to train "
        "models."
        if record.used_demo
        else ""
    )
    return (
        f"Audio-visual segmentation (AVS) triplets: an image, the mask of one sounding object in it "
        f"and an audio clip of that object's sound, paired by category as in the annotation-free "
        f"recipe of Liu et al. (WACV 2024). Image instances come from LVIS / Open Images "
        f"segmentation annotations, audio from VGGSound; no pixel was annotated for audio.\n\n"
        f"{record.total_rows():,} triplets ({counts}) over {n_cat} categories, built by "
        f"`{tool.get('name', 'avsynth')} {tool.get('version', '?')}` with seed "
        f"{_or(record.seed, '?')}.{demo}"
    )


def _examples_section(examples: list[Path]) -> str:
    lines = ["## Examples", "", "Images with their masks overlaid (caption: category and split).", ""]
    for i, p in enumerate(examples):
        rel = PurePosixPath(Path(p).as_posix()) if not Path(p).is_absolute() else PurePosixPath("assets", Path(p).name)
        lines.append(f"![example {i}]({rel.as_posix()})")
    return "\n".join(lines)


def _counts_section(record: BuildRecord) -> str:
    splits_meta = record.splits
    split_rows = [
        [s, f"{record.split_rows(s):,}", (splits_meta.get(s) or {}).get("num_shards", 0)] for s in SPLITS
    ]
    ids = {c["name"]: c.get("category_id", "") for c in record.categories}
    cat_rows = []
    for name in record.category_names():
        per = [int(((splits_meta.get(s) or {}).get("per_category") or {}).get(name, 0)) for s in SPLITS]
        cat_rows.append([name, ids.get(name, ""), *per, sum(per)])
    return "\n\n".join(
        [
            "## Contents",
            _table(["split", "rows", "shards"], split_rows),
            "### Rows per category",
            _table(["category", "id", *SPLITS, "total"], cat_rows),
        ]
    )


def _composition_section(record: BuildRecord) -> list[str]:
    """Extended builds: the mixed / negative row counts and the semantic class table."""
    comp = record.extra.get("composition")
    if not isinstance(comp, dict):
        return []
    args = record.arguments
    rows = [[s, (comp.get(s) or {}).get("rows", 0), (comp.get(s) or {}).get("mixed_rows", 0),
             (comp.get(s) or {}).get("negative_rows", 0)] for s in SPLITS if s in comp]
    parts = [
        "## Mixes and off-screen rows",
        f"Built with `--sources-per-row {args.get('sources_per_row', 1)}` and `--negatives "
        f"{args.get('negatives', 0)}`. A multi-source row shows an image holding instances of K "
        "categories (never one the source marks not exhaustively annotated); its audio mixes one "
        "clip per category (each window RMS-normalised to -20 dBFS, then a seeded gain in [-6, 0] dB; "
        "the sum is scaled down if it peaks above 0.99) and its mask is the union of their instances. "
        "An off-screen (negative) row plays a clip of a category that the image source *verified* "
        "absent (LVIS `neg_category_ids`; Open Images human-verified negative labels) and has an "
        "empty mask; unannotated categories are never used, as LVIS is federated.",
        _table(["split", "rows", "multi-source rows", "negative rows"], rows),
    ]
    if isinstance(args.get("sources_per_row"), str):  # a K list: single-source and mixed rows together
        parts.insert(2, (
            f"`--sources-per-row {args['sources_per_row']}` (K:weight) mixes kinds of rows: each image draws "
            "its K, seeded, among the listed K it has enough usable categories for, with probability "
            "proportional to the weight. An image that draws K = 1 gives the single-source rows a default "
            "build makes of it (rows minus multi-source and negative rows below), so the model must still "
            "pick the one sounding object among silent ones."))
    if args.get("mix_keep_silent"):
        parts.insert(2, ("`--mix-keep-silent`: a multi-source row is made only from an image holding at least one "
                         "more usable manifest category than it plays, so a manifest object in it stays silent."))
    table = record.extra.get("semantic_classes")
    if isinstance(table, dict) and table:
        parts += [f"### Semantic class ids ({args.get('semantic_classes', 'manifest')})",
                  _table(["category", "id in semantic_mask"], sorted(table.items(), key=lambda kv: kv[1]))]
    return ["\n\n".join(parts)]


def _schema_section(extended: bool = False, semantic: bool = False) -> str:
    feats = hf_features_dict(extended, semantic)

    def kind(f) -> str:
        if isinstance(f, list):
            return f"list<struct<{', '.join(f[0])}>>"
        t = f.get("_type")
        if t == "Value":
            return f["dtype"]
        if t in ("Sequence", "List"):
            return f"list<{kind(f['feature'])}>[{f.get('length', '')}]"
        return str(t)

    rows = [[f"`{name}`", kind(f), COLUMN_DOCS.get(name, "")] for name, f in feats.items()]
    return "## Row schema\n\n" + _table(["column", "type", "meaning"], rows)


def _build_section(record: BuildRecord) -> str:
    tool = record.tool
    facts = [
        ["tool", f"{tool.get('name', 'avsynth')} {tool.get('version', '?')}"],
        ["format", _or(record.format, "")],
        ["seed", _or(record.seed, "")],
        ["mask mode", _or(record.mask_mode, "")],
        ["audio window", f"{_or(record.clip_seconds, '')} s, {_or(record.audio_format, '')}"],
        ["audio pool files", len(record.audio_pool)],
    ]
    parts = [
        "## How it was built",
        "Built with `avsynth build`, which joins image instances and audio clips by category, "
        "splits them with disjoint images and disjoint audio clips (train audio from VGGSound "
        "train, validation/test audio from VGGSound test), and writes checksummed Parquet shards. "
        "`manifest.json` is the full build record (each shard's rows and sha256). Train rows can be "
        "re-paired with other clips of their category from `audio_pool/`.",
        _table(["", ""], facts),
        "### Arguments",
        _json_block(record.arguments),
        "### Source fingerprints",
        _json_block(record.sources),
    ]
    return "\n\n".join(parts)


def _skipped_section(record: BuildRecord) -> str:
    skipped = record.skipped
    if not skipped:
        return "## Skipped inputs\n\nNone."
    rows = []
    for reason in sorted(skipped):
        info = skipped[reason] or {}
        examples = ", ".join(f"`{e}`" for e in list(info.get("examples") or [])[:3])
        rows.append([reason, f"{int(info.get('count', 0)):,}", examples])
    return "## Skipped inputs\n\n" + _table(["reason", "count", "examples"], rows)


def _shortfall_section(record: BuildRecord) -> str:
    shortfall = record.shortfall
    rows = [
        (split, cat, int(missing))
        for split in SPLITS
        for cat, missing in sorted((shortfall.get(split) or {}).items())
        if int(missing) > 0
    ]
    if not rows:
        return "## Shortfall\n\nEvery requested split size was met."
    per_split = []
    for split in SPLITS:
        mine = [r for r in rows if r[0] == split]
        if mine:
            worst = ", ".join(f"{c} ({n:,})" for _, c, n in sorted(mine, key=lambda r: (-r[2], r[1]))[:SHORTFALL_SHOWN])
            per_split.append([split, f"{record.requested[split]:,}" if split in record.requested else "–",
                              f"{sum(n for *_, n in mine):,}", len(mine), worst])
    return (
        "## Shortfall\n\nThe sources held fewer rows than requested. Per split (the full table per "
        "category is `shortfall` in `manifest.json`):\n\n"
        + _table(["split", "requested", "missing", "categories short", "largest"], per_split)
    )


def _licence_section() -> str:
    parts = [
        "## Licences",
        "This dataset mixes material under different terms, so its licence is `other`. Each row's "
        "`license` column names the terms of its image, mask and audio sources. Use it for "
        "research in line with every source's terms:",
    ]
    parts.append("\n".join(f"- **{name}**: {text}" for name, text in LICENCE_NOTES))
    return "\n\n".join(parts)


def _loading_section(record: BuildRecord) -> str:
    return "\n\n".join(
        [
            "## How to load",
            "With `datasets` (from this folder or from the Hub). Decoding the `audio` column needs "
            "`torchcodec` and the FFmpeg libraries (`pip install torchcodec`, `apt-get install "
            "ffmpeg`):",
            "```python\n"
            "from datasets import load_dataset\n\n"
            'ds = load_dataset("ORG/NAME")            # or load_dataset("path/to/this/folder")\n'
            'row = ds["train"][0]                     # image, mask: PIL images\n'
            'audio = row["audio"].get_all_samples()   # .data (1 x samples), .sample_rate (16000)\n'
            'stream = load_dataset("ORG/NAME", split="train", streaming=True)\n'
            "```",
            "Without FFmpeg, read the stored FLAC/WAV bytes with soundfile:",
            "```python\n"
            "import io\n\n"
            "import soundfile\n"
            "from datasets import Audio, load_dataset\n\n"
            'ds = load_dataset("ORG/NAME").cast_column("audio", Audio(decode=False))\n'
            'row = ds["train"][0]\n'
            'wave, sample_rate = soundfile.read(io.BytesIO(row["audio"]["bytes"]))\n'
            "```",
            "With avsynth's shard reader (fast iteration, torch datasets, audio re-pairing):",
            "```python\n"
            "from avsynth.shards.reader import ShardReader\n\n"
            'reader = ShardReader("path/to/this/folder", split="train")  # or "hf://datasets/ORG/NAME"\n'
            'first = next(reader.iter_rows(columns=["id", "category"]))\n'
            "print(len(reader), first)\n"
            "```",
            "Command line: `avsynth verify DIR`, `avsynth stats DIR`, `avsynth view DIR`.",
        ]
    )


def _citation_section() -> str:
    return (
        "## Citation\n\nIf you use this data, cite the recipe and the source datasets:\n\n```bibtex\n"
        + "\n\n".join(CITATIONS)
        + "\n```"
    )


SHORTFALL_SHOWN = 5  # categories named per split in the card's shortfall summary


def render_card(record: BuildRecord | Mapping, examples: list[Path] | None = None) -> str:
    """The dataset card text for the build ``record`` (a BuildRecord, or manifest.json as a dict).

    ``examples`` are image paths relative to the dataset folder (e.g. ``assets/example-0.jpg``)
    shown in an Examples section; absolute paths are shown as ``assets/<name>``.
    """
    from huggingface_hub import DatasetCard

    record = BuildRecord.coerce(record)
    sections = [f"# {_pretty_name(record)}", _summary(record)]
    if examples:
        sections.append(_examples_section(list(examples)))
    sections += [
        _counts_section(record),
        _schema_section(*row_layout(record.arguments)),
        *_composition_section(record),
        _build_section(record),
        _skipped_section(record),
        _shortfall_section(record),
        _licence_section(),
        _loading_section(record),
        _citation_section(),
    ]
    body = "\n\n".join(sections) + "\n"
    card = DatasetCard(f"---\n{card_data(record).to_yaml()}\n---\n\n{body}")
    return str(card)


def write_card(out_dir: Path, record: BuildRecord | Mapping, examples: list[Path] | None = None) -> Path:
    """Write (or replace) ``out_dir/README.md`` atomically from ``record``; returns its path."""
    return atomic_write_text(Path(out_dir) / CARD_NAME, render_card(record, examples))


def read_front_matter(text: str) -> dict:
    """Parse a card's YAML front matter (between the leading ``---`` lines) into a dict."""
    if not text.startswith("---\n"):
        return {}
    end = text.find("\n---\n", 4)
    if end < 0:
        return {}
    return yaml.safe_load(text[4 : end + 1]) or {}
