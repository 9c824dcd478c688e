"""The ``avsynth`` command line. Thin: parse options, call the library, print.

Each command's docstring is its manual page (``avsynth COMMAND --help``).
"""

from __future__ import annotations

import contextlib
import functools
import math
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
    """Turn an AvsynthError or OSError into a one-paragraph message and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except AvsynthError as err:
            console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
            raise typer.Exit(2)
        except OSError as err:  # the environment: unwritable folder, full disk, missing file
            where = f"{err.filename}: " if err.filename else ""
            console.print(f"[bold red]error:[/] {where}{err.strerror or err}",
                          highlight=False, soft_wrap=True)
            raise typer.Exit(2)

    return wrapper


def _finite(value: float | None) -> float | None:
    """Option callback: a float option must be a finite number (Click's ranges let NaN through)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value


def _positive(value: float | None) -> float | None:
    """Option callback: a finite number above zero."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise typer.BadParameter(f"{value} is not a number above 0")
    return value


def _not_blank(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise typer.BadParameter("must not be empty (give N, names, or a manifest)")
    return value


def _version(value: bool) -> None:
    if value:
        typer.echo(f"avsynth {__version__}")
        raise typer.Exit()


def _alias(value, old_value, old_name: str):
    """``value``, or the value given under a hidden old spelling of the flag (``old_name``, still
    accepted silently: scripts keep working and stderr keeps its one-line error contract)."""
    return old_value if old_value is not None else value


# Flag names mean one thing in every command: --num-proc = processes preparing data (as in
# `datasets`' num_proc; 0 = all cores), --num-workers = DataLoader worker processes (as in torch's
# num_workers; 0 = load in the main process), --device = cpu | cuda[:N], --split validation (val
# accepted). Old spellings (--workers/-j, train --cpu, bench --split val) stay as hidden aliases.
NUM_PROC_HELP = "Processes preparing data, as datasets' num_proc (0 = all cores); output is identical."


@contextlib.contextmanager
def _progress_bars(enabled: bool = True):
    """Rich progress bars on stderr, one per phase; yields the ``progress(phase, done, total)``
    callback the library functions take (None when disabled)."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=False) as bar:
        tasks: dict[str, int] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        yield progress


@app.callback()
def main(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """avsynth builds (image, audio, mask) triplets from LVIS / Open Images + VGGSound, publishes
    them to the Hugging Face Hub, and trains and benchmarks SAMA-AVS, AP-SAM and GAVS on AVSBench."""


# ---- section: build / verify / stats / import-avs-synthetic (build.py, shards/) ------------


def _print_build_summary(result, seconds: float) -> None:
    from rich.table import Table

    rec = result.record
    table = Table(title=f"{result.out}  ({seconds:.1f} s)")
    table.add_column("split")
    table.add_column("rows", justify="right")
    table.add_column("shards", justify="right")
    table.add_column("categories", justify="right")
    table.add_column("requested", justify="right")
    for split, info in rec.splits.items():
        table.add_row(split, f"{info['rows']:,}", str(info["num_shards"]),
                      str(len(info["per_category"])), f"{rec.requested[split]:,}")
    out = Console()
    out.print(table)
    short = rec.shortfall
    if short:
        worst = sorted(
            ((s, c, n) for s, d in short.items() for c, n in d.items()), key=lambda t: -t[2]
        )[:5]
        total = sum(n for _, _, n in ((s, c, n) for s, d in short.items() for c, n in d.items()))
        out.print(
            f"[yellow]shortfall:[/] {total:,} rows fewer than requested (sources too small); "
            "largest: " + ", ".join(f"{c} ({s}) -{n}" for s, c, n in worst)
            + ". Per category in manifest.json → shortfall."
        )
    if rec.skipped:
        out.print("[yellow]skipped inputs:[/] " + ", ".join(
            f"{r}: {v['count']:,}" for r, v in rec.skipped.items()))
    out.print(f"shards written: {result.shards_written}, kept from before: {result.shards_kept}")


@contextlib.contextmanager
def _interruptible(out: Path):
    """Ctrl-C or SIGTERM during a build: workers stopped, one line, exit 130 (143 for SIGTERM)."""
    from avsynth.engines.lifetime import Terminated, sigterm_as_interrupt

    try:
        with sigterm_as_interrupt():
            yield
    except KeyboardInterrupt as err:
        console.print(f"[bold red]interrupted:[/] {out}: finished shards are kept; rerun the same "
                      "command with --resume to continue", highlight=False, soft_wrap=True)
        raise typer.Exit(143 if isinstance(err, Terminated) else 130) from None


@app.command("build", rich_help_panel="Data")
@friendly
def build(
    categories: str = typer.Option(
        "46", "--categories", "-c", callback=_not_blank,
        help="An integer N (first N of the manifest), a comma list of names, or a manifest path.",
    ),
    out: Path = typer.Option(Path("avsynth-shards"), "--out", "-o", help="Output directory."),
    lvis_json: list[Path] = typer.Option(
        [], "--lvis-json", help="LVIS v1 annotation JSON (repeat for train and val)."
    ),
    coco_root: Optional[Path] = typer.Option(
        None, "--coco-root", help="Folder holding COCO train2017/ and val2017/ (LVIS images)."
    ),
    openimages_root: Optional[Path] = typer.Option(
        None, "--openimages-root", help="Open Images V7 segmentation root (CSVs, masks, images)."
    ),
    vggsound_csv: Optional[Path] = typer.Option(
        None, "--vggsound-csv", help="vggsound.csv (no header: ytid,start_seconds,label,split)."
    ),
    vggsound_audio: Optional[Path] = typer.Option(
        None, "--vggsound-audio", help="Folder of {ytid}_{start:06d}.wav/.flac clips."
    ),
    num_train: int = typer.Option(52_609, "--num-train", min=0, help="Train rows (AVS-Synthetic: 52,609)."),
    num_val: int = typer.Option(5_000, "--num-val", min=0, help="Validation rows (AVS-Synthetic: 5,000)."),
    num_test: int = typer.Option(5_000, "--num-test", min=0, help="Test rows (AVS-Synthetic: 5,000)."),
    seed: int = typer.Option(0, "--seed", help="Seed of every choice the plan makes."),
    num_proc: int = typer.Option(0, "--num-proc", min=0, help=NUM_PROC_HELP),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", min=0, hidden=True),
    engine: str = typer.Option("local", "--engine", help="local (process pool) or ray."),
    ray_address: Optional[str] = typer.Option(
        None, "--ray-address", help="Ray cluster address (default: start a local instance)."
    ),
    clip_seconds: float = typer.Option(
        3.0, "--clip-seconds", max=10.0, callback=_positive, help="Audio window per row (s)."),
    audio_format: str = typer.Option("flac", "--audio-format", help="flac or wav."),
    mask_mode: str = typer.Option(
        "instance", "--mask-mode", help="instance (one row per instance) or category (union)."
    ),
    min_mask_area: float = typer.Option(
        0.0, "--min-mask-area", min=0.0, max=1.0, callback=_finite, help="Drop masks smaller than this fraction of the image."
    ),
    max_per_category: Optional[int] = typer.Option(
        None, "--max-per-category", min=1, help="Cap rows per category in each split."
    ),
    rows_per_shard: int = typer.Option(1000, "--rows-per-shard", min=1, help="Rows per Parquet file."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted build in --out."),
    pad_short_audio: bool = typer.Option(
        False, "--pad-short-audio", help="Keep clips shorter than --clip-seconds, zero-padded "
        "(listed in manifest.json → audio_checks.padded_rows); default: a counted skip."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    sources_per_row: str = typer.Option(
        "1", "--sources-per-row", metavar="K[,K...]",
        help="K sounding sources per row: images with instances of >= K categories, K seeded "
        "categories, one clip each, mixed (RMS-normalised, seeded gains); mask = their union. "
        "1 = single-source rows (unchanged output). A list (1,2 or with weights 1:3,2:1) gives "
        "each image a seeded K among those it can fill, weighted: single-source and mixed rows "
        "in one build.",
    ),
    mix_keep_silent: bool = typer.Option(
        False, "--mix-keep-silent",
        help="Mixed rows (K > 1) only on images with at least K + 1 usable categories, so one manifest "
        "object stays silent: 'segment every object' no longer solves a mix. Images short of it are "
        "counted (with a K list they draw among the K they can fill).",
    ),
    negatives: float = typer.Option(
        0.0, "--negatives", min=0.0, max=0.9, callback=_finite,
        help="Fraction of each split made of off-screen rows: a clip of a category verified ABSENT "
        "from the image (LVIS neg_category_ids; Open Images human-verified negatives), empty mask.",
    ),
    openimages_image_labels: list[Path] = typer.Option(
        [], "--openimages-image-labels",
        help="Open Images {split}-annotations-human-imagelabels[-boxable].csv (repeatable): "
        "verified negatives for --negatives.",
    ),
    semantic: bool = typer.Option(
        False, "--semantic", help="Add a semantic_mask column (8-bit class ids, 0 = background)."
    ),
    semantic_classes: str = typer.Option(
        "manifest", "--semantic-classes",
        help="Class space of --semantic: manifest (category_id + 1) or avsbench (the 71 AVSS classes, "
        "via each manifest entry's avsbench field).",
    ),
) -> None:
    """Build Parquet shards of (image, audio, mask) triplets from LVIS / Open Images + VGGSound.

    With no source roots it builds from the bundled demo corpus (generated into the cache on first
    use) and says so. The output is byte-identical for the same inputs and seed, whatever
    --num-proc or --engine; --resume completes an interrupted build without rewriting finished
    shards.
    """
    import os
    import time

    from avsynth.build import BuildOptions, SourcePaths, build as run_build

    opts = BuildOptions(
        out=out,
        categories=categories,
        sources=SourcePaths(
            lvis_json=list(lvis_json), coco_root=coco_root, openimages_root=openimages_root,
            vggsound_csv=vggsound_csv, vggsound_audio=vggsound_audio,
            openimages_image_labels=list(openimages_image_labels),
        ),
        sizes={"train": num_train, "validation": num_val, "test": num_test},
        seed=seed,
        workers=_alias(num_proc, workers, "--workers") or os.cpu_count() or 1,
        engine=engine,
        ray_address=ray_address,
        clip_seconds=clip_seconds,
        audio_format=audio_format,
        mask_mode=mask_mode,
        min_mask_area=min_mask_area,
        max_per_category=max_per_category,
        rows_per_shard=rows_per_shard,
        resume=resume,
        pad_short_audio=pad_short_audio,
        sources_per_row=sources_per_row,
        mix_keep_silent=mix_keep_silent,
        negatives=negatives,
        semantic=semantic,
        semantic_classes=semantic_classes,
    )
    t0 = time.perf_counter()
    with _interruptible(out):
        result = run_build(opts, console_print=console.print, progress=not quiet)
    _print_build_summary(result, time.perf_counter() - t0)


@app.command("verify", rich_help_panel="Data")
@friendly
def verify_cmd(
    directory: Path = typer.Argument(..., help="Shard directory (holds manifest.json and data/)."),
    sample: Optional[int] = typer.Option(
        None, "--sample", min=0, help="Decode only N seeded rows (default: decode every row)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the --sample draw."),
) -> None:
    """Check a shard directory against its manifest.json: files, sizes, sha256, row counts,
    schema, splits, and that images, masks and audio decode (mask size = image size).
    Exit code 0 when everything checks out, 1 when problems were found (each is listed)."""
    from avsynth.shards.verify import verify_dir

    with _progress_bars() as progress:
        report = verify_dir(directory, sample=sample, seed=seed, progress=progress)
    typer.echo(report.summary())
    if not report.ok:
        raise typer.Exit(1)


@app.command("import-avs-synthetic", rich_help_panel="Data")
@friendly
def import_avs_synthetic(
    root: Path = typer.Argument(..., help="The unpacked AVS-Synthetic release (annotations.csv, "
                                "images/, masks/, audios/, category_for_vggsound_audios.pkl)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output shard directory."),
    seed: int = typer.Option(0, "--seed", help="Seed for train audio drawn from the pool."),
    clip_seconds: float = typer.Option(
        0.0, "--clip-seconds", min=0.0, max=10.0, callback=_finite,
        help="Cut each clip to this window (0 = keep clips whole)."),
    audio_format: str = typer.Option("flac", "--audio-format", help="flac or wav."),
    rows_per_shard: int = typer.Option(1000, "--rows-per-shard", min=1, help="Rows per Parquet file."),
    num_proc: int = typer.Option(0, "--num-proc", min=0, help=NUM_PROC_HELP),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", min=0, hidden=True),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted import."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Convert the official AVS-Synthetic release into avsynth shards.

    Keeps the release's train / validation / test assignment and its fixed validation/test audio;
    the class audio pool becomes the train audio pool for re-pairing.
    """
    import os
    import time

    from avsynth.build.importer import ImportOptions, import_avs_synthetic as run_import

    t0 = time.perf_counter()
    with _interruptible(out):
        result = run_import(
            ImportOptions(root=root, out=out, seed=seed, clip_seconds=clip_seconds or None,
                          audio_format=audio_format, rows_per_shard=rows_per_shard,
                          workers=_alias(num_proc, workers, "--workers") or os.cpu_count() or 1,
                          resume=resume),
            progress=not quiet,
        )
    _print_build_summary(result, time.perf_counter() - t0)


# ---- section: publish / view (hub.py, fiftyone_app.py) --------------------------------------


@app.command("stats", rich_help_panel="Data")
@friendly
def stats_cmd(
    directory: Path = typer.Argument(..., help="Shard directory (holds manifest.json and data/)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default: DIR/stats)."),
    sheet_size: int = typer.Option(
        24, "--sheet-size", min=1, help="Tiles per contact-sheet page (every category is shown; more pages if needed)."),
    audio_limit: Optional[int] = typer.Option(
        None, "--audio-limit", min=1, help="Decode the audio of at most N seeded rows (default: all)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the contact-sheet and --audio-limit draws."),
) -> None:
    """Counts per split x category, mask-area and audio-level (RMS dBFS) histograms and a contact
    sheet of images with mask overlays: stats.json and PNGs in DIR/stats (or --out)."""
    from rich.console import Console as _Console

    from avsynth.shards.stats import counts_table, write_stats

    with _progress_bars() as progress:
        result = write_stats(directory, out, sheet_size=sheet_size, audio_limit=audio_limit, seed=seed,
                             progress=progress)
    _Console().print(counts_table(result.stats))
    for kind, path in result.files.items():
        typer.echo(f"{kind}: {path}")


@app.command("publish", rich_help_panel="Share")
@friendly
def publish_cmd(
    directory: Path = typer.Argument(..., help="Shard directory to publish."),
    repo_id: str = typer.Option(..., "--repo-id", help="Dataset repository, ORG/NAME."),
    private: bool = typer.Option(False, "--private", help="Create the repository as private."),
    revision: Optional[str] = typer.Option(None, "--revision", help="Branch to commit to (created if missing)."),
    token: Optional[str] = typer.Option(
        None, "--token", help="Hub token (default: HF_TOKEN, else the cached `hf auth login`). Never printed."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print which files would go where, and their sizes; change nothing."),
    verify_sample: Optional[int] = typer.Option(
        None, "--verify-sample", min=1, help="Verify by decoding N seeded rows (default: every row)."
    ),
) -> None:
    """Verify DIR, regenerate its dataset card (with example overlays), and upload the files
    avsynth manages (README.md, manifest.json, data/, audio_pool/, assets/) to the Hugging Face
    Hub with a resumable multi-commit upload. Remote files avsynth does not manage are never
    deleted. Refuses to publish a build that fails `avsynth verify`."""
    from avsynth.hub import format_plan, publish

    with _progress_bars() as progress:
        result = publish(
            directory, repo_id, private=private, revision=revision, token=token,
            dry_run=dry_run, verify_sample=verify_sample, progress=progress,
        )  # fmt: skip
    if dry_run:
        typer.echo("dry run: nothing was written or uploaded")
        typer.echo(format_plan(result.items, repo_id, revision))
        return
    typer.echo(f"uploaded {len(result.items)} files ({sum(i.size for i in result.items):,} bytes)")
    typer.echo(result.url)


@app.command("view", rich_help_panel="Share")
@friendly
def view_cmd(
    directory: Path = typer.Argument(..., help="Shard directory to view."),
    split: str = typer.Option("train", "--split", help="train, validation or test."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N rows of the split."),
    port: int = typer.Option(5151, "--port", help="Port of the FiftyOne App."),
    name: Optional[str] = typer.Option(None, "--name", help="FiftyOne dataset name (default: avsynth-DIR-SPLIT)."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Media cache, shared by every --limit of the split (default: ~/.cache/avsynth/fiftyone/avsynth-DIR-SPLIT)."),
    no_launch: bool = typer.Option(False, "--no-launch", help="Build the dataset but do not open the App."),
) -> None:
    """Open a split in FiftyOne: a persistent dataset with the image, the mask as a segmentation
    (shown, in one vivid colour), the category, the audio file and the source ids. An "Audio
    (avsynth)" panel beside the grid plays the clip of the selected sample (tick its box; else the
    first sample). The App stays up until Ctrl-C, then its server is stopped. A second call reuses the dataset and its
    media cache unless the shards changed. Needs the optional extra: pip install 'avsynth\\[fiftyone]'."""
    from avsynth.fiftyone_app import launch, open_view

    with _progress_bars() as progress:
        result = open_view(directory, split=split, limit=limit, name=name, cache_dir=cache_dir,
                           progress=progress)
    state = "reused" if result.reused else "built"
    typer.echo(f"{state} FiftyOne dataset {result.dataset.name!r}: {len(result.dataset)} samples, media in {result.cache_dir}"
               + ("" if result.reused else f" ({result.media_written} files written)"))
    if not no_launch:
        typer.echo(f"FiftyOne App on http://localhost:{port} (Ctrl-C to stop)")
        launch(result.dataset, port=port)


# ---- section: train (training/) -------------------------------------------------------------


@app.command("train", rich_help_panel="Train & evaluate")
@friendly
def train_cmd(
    model: Optional[str] = typer.Option(
        None, "--model", "-m",
        help="Model family: sama-avs, ap-sam, gavs, aavs or stepping-stones (picks the paper config)."
    ),
    config: Optional[str] = typer.Option(
        None, "--config", help="Model config: a models/*.yaml name (e.g. sama-avs-tiny) or a YAML path."
    ),
    data: Optional[str] = typer.Option(
        None, "--data", help="Shard directory or hf://datasets/ORG/NAME (pre-training)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Run directory (checkpoints, logs)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Epochs (default: the config's recipe)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Per-process batch size."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate (cosine to --lr-min)."),
    lr_min: Optional[float] = typer.Option(None, "--lr-min", help="Learning-rate floor of the cosine."),
    grad_accum: Optional[int] = typer.Option(None, "--grad-accum", help="Micro-batches per optimizer step."),
    init: Optional[Path] = typer.Option(None, "--init", help="Start from this model checkpoint (best.pt)."),
    unfreeze: list[str] = typer.Option(
        [], "--unfreeze", help="Also train parameters whose name starts with this (repeatable; default: "
        "the config's train.unfreeze), e.g. sam.image_encoder. for a tiny random SAM."
    ),
    sam_checkpoint: Optional[Path] = typer.Option(None, "--sam-checkpoint", help="Local sam_vit_*.pth."),
    vggish_checkpoint: Optional[Path] = typer.Option(None, "--vggish-checkpoint", help="Local VGGish .pth."),
    mask2former_checkpoint: Optional[Path] = typer.Option(
        None, "--mask2former-checkpoint",
        help="AAVS / Stepping Stones: local Mask2Former directory (e.g. mask2former-swin-base-ade-semantic)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last epoch."),
    seed: int = typer.Option(0, "--seed", help="Seed of data order and audio re-pairing."),
    num_workers: int = typer.Option(
        2, "--num-workers", min=0, help="DataLoader worker processes per rank, as torch's num_workers (0 = none)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", min=0, hidden=True),
    val_split: str = typer.Option("validation", "--val-split", help="Shard split used for validation."),
    f_group: str = typer.Option("batch4", "--f-group", help="F-score grouping: batch4 (official) or video."),
    audio: str = typer.Option("real", "--audio", help="real, or zero / shuffle for an audio-blind control."),
    device: Optional[str] = typer.Option(
        None, "--device", help="cpu or cuda (default: the GPU if any; pick GPUs with CUDA_VISIBLE_DEVICES)."),
    cpu: bool = typer.Option(False, "--cpu", hidden=True),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads per process."),
    audio_norm: Optional[str] = typer.Option(
        None, "--audio-norm", help="none or fit: standardise the VGGish vectors with the train split's "
        "per-dimension mean / std (for a random tiny VGGish; default: the config's model.audio_norm)."),
    stop_after: Optional[int] = typer.Option(
        None, "--stop-after-epochs", help="End this invocation after N epochs (resume later)."
    ),
    avsbench: Optional[Path] = typer.Option(
        None, "--avsbench", help="Fine-tune on AVSBench at this root instead of shards."
    ),
    subset: str = typer.Option("s4", "--subset", help="AVSBench subset: s4 or ms3."),
    fraction: Optional[float] = typer.Option(None, "--fraction", help="AVSBench: share of train videos per class."),
    k_shot: Optional[int] = typer.Option(None, "--k-shot", help="AVSBench: k train videos per class."),
    uids_file: Optional[Path] = typer.Option(
        None, "--uids-file", help="AVSBench: train on these videos (AVS-V3 csv or one uid per line)."
    ),
    val_uids_file: Optional[Path] = typer.Option(
        None, "--val-uids-file", help="AVSBench: validate on these videos (default: the val split)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    stage1_masks: Optional[Path] = typer.Option(
        None, "--stage1-masks", help="Stepping Stones (--subset avss): the stage-1 mask PNGs (MASKS/<label>/<uid>/<i>.png)."
    ),
    stage1_checkpoint: Optional[Path] = typer.Option(
        None, "--stage1-checkpoint", help="Stepping Stones: predict the missing stage-1 masks with this checkpoint."
    ),
) -> None:
    """Train SAMA-AVS / AP-SAM / GAVS / AAVS on shards, or fine-tune on AVSBench (--avsbench).

    A 71-label AVSS model (stepping-stones-*, or an AAVS config with labels: avss) trains with
    --avsbench ROOT --subset avss one video per step (avsynth.training.avss); Stepping Stones reads
    the stage-1 PNGs of --stage1-masks (written once by --stage1-checkpoint). A one-stage AAVS with
    labels: avss (e.g. aavs-avss71-tiny) also pre-trains on --data shards built with --semantic
    --semantic-classes avsbench, then fine-tunes with --avsbench ROOT --subset avss --init RUN/best.pt.

    Single process: `avsynth train ...`; several GPUs or nodes: `accelerate launch --multi_gpu
    --num_processes N -m avsynth train ...` or `torchrun --nproc_per_node N -m avsynth train ...`
    (add --device cpu for gloo on CPUs). Writes RUN/last/ every epoch,
    RUN/best.pt (best validation mIoU over all ranks), RUN/log.jsonl and RUN/tensorboard/."""
    from avsynth.sources.avsbench import AVSBenchSource, read_uids_file
    from avsynth.training.trainer import TrainConfig, train

    if cpu:
        device = _alias(device, "cpu", "--cpu")
    if device not in (None, "cpu", "cuda"):
        raise typer.BadParameter("train takes --device cpu or cuda (choose GPUs with CUDA_VISIBLE_DEVICES "
                                 "or `accelerate launch`)", param_hint="--device")
    workers = _alias(num_workers, workers, "--workers")
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    from avsynth.training.avss import is_avss_config

    if (stage1_masks is not None or (config or "").startswith("stepping-stones") or model == "stepping-stones"
            or (config is not None and is_avss_config(config))):
        from avsynth.training.avss import AVSSTrainConfig, train_avss

        if audio_norm not in (None, "none"):
            raise typer.BadParameter("the AVSS trainer has no audio standardisation", param_hint="--audio-norm")
        if (avsbench is None) == (data is None):
            raise typer.BadParameter("AVSS training reads AVSBench (--avsbench ROOT --subset avss) or "
                                     "--semantic-classes avsbench shards (--data)", param_hint="--avsbench")
        res = train_avss(AVSSTrainConfig(
            root=avsbench, out=out, model=config or "stepping-stones-swin-b", stage1_masks=stage1_masks,
            stage1_checkpoint=stage1_checkpoint, subset=subset, epochs=epochs, lr=lr, seed=seed,
            mask2former_checkpoint=mask2former_checkpoint, vggish_checkpoint=vggish_checkpoint,
            device=device, data=data, init=init, batch_size=batch_size,
            val_split=val_split))
        typer.echo(f"best validation AVSS mIoU {100 * res['best_miou']:.2f}% (epoch {res['best_epoch']}); run: {out}")
        return
    bench = None
    if avsbench is not None:
        bench = AVSBenchSource(
            root=avsbench, subset=subset, fraction=fraction, k_shot=k_shot,
            uids=read_uids_file(uids_file) if uids_file is not None else None,
            val_uids=read_uids_file(val_uids_file) if val_uids_file is not None else None,
        )
    result = train(TrainConfig(
        out=out, model=config, family=model, data=data, avsbench=bench, epochs=epochs,
        batch_size=batch_size, lr=lr, lr_min=lr_min, grad_accum=grad_accum, init=init,
        unfreeze=tuple(unfreeze) if unfreeze else None,
        sam_checkpoint=sam_checkpoint, vggish_checkpoint=vggish_checkpoint,
        mask2former_checkpoint=mask2former_checkpoint, resume=resume, seed=seed,
        num_workers=workers, val_split=val_split, f_group=f_group, audio_mode=audio, cpu=device == "cpu",
        progress=not quiet, stop_after_epochs=stop_after, audio_norm=audio_norm,
    ))
    if result.rank != 0:
        return
    typer.echo(
        f"best validation mIoU {100 * result.best_miou:.2f}% (epoch {result.best_epoch}, F-score grouping "
        f"{f_group}); {result.samples_per_s:.1f} samples/s; run: {result.run_dir}"
        + ("" if result.completed else " (stopped early: --resume continues)")
    )

# ---- section: bench (protocols/) ------------------------------------------------------------


def _csv_list(text: Optional[str], kind, what: str) -> tuple:
    if not text:
        return ()
    try:
        return tuple(kind(x.strip()) for x in text.split(",") if x.strip())
    except ValueError:
        raise typer.BadParameter(f"{what}: expected a comma list of numbers, got {text!r}") from None


@app.command("bench", rich_help_panel="Train & evaluate")
@friendly
def bench_cmd(
    zero_shot_target: Optional[str] = typer.Option(
        "avsbench", "--zero-shot", help="Zero-shot target: avsbench (S4/MS3), or 'none' to skip it."
    ),
    checkpoint: Optional[Path] = typer.Option(
        None, "--checkpoint", help="Model checkpoint to evaluate (RUN/best.pt of `avsynth train`)."
    ),
    model: Optional[str] = typer.Option(
        None, "--model", "-m", help="sama-avs | ap-sam | gavs: checked against the checkpoint."
    ),
    config: Optional[str] = typer.Option(
        None, "--config", help="Model config (name or YAML) replacing the one stored in the checkpoint."
    ),
    avsbench: Optional[Path] = typer.Option(
        None, "--avsbench", help="AVSBench semantic-release root (metadata.csv, v1s/, v1m/, v2/). "
        "Default: the DEMO tree."
    ),
    demo_dir: Optional[Path] = typer.Option(
        None, "--demo-dir", help="Without --avsbench: a corpus written by `avsynth demo` (default: cached)."
    ),
    subsets: str = typer.Option("s4,ms3", "--subsets", help="Comma list of s4, ms3."),
    split: str = typer.Option("test", "--split", help="AVSBench split evaluated: test or validation (val accepted)."),
    few_shot: Optional[str] = typer.Option(
        None, "--few-shot", help="Fractions of the train videos per class, e.g. 0.1,0.3,0.5,1.0."
    ),
    few_shot_k: Optional[str] = typer.Option(
        None, "--few-shot-k", help="AVS-V3 k-shot splits to run, e.g. 1,3,5 (implies --avs-v3)."
    ),
    avs_v3: bool = typer.Option(False, "--avs-v3", help="AVS-V3: evaluate on the unseen classes."),
    avs_v3_seen_epochs: int = typer.Option(
        0, "--avs-v3-seen-epochs", help="AVS-V3: first train N epochs on the seen classes (GAVS protocol)."
    ),
    synthetic: Optional[Path] = typer.Option(
        None, "--synthetic", help="Also evaluate a shard directory's synthetic test split."
    ),
    f_group: str = typer.Option("batch4", "--f-group", help="F-score grouping: batch4 (official) or video."),
    resolution: str = typer.Option("224", "--resolution", help="224 (official) or native."),
    out: Path = typer.Option(Path("bench-out"), "--out", "-o", help="Report directory."),
    vggish_checkpoint: Optional[Path] = typer.Option(None, "--vggish-checkpoint", help="Local VGGish .pth."),
    sam_checkpoint: Optional[Path] = typer.Option(None, "--sam-checkpoint", help="Local sam_vit_*.pth."),
    epochs: int = typer.Option(10, "--epochs", help="Fine-tuning epochs per few-shot run (GAVS: 10)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Fine-tuning batch size."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Fine-tuning learning rate."),
    seed: int = typer.Option(0, "--seed", help="Seed of the few-shot video subsets and fine-tuning."),
    num_workers: int = typer.Option(
        0, "--num-workers", min=0, help="DataLoader worker processes, as torch's num_workers (0 = none)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", min=0, hidden=True),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:1 ... (default: GPU if any)."),
    no_overlays: bool = typer.Option(False, "--no-overlays", help="Skip the best/worst overlay PNGs."),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads."),
    localization: Optional[str] = typer.Option(
        None, "--localization", help="Sound-source localisation instead of AVSBench: vggss | flickr "
        "(cIoU@0.5, AUC, mean cIoU as Chen et al. CVPR'21, beside whole-image / centre-box controls)."
    ),
    localization_root: Optional[Path] = typer.Option(
        None, "--localization-root", help="Test data: ROOT/frames/{id}.jpg (or video/{id}.mp4) + "
        "ROOT/audio/{id}.wav. Default: the DEMO set."
    ),
    localization_annotations: Optional[Path] = typer.Option(
        None, "--localization-annotations", help="vggss.json, or Flickr-SoundNet's folder of {id}.xml "
        "(default: ROOT/vggss.json, ROOT/Annotations)."
    ),
    localization_list: Optional[Path] = typer.Option(
        None, "--localization-list", help="Test ids (vggss_test.csv / flickr_test.csv; default: ROOT's, "
        "else every annotated sample)."
    ),
    localization_threshold: str = typer.Option(
        "median", "--localization-threshold", help="Heatmap threshold: median (reference) or a number, e.g. 0.5."
    ),
    task: str = typer.Option(
        "binary", "--task", help="binary (S4 / MS3 protocols) or avss (71 classes; AAVS / Stepping Stones)."
    ),
    stage1_masks: Optional[Path] = typer.Option(
        None, "--stage1-masks", help="--task avss: the stage-1 mask PNGs (MASKS/<v1s|v1m|v2>/<uid>/<i>.png)."
    ),
    stage1_checkpoint: Optional[Path] = typer.Option(
        None, "--stage1-checkpoint", help="--task avss: predict the missing stage-1 masks with this checkpoint."
    ),
    eval_variant: str = typer.Option(
        "avsbench", "--eval-variant",
        help="Scoring: avsbench (official: 224², sigmoid>0.5, F per batch of 4) | sama-avs (1024², "
             "nearest-upsampled GT, F on raw logits, per video) | gavs (native, sigmoid>0.4, per video). "
             "Any but avsbench sets --resolution and --f-group.",
    ),
    no_controls: bool = typer.Option(
        False, "--no-controls", help="Skip the controls (audio zeroed, audio shuffled, predict nothing / everything)."
    ),
) -> None:
    """Benchmark a trained checkpoint on AVSBench with the official metrics.

    Zero-shot (the checkpoint as given) on S4 / MS3; few-shot (--few-shot: fine-tune a copy on a
    share of the train videos through the trainer, select on val, evaluate); AVS-V3 (--avs-v3:
    unseen classes; --few-shot-k 1,3,5: the GAVS k-shot splits, shipped with avsynth); a shard
    directory's synthetic test split (--synthetic). Writes OUT/results.json, results.md (names the
    F-score grouping, compares with quoted published numbers), per_category.md/.csv,
    few_shot_curve.png, per_category.png and overlays/.

    A checkpoint is required. With no --avsbench the DEMO AVSBench tree is used and every report
    says so. To try it end to end on the demo data:
    `avsynth build --out demo-shards && avsynth train --config sama-avs-tiny --data demo-shards
    --out run && avsynth bench --checkpoint run/best.pt --few-shot 0.5 --epochs 1`.

    --localization vggss|flickr runs only the zero-shot localisation protocol (VGG-SS /
    Flickr-SoundNet) and writes OUT/localization.md/.json, localization_curve.png, overlays/.
    """
    from avsynth.protocols import BenchConfig, EvalOptions, FineTuneOptions, run_bench

    if checkpoint is None:
        raise typer.BadParameter(
            "a trained checkpoint is needed: train one with `avsynth train --model sama-avs --data "
            "SHARDS --out RUN` (or, on the demo data, `avsynth build --out demo-shards && avsynth train "
            "--config sama-avs-tiny --data demo-shards --out run`), then pass --checkpoint RUN/best.pt",
            param_hint="--checkpoint",
        )
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    workers = _alias(num_workers, workers, "--workers")
    if split not in ("test", "val", "validation"):
        raise typer.BadParameter("--split takes test or validation", param_hint="--split")
    split = "val" if split == "validation" else split  # AVSBench's own name for the split
    if localization is not None:
        from avsynth.protocols.localization import LocalizationConfig, run_localization

        run, written = run_localization(LocalizationConfig(
            checkpoint=checkpoint, out=out, dataset=localization.lower(), root=localization_root,
            annotations=localization_annotations, test_list=localization_list, demo_dir=demo_dir, model=model,
            config=config, threshold=localization_threshold, device=device, sam_checkpoint=sam_checkpoint,
            vggish_checkpoint=vggish_checkpoint, examples=0 if no_overlays else 3,
        ), log=lambda s: console.print(s, highlight=False))
        typer.echo(f"report: {out / 'localization.md'} ({len(written)} files; threshold {run.threshold}"
                   + ("; DEMO set" if run.demo else "") + ")")
        return
    if task == "avss":
        from avsynth.protocols.avss import AVSSBenchConfig, console_line, run_avss_bench

        if avsbench is None:
            from avsynth.demo import DemoCorpus, ensure_demo

            avsbench = Path((DemoCorpus.load(demo_dir) if demo_dir is not None else ensure_demo()).avsbench_root)
            console.print(f"DEMO AVSBench tree: {avsbench}", highlight=False)
        report = run_avss_bench(AVSSBenchConfig(
            checkpoint=checkpoint, avsbench=avsbench, out=out, stage1_masks=stage1_masks,
            stage1_checkpoint=stage1_checkpoint, split=split, device=device, vggish_checkpoint=vggish_checkpoint))
        for name, r in report["protocols"].items():
            typer.echo(console_line(name, r))
        typer.echo(f"report: {out / 'avss_results.md'}")
        return
    if task != "binary":
        raise typer.BadParameter("--task takes binary or avss", param_hint="--task")
    target = (zero_shot_target or "none").lower()
    if target not in ("avsbench", "none"):
        raise typer.BadParameter("--zero-shot takes avsbench or none", param_hint="--zero-shot")
    if resolution not in ("native",) and not resolution.isdigit():
        raise typer.BadParameter("--resolution takes 224 (or another size) or native")
    cfg = BenchConfig(
        checkpoint=checkpoint, out=out, avsbench=avsbench, demo_dir=demo_dir, model=model, config=config,
        subsets=tuple(s.strip() for s in subsets.split(",") if s.strip()), split=split,
        zero_shot=target == "avsbench", fractions=_csv_list(few_shot, float, "--few-shot"),
        k_shots=_csv_list(few_shot_k, int, "--few-shot-k"), avs_v3=avs_v3,
        seen_epochs=avs_v3_seen_epochs, synthetic=synthetic,
        eval=EvalOptions(f_group=f_group, resolution=None if resolution == "native" else int(resolution),
                         device=device, num_workers=workers, variant=eval_variant,
                         controls=not no_controls, control_seed=seed),
        fine_tune=FineTuneOptions(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                                  num_workers=workers, sam_checkpoint=sam_checkpoint,
                                  vggish_checkpoint=vggish_checkpoint),
        overlays=not no_overlays,
    )
    run, written = run_bench(cfg, log=lambda s: console.print(s, highlight=False))
    typer.echo(f"report: {out / 'results.md'} ({len(written)} files; evaluation variant "
               f"{run.variant['name']}, F-score grouping {run.f_group}" + ("; DEMO tree" if run.demo else "") + ")")

# ---- section: models (modeling/) ------------------------------------------------------------


@app.command("models", rich_help_panel="Train & evaluate")
@friendly
def models_cmd(
    config: Optional[list[str]] = typer.Argument(
        None, help="Config names or YAML paths (default: every shipped config)."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per config instead of a table."),
) -> None:
    """List model configs with their trainable and total parameter counts.

    Counts are taken on the meta device (no weights, instant). "total" is the segmentation model
    (SAM + audio modules); the frozen VGGish audio encoder is counted in its own column.
    """
    import json

    from rich.table import Table

    from avsynth.modeling.registry import list_configs, load_config, parameter_counts

    rows = [parameter_counts(load_config(name)) for name in (config or list_configs())]
    if as_json:
        for r in rows:
            typer.echo(json.dumps({**r.__dict__, "trainable_percent": round(r.trainable_percent, 4)}))
        return
    table = Table(title="avsynth model configs")
    for col in ("config", "family", "backbone", "trainable", "total", "trainable %", "VGGish (frozen)"):
        table.add_column(col, justify="right" if col not in ("config", "family", "backbone") else "left")
    for r in rows:
        table.add_row(
            r.name, r.family, r.sam_arch, f"{r.trainable:,}", f"{r.total:,}",
            f"{r.trainable_percent:.3f}", f"{r.vggish:,}",
        )
    Console(width=120).print(table)


@app.command("convert-checkpoint", rich_help_panel="Train & evaluate")
@friendly
def convert_checkpoint_cmd(
    src: Path = typer.Argument(..., help="A checkpoint released with a paper's code (as downloaded)."),
    dst: Path = typer.Argument(..., help="The avsynth checkpoint to write (VGGish weights beside it, .vggish.pth)."),
    source_format: Optional[str] = typer.Option(
        None, "--from", help="The release's layout: sama-avs-official | gavs-official (default: detected)."
    ),
    config: Optional[str] = typer.Option(
        None, "--config", help="Model config (name or YAML) replacing the one read from the release."
    ),
) -> None:
    """Convert an official checkpoint into an avsynth one, with a report of every key.

    Lists the official keys that fit no model parameter (unexpected: the conversion is refused)
    and the model keys the release does not fill, each with the reason. `--checkpoint` (bench)
    and `--init` (train) also read official files directly (layout detected).
    """
    from avsynth.modeling.checkpoint import convert_checkpoint_file
    from avsynth.modeling.official import FORMATS
    from avsynth.modeling.registry import load_config

    if source_format is not None and source_format not in FORMATS:
        raise typer.BadParameter(f"expected one of {', '.join(sorted(FORMATS))}, got {source_format!r}",
                                 param_hint="--from")
    cfg = load_config(config) if config is not None else None
    out, vggish, report = convert_checkpoint_file(src, dst, source_format, cfg)
    from avsynth.modeling.official import ConversionReport

    for line in ConversionReport(**report).lines():
        typer.echo(line)
    typer.echo(f"wrote {out}" + (f" and {vggish}" if vggish else ""))


# ---- section: demo (avsynth/demo) -------------------------------------------------------


@app.command("demo", rich_help_panel="Corpora & manifests")
@friendly
def demo_cmd(
    out: Path = typer.Argument(..., help="Directory to write (must not exist, or be empty)."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same bytes."),
    scale: str = typer.Option("default", "--scale", help="default | test | tiny | s4-audio (8 categories, 10 S4 train "
                              "videos each) | s4-pretrain (s4-audio + 40 LVIS images, 9 clips per category) | avss (8 AVSS "
                              "classes, ~9 train videos each)"),
    manifest: str = typer.Option(
        "avs-synthetic-46", "--manifest", help="Category manifest (shipped name or YAML path)."
    ),
    num_proc: int = typer.Option(0, "--num-proc", min=0, help=NUM_PROC_HELP),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", min=0, hidden=True),
) -> None:
    """Write the demo corpora: LVIS-format JSON + COCO JPEGs, Open Images segmentation layout,
    VGGSound CSV + 10 s WAV clips, an AVSBench-semantic tree, an AVS-Synthetic release tree and
    (under localization/) VGG-SS- and Flickr-SoundNet-format localisation sets, generated from SEED. Each category has its own procedural object and sound; every image also
    shows objects of other categories, so only a model that listens finds the sounding one."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    from rich.table import Table

    import json

    from avsynth.demo import directory_bytes, write_demo
    from avsynth.demo.localization import ensure_localization_demo

    t0 = time.perf_counter()
    with Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console, transient=False,
    ) as bar:  # fmt: skip
        tasks: dict[str, int] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        corpus = write_demo(out, seed=seed, manifest=manifest, scale=scale,
                            workers=_alias(num_proc, workers, "--workers") or None,
                            progress=progress)  # fmt: skip
        loc = json.loads((ensure_localization_demo(corpus) / "localization.json").read_text())["counts"]
    seconds = time.perf_counter() - t0
    counts = corpus.info["counts"]
    table = Table(title=f"avsynth demo -> {corpus.root}", show_header=True)
    table.add_column("corpus")
    table.add_column("contents")
    lv = counts["lvis"]
    table.add_row("LVIS v1 + COCO", f"train {lv['train']['images']} images / "
                  f"{lv['train']['annotations']} instances; val {lv['val']['images']} / "
                  f"{lv['val']['annotations']}")  # fmt: skip
    oi = counts["openimages"]
    table.add_row("Open Images V7", "; ".join(f"{s} {v['images']} images / {v['masks']} masks"
                                              for s, v in oi.items()))  # fmt: skip
    vg = counts["vggsound"]
    table.add_row("VGGSound", f"{vg['rows']} rows ({vg['train_rows']} train, {vg['test_rows']} "
                  f"test), {vg['clips']} clips, {vg['missing']} missing files")  # fmt: skip
    av = counts["avsbench"]
    table.add_row("AVSBench", f"{av['v1s']} v1s (S4) + {av['v1m']} v1m (MS3) videos")
    asy = counts["avs_synthetic"]
    table.add_row("AVS-Synthetic", f"{asy['images']} images, {asy['rows']} instances, "
                  f"{asy['audios']} audios")  # fmt: skip
    table.add_row("VGG-SS / Flickr-SoundNet", f"localization/: {loc['vggss']['with_files']} / "
                  f"{loc['flickr']['with_files']} samples with boxes ({loc['vggss']['missing']} / "
                  f"{loc['flickr']['missing']} listed without files)")  # fmt: skip
    Console().print(table)
    size_mb = directory_bytes(corpus.root) / 1e6
    Console().print(
        f"{len(corpus.categories)} categories, seed {corpus.seed}, scale {corpus.scale}: "
        f"{size_mb:.1f} MB on disk in {seconds:.1f} s"
    )

# ---- section: manifests (manifest.py) ------------------------------------------------------


def _manifest_cell(labels: tuple[str, ...]) -> str:
    from rich.markup import escape

    return "\n".join(escape(label) for label in labels) if labels else "-"


@app.command("manifests", rich_help_panel="Corpora & manifests")
@friendly
def manifests_cmd(
    name: Optional[str] = typer.Argument(
        None, help="A shipped manifest name (e.g. avs-synthetic-46, full) or a manifest YAML path."
    ),
) -> None:
    """List the shipped category manifests, or show the categories of one.

    Without NAME: each shipped manifest with its number of categories. With NAME (a shipped name
    or a path to a manifest YAML): one row per category with its id, name and the LVIS, Open
    Images and VGGSound labels mapped to it. Pass a manifest name or path, an integer N (first N)
    or a comma list of names to `avsynth build --categories`; `full:owl,parrot` picks names from
    the full manifest.
    """
    from rich.markup import escape
    from rich.table import Table

    from avsynth.manifest import load_manifest, shipped_manifests

    out = Console()
    if name is None:
        table = Table(title="Shipped category manifests")
        table.add_column("name", no_wrap=True)
        table.add_column("categories", justify="right")
        table.add_column("description")
        for m in shipped_manifests():
            table.add_row(escape(m.name), str(len(m)), escape(m.description))
        out.print(table)
        out.print("Show one: avsynth manifests NAME")
        return
    m = load_manifest(name)
    table = Table(title=escape(f"{m.name}: {len(m)} categories ({m.path})"), show_lines=True)
    table.add_column("id", justify="right")
    table.add_column("name", no_wrap=True)
    table.add_column("lvis")
    table.add_column("openimages")
    table.add_column("vggsound")
    for c in m:
        table.add_row(
            str(c.category_id), escape(c.name), _manifest_cell(c.lvis),
            _manifest_cell(c.openimages), _manifest_cell(c.vggsound),
        )  # fmt: skip
    out.print(table)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
