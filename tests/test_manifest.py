"""Category manifests: the shipped YAML against the real label lists, the loader's validation,
``--categories`` selection, the ``avsynth manifests`` command, and that a non-editable wheel
install finds the shipped manifests."""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from avsynth.cli import app
from avsynth.errors import ManifestError
from avsynth.manifest import (
    DEFAULT_MANIFEST,
    Manifest,
    load_manifest,
    select_categories,
    shipped_manifest_names,
    shipped_manifests,
)
from avsynth.resources import data_dir

REPO = Path(__file__).resolve().parent.parent
OI_CLASSES = Path(__file__).resolve().parent / "data" / "oidv7-class-descriptions-boxable.csv"
SHIPPED = ("avs-synthetic-46", "full")
SOURCES = ("lvis", "openimages", "vggsound")
CONFIRMED = [
    "ambulance", "cat", "dog", "bus", "horse", "lion", "bird", "guitar", "piano",
    "computer_keyboard",
]  # fmt: skip
ANSI = re.compile(r"\x1b\[[0-9;]*m")


# ---------------------------------------------------------------------------------------------
# Real label lists


@pytest.fixture(scope="module")
def lvis_names(labels_dir) -> set[str]:
    with open(labels_dir / "lvis_v1_categories.csv", newline="", encoding="utf-8") as f:
        names = {row["name"] for row in csv.DictReader(f)}
    assert len(names) == 1203
    return names


@pytest.fixture(scope="module")
def vggsound_labels(labels_dir) -> set[str]:
    lines = (labels_dir / "vggsound_classes.txt").read_text(encoding="utf-8").splitlines()
    labels = {line.strip() for line in lines if line.strip()}
    assert len(labels) == 309
    return labels


@pytest.fixture(scope="module")
def oi_classes() -> dict[str, str]:
    """MID -> display name of the Open Images V7 boxable classes (tests/data, see SOURCES.md)."""
    with open(OI_CLASSES, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["LabelName", "DisplayName"]
    body = rows[1:]
    assert len(body) == 601 and all(len(r) == 2 and r[0].startswith("/m/") for r in body)
    classes = dict(body)
    assert len(classes) == 601 and len(set(classes.values())) == 601
    return classes


def _raw(name: str) -> dict:
    """A shipped manifest as plain YAML (independent of the loader)."""
    return yaml.safe_load((data_dir("manifests") / f"{name}.yaml").read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# The shipped manifests against the real label lists


def test_shipped_manifests_are_the_expected_ones():
    assert set(SHIPPED) <= set(shipped_manifest_names())
    assert DEFAULT_MANIFEST == "avs-synthetic-46"
    assert [m.name for m in shipped_manifests()] == shipped_manifest_names()


@pytest.mark.parametrize("name", SHIPPED)
def test_lvis_names_exist(name, lvis_names):
    missing = [(c.name, n) for c in load_manifest(name) for n in c.lvis if n not in lvis_names]
    assert not missing, f"not LVIS v1 category names: {missing}"


@pytest.mark.parametrize("name", SHIPPED)
def test_vggsound_labels_exist(name, vggsound_labels):
    missing = [
        (c.name, lab) for c in load_manifest(name) for lab in c.vggsound
        if lab not in vggsound_labels
    ]  # fmt: skip
    assert not missing, f"not VGGSound labels: {missing}"


@pytest.mark.parametrize("name", SHIPPED)
def test_openimages_names_exist(name, oi_classes):
    names = set(oi_classes.values())
    missing = [(c.name, n) for c in load_manifest(name) for n in c.openimages if n not in names]
    assert not missing, f"not Open Images V7 boxable display names: {missing}"


@pytest.mark.parametrize("name", SHIPPED)
def test_no_label_in_two_categories(name):
    """Checked on the raw YAML, so it holds whatever the loader does."""
    cats = _raw(name)["categories"]
    for source in SOURCES:
        counts = Counter(lab for c in cats for lab in (c.get(source) or []))
        twice = sorted(lab for lab, n in counts.items() if n > 1)
        assert not twice, f"{name}: {source} labels in two categories: {twice}"


@pytest.mark.parametrize("name", SHIPPED)
def test_every_category_is_complete(name):
    m = load_manifest(name)
    names = [c.name for c in m]
    assert len(names) == len(set(names))
    for i, c in enumerate(m):
        assert c.category_id == i
        assert c.vggsound, c.name
        assert c.lvis or c.openimages, c.name
        assert re.fullmatch(r"[a-z][a-z0-9_]*", c.name), c.name
    assert m.description


def test_avs_synthetic_46():
    m = load_manifest("avs-synthetic-46")
    assert m.name == "avs-synthetic-46"
    assert len(m) == 46
    assert m.names[:10] == CONFIRMED
    text = (data_dir("manifests") / "avs-synthetic-46.yaml").read_text(encoding="utf-8")
    header = text.split("\nname:")[0]
    assert "not public" in header and "WACV 2024" in header
    assert load_manifest() == m


def test_full_is_large_and_contains_the_46():
    full = load_manifest("full")
    m46 = load_manifest("avs-synthetic-46")
    assert len(full) > 100
    for c in m46:
        f = full[c.name]
        assert (f.lvis, f.openimages, f.vggsound) == (c.lvis, c.openimages, c.vggsound), c.name
    # the 46 come first, in the same order, so category ids agree between the two manifests
    assert full.names[:46] == m46.names


def test_openimages_names_are_v7_names(oi_classes):
    """V7 renamed some classes: a few spot checks that the manifests use the V7 spelling."""
    full = load_manifest("full")
    assert full["airplane"].openimages == ("Fixed-wing aircraft",)
    assert oi_classes["/m/0cmf2"] == "Fixed-wing aircraft"
    assert full["dog"].openimages == ("Dog",) and oi_classes["/m/0bt9lr"] == "Dog"
    assert oi_classes["/m/01m2v"] == "Computer keyboard"


# ---------------------------------------------------------------------------------------------
# --categories


def test_select_integer():
    m = select_categories(5)
    assert m.names == CONFIRMED[:5]
    assert select_categories("5") == m
    assert select_categories(" 46 ") == load_manifest("avs-synthetic-46")
    assert len(select_categories("12", manifest="full")) == 12
    for bad in (0, -1, 47, "0"):
        with pytest.raises(ManifestError, match="has 46 categories"):
            select_categories(bad)


def test_select_comma_list_keeps_manifest_order_and_ids():
    m = select_categories("dog, cat,")
    assert m.names == ["cat", "dog"]
    assert [c.category_id for c in m] == [1, 2]
    assert select_categories("owl,parrot", manifest="full").names == ["owl", "parrot"]
    assert select_categories("full:parrot,owl").names == ["owl", "parrot"]
    assert len(select_categories("full:60")) == 60


def test_select_manifest_path_and_shipped_name(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "name: mine\ncategories:\n"
        "  - {name: dog, lvis: [dog], vggsound: [dog barking]}\n"
        "  - {name: cat, openimages: [Cat], vggsound: [cat meowing]}\n",
        encoding="utf-8",
    )
    m = select_categories(str(path))
    assert isinstance(m, Manifest) and m.name == "mine" and m.names == ["dog", "cat"]
    assert m.path == path
    assert select_categories(path) == m
    assert len(select_categories("full")) == len(load_manifest("full"))
    assert select_categories("avs-synthetic-46") == load_manifest("avs-synthetic-46")
    assert select_categories(None) == select_categories("") == load_manifest()


def test_select_unknown_name_lists_closest():
    with pytest.raises(ManifestError) as err:
        select_categories("dgo,cat")
    msg = str(err.value)
    assert "'dgo'" in msg and "closest: dog" in msg
    assert "Valid names:" in msg and "computer_keyboard" in msg
    with pytest.raises(ManifestError, match=r"'computer keyboard' \(closest: computer_keyboard"):
        select_categories("computer keyboard")


def test_select_name_from_another_manifest_is_explained():
    with pytest.raises(ManifestError, match="full:owl"):
        select_categories("owl")
    with pytest.raises(ManifestError, match="no category names"):
        select_categories(" , ")
    with pytest.raises(ManifestError, match="no manifest file"):
        select_categories("missing.yaml")


# ---------------------------------------------------------------------------------------------
# Invalid manifests: ManifestError naming the file

GOOD = "  - {name: dog, lvis: [dog], vggsound: [dog barking]}\n"
BAD_MANIFESTS = {
    "not_a_mapping": ("- dog\n- cat\n", "a manifest is a mapping"),
    "no_categories_list": ("name: x\ncategories: dog\n", "a manifest is a mapping"),
    "empty": ("name: x\ncategories: []\n", "no categories"),
    "yaml_syntax": ("name: x\ncategories: [\n", "cannot read manifest YAML"),
    "entry_not_mapping": ("categories:\n  - dog\n", "category #0: each entry is a mapping"),
    "missing_name": ("categories:\n  - {lvis: [dog], vggsound: [dog barking]}\n", "'name'"),
    "numeric_name": ("categories:\n  - {name: '12', lvis: [dog], vggsound: [x]}\n", "number"),
    "comma_name": ("categories:\n  - {name: 'a,b', lvis: [dog], vggsound: [x]}\n", "','"),
    "missing_vggsound": ("categories:\n  - {name: dog, lvis: [dog]}\n", "vggsound"),
    "no_image_source": ("categories:\n  - {name: dog, vggsound: [dog barking]}\n",
                        "at least one lvis or openimages"),
    "duplicate_name": ("categories:\n" + GOOD + GOOD.replace("lvis: [dog]", "lvis: [puppy]")
                       .replace("dog barking", "dog howling"), "duplicate category name"),
    "unknown_key": ("categories:\n  - {name: dog, lvis: [dog], vggsound: [x], audioset: [y]}\n",
                    "unknown keys ['audioset']"),
    "unknown_top_key": ("name: x\ncategory_list: []\ncategories:\n" + GOOD, "unknown top-level"),
    "label_in_two_categories": ("categories:\n" + GOOD
                                + "  - {name: puppy, lvis: [puppy], vggsound: [dog barking]}\n",
                                "already mapped to 'dog'"),
    "label_twice_in_one": ("categories:\n  - {name: dog, lvis: [dog], "
                           "vggsound: [dog barking, dog barking]}\n", "twice"),
    "labels_not_strings": ("categories:\n  - {name: dog, lvis: [1, 2], vggsound: [x]}\n",
                           "list of non-empty strings"),
    "notes_not_text": ("categories:\n  - {name: dog, lvis: [dog], vggsound: [x], notes: [a]}\n",
                       "'notes' must be a string"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_MANIFESTS))
def test_bad_manifest_names_the_file(case, tmp_path):
    text, expected = BAD_MANIFESTS[case]
    path = tmp_path / f"bad-{case}.yaml"
    path.write_text(text, encoding="utf-8")
    for loader in (load_manifest, select_categories):
        with pytest.raises(ManifestError) as err:
            loader(str(path))
        assert str(path) in str(err.value)
        assert expected in str(err.value)


def test_notes_are_kept(tmp_path):
    path = tmp_path / "n.yaml"
    path.write_text("categories:\n  - {name: dog, lvis: [dog], vggsound: [x], notes: ' hi '}\n")
    m = load_manifest(path)
    assert m["dog"].notes == "hi" and m.name == "n"
    assert "dog" in m and "cat" not in m


# ---------------------------------------------------------------------------------------------
# avsynth manifests [NAME]


def _run(*args: str):
    result = CliRunner().invoke(app, ["manifests", *args], env={"COLUMNS": "250"})
    return result, ANSI.sub("", result.output)


def test_cli_lists_shipped_manifests():
    result, out = _run()
    assert result.exit_code == 0, out
    for m in shipped_manifests():
        row = next(line for line in out.splitlines() if f" {m.name} " in line)
        assert f" {len(m)} " in row
    assert re.search(r"avs-synthetic-46 +│ +46 ", out)
    assert re.search(rf"full +│ +{len(load_manifest('full'))} ", out)


def test_cli_shows_one_manifest():
    result, out = _run("avs-synthetic-46")
    assert result.exit_code == 0, out
    assert "avs-synthetic-46: 46 categories" in out
    for header in ("id", "name", "lvis", "openimages", "vggsound"):
        assert f" {header} " in out
    row = next(line for line in out.splitlines() if " computer_keyboard " in line)
    assert re.search(r"│ +9 │ computer_keyboard", row)
    assert "Computer keyboard" in row and "typing on computer keyboard" in row
    assert "bird chirping, tweeting" in out and "bus_(vehicle)" in out
    result, out = _run("full")
    assert result.exit_code == 0 and "Fixed-wing aircraft" in out and "owl hooting" in out


def test_cli_manifest_path_and_errors(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("categories:\n" + GOOD, encoding="utf-8")
    result, out = _run(str(path))
    assert result.exit_code == 0, out
    assert "mine: 1 categories" in out and "dog barking" in out

    result, out = _run("no-such-manifest")
    assert result.exit_code == 2
    assert "no manifest file 'no-such-manifest'" in out and "avs-synthetic-46" in out
    assert "Traceback" not in out

    bad = tmp_path / "bad.yaml"
    bad.write_text("categories:\n  - {name: dog, lvis: [dog]}\n", encoding="utf-8")
    result, out = _run(str(bad))
    assert result.exit_code == 2 and "bad.yaml" in out and "vggsound" in out


# ---------------------------------------------------------------------------------------------
# A non-editable wheel install finds the shipped manifests (force-include -> avsynth/_data)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_wheel_install_finds_manifests(tmp_path):
    wheels, target, elsewhere = tmp_path / "wheels", tmp_path / "site", tmp_path / "cwd"
    elsewhere.mkdir()
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(REPO), "-w", str(wheels)]
    if importlib.util.find_spec("hatchling") is not None:
        cmd.insert(4, "--no-build-isolation")  # no registry needed when hatchling is here
    subprocess.run(cmd, check=True, cwd=tmp_path, timeout=800)
    (wheel,) = wheels.glob("avsynth-*.whl")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
         str(wheel)],
        check=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    probe = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        import avsynth, avsynth.resources as r
        from avsynth.manifest import load_manifest, select_categories, shipped_manifest_names
        target = Path({str(target)!r}).resolve()
        assert Path(avsynth.__file__).resolve().is_relative_to(target), avsynth.__file__
        assert r.data_dir("manifests").resolve().is_relative_to(target), r.data_dir("manifests")
        m = load_manifest("avs-synthetic-46")
        assert len(m) == 46, len(m)
        assert m.path.resolve().is_relative_to(target), m.path
        assert len(select_categories("full")) > 100
        assert {{"avs-synthetic-46", "full"}} <= set(shipped_manifest_names())
        print("OK", len(m), m.path)
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONPATH"] = str(target)
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=elsewhere, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("OK 46 ")


def test_select_all_46_by_name_list():
    """A long comma list (longer than a file name may be) selects by name, not as a path."""
    names = load_manifest("avs-synthetic-46").names
    picked = select_categories(",".join(names))
    assert picked.names == names
