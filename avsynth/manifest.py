"""Category manifests: load, validate and select.

A manifest is YAML with one entry per category::

    name: avs-synthetic-46
    description: ...
    categories:
      - name: dog
        lvis: [dog]                     # LVIS v1 category names
        openimages: [Dog]               # Open Images V7 boxable display names (or MIDs)
        vggsound: [dog barking, ...]    # VGGSound labels
        notes: ...                      # optional, free text
        avsbench: dog                   # optional: the AVSBench-semantic (AVSS) class, for
                                        #   `avsynth build --semantic --semantic-classes avsbench`

Every category needs at least one ``vggsound`` label and at least one ``lvis`` or ``openimages``
name. A label of a source belongs to at most one category (a VGGSound clip, an LVIS or an Open
Images class must not feed two categories). Shipped manifests: ``avs-synthetic-46`` (the default)
and ``full`` (every category that maps honestly; its first 46 are ``avs-synthetic-46``).

``category_id`` of a category is its 0-based position in the manifest *file*, so ids stay stable
whichever subset ``--categories`` selects.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from avsynth.errors import ManifestError
from avsynth.resources import data_dir, resolve

DEFAULT_MANIFEST = "avs-synthetic-46"
_SOURCES = ("lvis", "openimages", "vggsound")
_CATEGORY_KEYS = frozenset({"name", *_SOURCES, "notes", "avsbench"})
_TOP_KEYS = frozenset({"name", "description", "categories", "notes"})
_INT = re.compile(r"^[+-]?\d+$")


@dataclass(frozen=True)
class Category:
    name: str
    category_id: int
    lvis: tuple[str, ...] = ()
    openimages: tuple[str, ...] = ()
    vggsound: tuple[str, ...] = ()
    notes: str = ""
    avsbench: str = ""  # the AVSBench-semantic class name, when AVSBench has the category


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

    def __contains__(self, name: object) -> bool:
        return any(c.name == name for c in self.categories)

    def by_source_label(self, source: str) -> dict[str, Category]:
        """Map each label of ``source`` ("lvis" | "openimages" | "vggsound") to its category."""
        if source not in _SOURCES:
            raise ValueError(f"unknown source {source!r}")
        return {label: c for c in self.categories for label in getattr(c, source)}

    def subset(self, names: list[str]) -> "Manifest":
        """The categories named in ``names``, in manifest order (ids unchanged)."""
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
    out = tuple(v.strip() for v in value)
    dupes = sorted({v for v in out if out.count(v) > 1})
    if dupes:
        raise ManifestError(f"{where}: {key!r} lists {', '.join(map(repr, dupes))} twice")
    return out


def _check_name(name: object, where: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ManifestError(f"{where}: each entry needs a non-empty string 'name'")
    name = name.strip()
    if "," in name or _INT.match(name):
        raise ManifestError(
            f"{where}: category name {name!r} may not contain ',' or be a number "
            "(--categories reads those as a list or a count)"
        )
    return name


def load_manifest(name_or_path: str | Path = DEFAULT_MANIFEST) -> Manifest:
    """Load a shipped manifest by name or a YAML file by path, and validate its structure.

    Every problem raises :class:`ManifestError` with a message that names the file.
    """
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
    unknown_top = set(doc) - _TOP_KEYS
    if unknown_top:
        raise ManifestError(
            f"{path}: unknown top-level keys {sorted(map(str, unknown_top))} "
            f"(allowed: {', '.join(sorted(_TOP_KEYS))})"
        )
    cats: list[Category] = []
    seen: set[str] = set()
    owner: dict[tuple[str, str], str] = {}
    for i, entry in enumerate(doc["categories"]):
        where = f"{path}: category #{i}"
        if not isinstance(entry, dict):
            raise ManifestError(f"{where}: each entry is a mapping with 'name', 'vggsound', ...")
        name = _check_name(entry.get("name"), where)
        where = f"{path}: category {name!r}"
        unknown = set(entry) - _CATEGORY_KEYS
        if unknown:
            raise ManifestError(
                f"{where}: unknown keys {sorted(map(str, unknown))} "
                f"(allowed: {', '.join(sorted(_CATEGORY_KEYS))})"
            )
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
        notes = entry.get("notes")
        if notes is not None and not isinstance(notes, str):
            raise ManifestError(f"{where}: 'notes' must be a string")
        avsbench = entry.get("avsbench")
        if avsbench is not None and (not isinstance(avsbench, str) or not avsbench.strip()):
            raise ManifestError(f"{where}: 'avsbench' must be a non-empty string (an AVSS class name)")
        cats.append(Category(name=name, category_id=i, notes=(notes or "").strip(),
                             avsbench=(avsbench or "").strip(), **fields))
    if not cats:
        raise ManifestError(f"{path}: manifest has no categories")
    return Manifest(
        name=str(doc.get("name") or path.stem),
        categories=tuple(cats),
        path=path,
        description=str(doc.get("description") or "").strip(),
    )


def shipped_manifest_names() -> list[str]:
    """Names of the manifests shipped with avsynth (file stems), sorted."""
    try:
        return sorted(p.stem for p in data_dir("manifests").glob("*.yaml"))
    except FileNotFoundError:
        return []


def shipped_manifests() -> list[Manifest]:
    """Every shipped manifest, loaded and validated, sorted by name."""
    return [load_manifest(n) for n in shipped_manifest_names()]


def select_categories(spec: str | int | Path | None, manifest: str | Path | None = None) -> Manifest:
    """Resolve ``--categories``: an integer N (first N), a comma list of names, a shipped manifest
    name, or a manifest path. ``manifest`` is the base for N and for names (default
    ``avs-synthetic-46``); ``MANIFEST:N`` or ``MANIFEST:a,b`` picks from another shipped manifest
    (e.g. ``full:owl,parrot``).

    Unknown names are an error listing the closest valid names.
    """
    if isinstance(spec, bool):
        raise ManifestError(f"--categories: expected a number, names or a manifest, got {spec!r}")
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return load_manifest(manifest or DEFAULT_MANIFEST)
    text = str(spec).strip()
    if isinstance(spec, int) or _INT.match(text):
        base = load_manifest(manifest or DEFAULT_MANIFEST)
        n = int(text)
        if not 1 <= n <= len(base):
            raise ManifestError(
                f"--categories {n}: manifest {base.name!r} has {len(base)} categories "
                f"(choose 1..{len(base)})"
            )
        return Manifest(base.name, base.categories[:n], base.path, base.description)
    if isinstance(spec, Path) or text.endswith((".yaml", ".yml")) or _is_file(text):
        return load_manifest(text)
    shipped = shipped_manifest_names()
    if "," not in text and text in shipped:
        return load_manifest(text)
    prefix, sep, rest = text.partition(":")
    if sep and prefix.strip() in shipped:  # "full:owl,parrot" or "full:60"
        return select_categories(rest, manifest=prefix.strip())
    base = load_manifest(manifest or DEFAULT_MANIFEST)
    wanted = [t.strip() for t in text.split(",") if t.strip()]
    if not wanted:
        raise ManifestError(f"--categories {text!r}: no category names given")
    valid = base.names
    bad = [w for w in wanted if w not in valid]
    if bad:
        hints = []
        for w in bad:
            close = difflib.get_close_matches(w, valid, n=3, cutoff=0.5)
            hint = f"{w!r} (closest: {', '.join(close) if close else 'none'}"
            elsewhere = _shipped_with(w, exclude=base.path)
            if elsewhere:
                hint += f"; it is in {', '.join(elsewhere)}: select it as {elsewhere[0]}:{w}"
            hints.append(hint + ")")
        raise ManifestError(
            f"unknown categories in manifest {base.name!r}: {'; '.join(hints)}. "
            f"Valid names: {', '.join(valid)}"
        )
    return base.subset(wanted)


def _shipped_with(name: str, exclude: Path | None) -> list[str]:
    """Shipped manifests (other than ``exclude``) that have a category ``name``."""
    out = []
    for stem in shipped_manifest_names():
        try:
            m = load_manifest(stem)
        except ManifestError:
            continue
        if m.path != exclude and name in m:
            out.append(m.name)
    return out


def _is_file(text: str) -> bool:
    """Whether ``text`` names an existing file (a long comma list is not a path: no OSError)."""
    if "," in text:
        return False
    try:
        return Path(text).is_file()
    except OSError:
        return False
