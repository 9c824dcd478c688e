"""The dataset card: YAML front matter that `datasets` reads, and a deterministic body."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import datasets
import pytest

from avsynth.media.audio import decode_audio
from avsynth.shards.card import (
    CITATIONS,
    LICENCE_NOTES,
    card_metadata,
    read_front_matter,
    render_card,
    size_category,
    write_card,
)
from avsynth.shards.schema import hf_features_dict

from ._tiny_shards import load_record, make_shard_dir


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_shard_dir(tmp_path_factory.mktemp("card") / "ds")


def test_front_matter_configs_features_and_splits(tiny):
    record = load_record(tiny)
    meta = read_front_matter(render_card(record))
    assert meta["license"] == "other"
    assert meta["license_link"] == "README.md#licences" and "## Licences" in render_card(load_record(tiny))
    assert meta["source_datasets"] == ["original"]  # the tiny record names no LVIS/OI/VGGSound source
    assert "image-segmentation" in meta["task_categories"]
    (config,) = meta["configs"]
    assert config["config_name"] == "default"
    assert config["data_files"] == [
        {"split": "train", "path": "data/train-*"},
        {"split": "validation", "path": "data/validation-*"},
        {"split": "test", "path": "data/test-*"},
    ]
    info = meta["dataset_info"]
    features = datasets.Features._from_yaml_list(info["features"])
    assert features == datasets.Features.from_dict(hf_features_dict())
    assert isinstance(features["image"], datasets.Image)
    assert isinstance(features["mask"], datasets.Image)
    assert isinstance(features["audio"], datasets.Audio)
    splits = {s["name"]: s for s in info["splits"]}
    assert {k: v["num_examples"] for k, v in splits.items()} == {"train": 6, "validation": 3, "test": 3}
    assert info["download_size"] == sum(s["bytes"] for s in record["shards"])


def test_body_has_counts_build_facts_licences_and_citations(tiny):
    record = load_record(tiny)
    text = render_card(record)
    body = text.split("\n---\n", 1)[1]
    assert "| dog | 0 | 2 | 1 | 1 | 4 |" in body  # per-category counts row
    assert "| train | 6 | 2 |" in body
    assert "missing audio file" in body and "`abc_000010`" in body  # skipped inputs
    assert "| validation | – | 2 | 1 | dog (2) |" in body  # shortfall, summarised per split
    assert '"clip_seconds": 0.5' in body  # arguments block
    for name, note in LICENCE_NOTES:
        assert name in body and note in body
    assert "CC BY 2.0" in body and "YouTube" in body and "Flickr" in body
    assert len(CITATIONS) == 5 and all(c in body for c in CITATIONS)
    for key in ("liu2024annotationfree", "gupta2019lvis", "kuznetsova2020openimages", "chen2020vggsound", "zhou2022avsbench"):
        assert "@" in body and key in body
    assert "load_dataset" in body and "ShardReader" in body


def test_render_is_deterministic_and_timestamp_free(tiny):
    record = load_record(tiny)
    a, b = render_card(record), render_card(copy.deepcopy(record))
    assert a == b
    assert not re.search(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", a)


def test_examples_section_links_assets(tiny):
    text = render_card(load_record(tiny), [Path("assets/example-0.jpg"), Path("assets/example-1.jpg")])
    assert "![example 0](assets/example-0.jpg)" in text
    assert "![example 1](assets/example-1.jpg)" in text
    assert "## Examples" not in render_card(load_record(tiny))


def test_missing_split_is_left_out_of_configs(tiny):
    record = load_record(tiny)
    record["shards"] = [s for s in record["shards"] if s["split"] != "test"]
    record["splits"]["test"] = {"rows": 0, "num_shards": 0, "per_category": {}}
    meta = card_metadata(record)
    assert [d["split"] for d in meta["configs"][0]["data_files"]] == ["train", "validation"]
    assert [s["name"] for s in meta["dataset_info"]["splits"]] == ["train", "validation"]


def test_size_categories():
    assert size_category(12) == "n<1K"
    assert size_category(62_609) == "10K<n<100K"
    assert size_category(1_000_000) == "1M<n<10M"


def test_write_card_is_atomic_replace_and_loads_with_datasets(tiny, tmp_path):
    out = write_card(tiny, load_record(tiny))
    assert out == tiny / "README.md"
    first = out.read_bytes()
    out.write_text("stale card", encoding="utf-8")
    write_card(tiny, load_record(tiny))
    assert out.read_bytes() == first
    assert not [p for p in tiny.iterdir() if p.name.startswith(".tmp-")]

    ds = datasets.load_dataset(str(tiny), cache_dir=str(tmp_path / "hf-cache"))
    assert set(ds) == {"train", "validation", "test"}
    assert {k: v.num_rows for k, v in ds.items()} == {"train": 6, "validation": 3, "test": 3}
    feats = ds["train"].features
    assert isinstance(feats["image"], datasets.Image)
    assert isinstance(feats["mask"], datasets.Image)
    assert isinstance(feats["audio"], datasets.Audio)
    # datasets decodes Audio with torchcodec (not installed here): read the raw FLAC instead.
    row = ds["validation"].cast_column("audio", datasets.Audio(decode=False))[0]
    assert row["image"].size == (row["width"], row["height"])  # decoded by datasets (PIL)
    assert row["mask"].size == row["image"].size
    wave, sr = decode_audio(row["audio"]["bytes"])
    assert sr == 16_000 and len(wave) == round(row["audio_seconds"] * sr)


def test_card_yaml_is_huggingface_hub_card_data_and_shortfall_is_short(tiny):
    """The front matter round-trips through huggingface_hub's DatasetCard; a 140-row shortfall
    (46 categories x 3 splits, as in the demo tour) becomes one line per split."""
    from huggingface_hub import DatasetCard

    record = load_record(tiny)
    record["sources"] = {"lvis": [], "vggsound": []}
    cats = [f"cat{i:02d}" for i in range(47)]
    record["shortfall"] = {s: {c: i + 1 for i, c in enumerate(cats)} for s in ("train", "validation", "test")}
    record["requested"] = {"train": 52_609, "validation": 5_000, "test": 5_000}
    text = render_card(record)
    card = DatasetCard(text)
    assert card.data.license_link == "README.md#licences"
    assert card.data.source_datasets == ["extended|lvis", "extended|vggsound"]
    assert card.data.to_dict()["configs"][0]["data_files"][0] == {"split": "train", "path": "data/train-*"}
    section = text.split("## Shortfall", 1)[1].split("\n## ", 1)[0]
    rows = [ln for ln in section.splitlines() if ln.startswith("| ") and not ln.startswith("| split")]
    assert len(rows) == 3
    assert rows[0] == "| train | 52,609 | 1,128 | 47 | cat46 (47), cat45 (46), cat44 (45), cat43 (44), cat42 (43) |"
