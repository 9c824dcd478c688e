"""The ``avsynth`` command line. Thin: parse options, call the library, print.

Each command's docstring is its manual page (``avsynth COMMAND --help``).
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from avsynth import __version__
from avsynth.errors import AvsynthError

app = typer.Typer(
    name="avsynth",
    help="Annotation-free audio-visual segmentation: build, publish, train and benchmark.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)


def friendly(fn):
    """Turn an AvsynthError into a one-paragraph message and exit code 2 (never a traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except AvsynthError as err:
            console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
            raise typer.Exit(2)

    return wrapper


def _version(value: bool) -> None:
    if value:
        typer.echo(f"avsynth {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """avsynth builds (image, audio, mask) triplets from LVIS / Open Images + VGGSound, publishes
    them to the Hugging Face Hub, and trains and benchmarks SAMA-AVS, AP-SAM and GAVS on AVSBench."""


# ---- section: demo (sources/demo.py) -------------------------------------------------------

# ---- section: manifests (manifest.py) ------------------------------------------------------

# ---- section: build / verify / stats / import-avs-synthetic (build.py, shards/) ------------

# ---- section: publish / view (hub.py, fiftyone_app.py) --------------------------------------

# ---- section: models (modeling/) ------------------------------------------------------------

# ---- section: train (training/) -------------------------------------------------------------

# ---- section: bench (evaluation/) -----------------------------------------------------------


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
