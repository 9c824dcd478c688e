"""The demo-corpus generator: procedural objects and sounds written in the real LVIS / Open Images /
VGGSound / AVSBench / AVS-Synthetic formats.

``procedural`` draws scenes and sounds; ``generator`` lays a corpus out (:func:`make_layout`),
renders its jobs on :mod:`avsynth.engines` and writes the index files (:func:`write_demo`);
:func:`ensure_demo` keeps one generated corpus per (seed, scale, manifest) in the cache.
"""

from avsynth.demo.generator import (
    AVSS_CLASSES,
    SCALES,
    DemoCorpus,
    DemoError,
    DemoLayout,
    DemoSize,
    avss_class_for,
    cache_name,
    directory_bytes,
    ensure_demo,
    lvis_category_table,
    make_layout,
    resolve_size,
    write_demo,
)

__all__ = [
    "AVSS_CLASSES", "SCALES", "DemoCorpus", "DemoError", "DemoLayout", "DemoSize", "avss_class_for",
    "cache_name", "directory_bytes", "ensure_demo", "lvis_category_table", "make_layout",
    "resolve_size", "write_demo",
]
