"""The demo-corpus generator: procedural objects and sounds written in the real LVIS / Open Images /
VGGSound / AVSBench / AVS-Synthetic formats.

``procedural`` draws scenes and sounds; ``layout`` plans a corpus from a seed (:func:`make_layout`);
``render`` draws and writes its jobs' media on :mod:`avsynth.engines`; ``formats`` writes the index
files; ``corpus`` ties them together (:func:`write_demo`) and :func:`ensure_demo` keeps one
generated corpus per (seed, scale, manifest) in the cache.
"""

from avsynth.demo.corpus import DemoCorpus, cache_name, directory_bytes, ensure_demo, write_demo
from avsynth.demo.layout import (
    AVSS_CLASSES,
    SCALES,
    DemoError,
    DemoLayout,
    DemoSize,
    avss_class_for,
    lvis_category_table,
    make_layout,
    resolve_size,
)

__all__ = [
    "AVSS_CLASSES", "SCALES", "DemoCorpus", "DemoError", "DemoLayout", "DemoSize", "avss_class_for",
    "cache_name", "directory_bytes", "ensure_demo", "lvis_category_table", "make_layout",
    "resolve_size", "write_demo",
]
