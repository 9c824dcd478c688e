"""avsynth: annotation-free audio-visual segmentation data and models."""

__version__ = "0.1.0"
