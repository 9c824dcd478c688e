"""Category manifests: load, validate and select.

A manifest is YAML with one entry per category::

    name: avs-synthetic-46
    description: ...
    categories:
      - name: dog
        lvis: [dog]
        openimages: [Dog]
        vggsound: [dog barking, dog howling, ...]

``category_id`` of a category is its 0-based position in the manifest *file*, so ids stay stable
whichever subset ``--categories`` selects.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import yaml

from avsynth.errors import ManifestError
from avsynth.resources import data_dir, resolve

DEFAULT_MANIFEST = "avs-synthetic-46"
_SOURCES = ("lvis", "openimages", "vggsound")


@dataclass(frozen=True)
class Category:
    name: str
    category_id: int
    lvis: tuple[str, ...] = ()
    openimages: tuple[str, ...] = ()
    vggsound: tuple[str, ...] = ()


@dataclass(frozen=True)
class Manifest:
    name: str
    categories: tuple[Category, ...]
    path: Path | None = None
    description: str = ""

    def __len__(self) -> int:
        return len(self.categories)

    def __iter__(self):
        return iter(self.categories)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.categories]

    def __getitem__(self, name: str) -> Category:
        for c in self.categories:
            if c.name == name:
                return c
        raise KeyError(name)

    def by_source_label(self, source: str) -> dict[str, Category]:
        """Map each label of ``source`` ("lvis" | "openimages" | "vggsound") to its category."""
        if source not in _SOURCES:
            raise ValueError(f"unknown source {source!r}")
        return {label: c for c in self.categories for label in getattr(c, source)}

    def subset(self, names: list[str]) -> "Manifest":
        keep = set(names)
        cats = tuple(c for c in self.categories if c.name in keep)
        return Manifest(self.name, cats, self.path, self.description)


def _as_tuple(value, where: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ManifestError(f"{where}: {key!r} must be a list of non-empty strings")
    return tuple(v.strip() for v in value)


def load_manifest(name_or_path: str | Path = DEFAULT_MANIFEST) -> Manifest:
    """Load a shipped manifest by name or a YAML file by path, and validate its structure."""
    try:
        path = resolve("manifests", name_or_path)
    except FileNotFoundError as err:
        raise ManifestError(str(err)) from None
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ManifestError(f"{path}: cannot read manifest YAML: {err}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("categories"), list):
        raise ManifestError(f"{path}: a manifest is a mapping with a 'categories' list")
    cats: list[Category] = []
    seen: set[str] = set()
    owner: dict[tuple[str, str], str] = {}
    for i, entry in enumerate(doc["categories"]):
        where = f"{path}: category #{i}"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ManifestError(f"{where}: each entry needs a string 'name'")
        name = entry["name"].strip()
        where = f"{path}: category {name!r}"
        unknown = set(entry) - {"name", *_SOURCES, "notes"}
        if unknown:
            raise ManifestError(f"{where}: unknown keys {sorted(unknown)}")
        if name in seen:
            raise ManifestError(f"{where}: duplicate category name")
        seen.add(name)
        fields = {k: _as_tuple(entry.get(k), where, k) for k in _SOURCES}
        if not fields["vggsound"]:
            raise ManifestError(f"{where}: needs at least one vggsound label")
        if not (fields["lvis"] or fields["openimages"]):
            raise ManifestError(f"{where}: needs at least one lvis or openimages label")
        for src, labels in fields.items():
            for label in labels:
                prev = owner.setdefault((src, label), name)
                if prev != name:
                    raise ManifestError(
                        f"{where}: {src} label {label!r} is already mapped to {prev!r}"
                    )
        cats.append(Category(name=name, category_id=i, **fields))
    if not cats:
        raise ManifestError(f"{path}: manifest has no categories")
    return Manifest(
        name=str(doc.get("name") or path.stem),
        categories=tuple(cats),
        path=path,
        description=str(doc.get("description") or ""),
    )


def select_categories(spec: str | int | None, manifest: str | Path | None = None) -> Manifest:
    """Resolve ``--categories``: an integer N (first N), a comma list of names, or a manifest path.

    Unknown names are an error listing the closest valid names.
    """
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return load_manifest(manifest or DEFAULT_MANIFEST)
    text = str(spec).strip()
    if text.isdigit():
        base = load_manifest(manifest or DEFAULT_MANIFEST)
        n = int(text)
        if not 1 <= n <= len(base):
            raise ManifestError(
                f"--categories {n}: manifest {base.name!r} has {len(base)} categories"
            )
        return Manifest(base.name, base.categories[:n], base.path, base.description)
    if text.endswith((".yaml", ".yml")) or Path(text).is_file():
        return load_manifest(text)
    if "," not in text and text in _shipped_names():
        return load_manifest(text)
    base = load_manifest(manifest or DEFAULT_MANIFEST)
    wanted = [t.strip() for t in text.split(",") if t.strip()]
    valid = base.names
    bad = [w for w in wanted if w not in valid]
    if bad:
        hints = []
        for w in bad:
            close = difflib.get_close_matches(w, valid, n=3, cutoff=0.5)
            hints.append(f"{w!r} (closest: {', '.join(close) if close else 'none'})")
        raise ManifestError(
            f"unknown categories in manifest {base.name!r}: {'; '.join(hints)}. "
            f"Valid names: {', '.join(valid)}"
        )
    return base.subset(wanted)


def _shipped_names() -> list[str]:
    try:
        return sorted(p.stem for p in data_dir("manifests").glob("*.yaml"))
    except FileNotFoundError:
        return []
