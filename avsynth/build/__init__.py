"""Building shard directories: sources → plan → rows → shards, card and build record.

``sources`` loads the inputs of a build, ``rows`` turns a shard's slice of the plan into rows (a
pure function), ``runner`` runs the plan on an engine with resume and progress, ``importer``
converts the official AVS-Synthetic release through the same runner.
"""

from avsynth.build.rows import ShardResult, WorkerOptions
from avsynth.build.runner import BuildOptions, BuildResult, build
from avsynth.build.sources import LoadedSources, SourcePaths, file_fingerprint, load_sources

__all__ = [
    "BuildOptions", "BuildResult", "LoadedSources", "ShardResult", "SourcePaths", "WorkerOptions",
    "build", "file_fingerprint", "load_sources",
]
