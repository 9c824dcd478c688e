"""Model step benchmarks: forward and forward+backward(+AdamW step) time and peak memory per config.

Prints one JSON line per (config, measurement). Each config runs in its own subprocess so peak
memory figures do not leak between configs. CPU: peak resident set size of that process (and its
growth over the steps); CUDA: ``torch.cuda.max_memory_allocated``.

    python benchmark/bench_models.py                       # tiny configs on the CPU + param counts
    python benchmark/bench_models.py --device cuda --configs sama-avs-vit-h gavs-vit-b --batch 4

Weights are random (timing does not depend on them); VGGish embeddings are random [B, 128].
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

TINY = ["sama-avs-tiny", "ap-sam-tiny", "gavs-tiny", "aavs-tiny", "stepping-stones-tiny"]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def run_one(name: str, device: str, batch: int, steps: int, warmup: int) -> list[dict]:
    """Measure one config in this process."""
    import torch

    from avsynth.modeling import build_model, load_config

    torch.manual_seed(0)
    cfg = load_config(name)
    model = build_model(cfg, load_weights=False, device=device)
    s = model.image_size
    images = torch.randn(batch, 3, s, s, device=device)
    audio = torch.randn(batch, 128, device=device)
    gt = (torch.rand(batch, 1, model.low_res_size, model.low_res_size, device=device) > 0.5).float()
    opt = torch.optim.AdamW(model.trainable_parameters(), lr=1e-4)
    cuda = device.startswith("cuda")

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    # Stepping Stones also reads a stage-1 binary mask per frame
    extra = ((torch.rand(batch, s, s, device=device) > 0.5).float(),) if cfg["family"] == "stepping_stones" else ()

    def fwd() -> None:
        with torch.no_grad():
            model(images, audio, *extra)

    def train_step() -> None:
        opt.zero_grad(set_to_none=True)
        model.loss(model(images, audio, *extra), gt).backward()
        opt.step()

    base = {
        "config": name,
        "device": torch.cuda.get_device_name() if cuda else f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "batch": batch,
        "image_size": s,
        "torch": torch.__version__,
        "loadavg_1m": round(os.getloadavg()[0], 2),  # the machine is shared: judge CPU times by it
    }
    out = []
    for label, fn, train in (("forward", fwd, False), ("forward_backward_step", train_step, True)):
        model.train(train)
        rss0 = _rss_mb()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        for _ in range(warmup):
            fn()
        sync()
        times = []
        for _ in range(steps):
            t = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - t)
        times.sort()
        rec = {
            **base,
            "measure": label,
            "median_ms": round(1000 * times[len(times) // 2], 2),
            "min_ms": round(1000 * times[0], 2),
            "steps": steps,
        }
        if cuda:
            rec["peak_mem_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        else:
            rec["peak_rss_mb"] = round(_rss_mb(), 1)
            rec["rss_growth_mb"] = round(_rss_mb() - rss0, 1)
        out.append(rec)
    return out


def run_vggish(device: str, steps: int) -> dict:
    """Real-size VGGish (random weights): log-mel front end + network on one 10 s clip."""
    import numpy as np
    import torch

    from avsynth.modeling.vggish import build_vggish

    torch.manual_seed(0)
    emb = build_vggish("vggish").to(device)
    wave = np.random.default_rng(0).standard_normal(160000).astype(np.float32) * 0.1
    emb.embed(wave, 16000)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        emb.embed(wave, 16000)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    times.sort()
    return {"config": "vggish", "measure": "embed_10s_clip", "device": device, "examples": 10,
            "median_ms": round(1000 * times[len(times) // 2], 2), "min_ms": round(1000 * times[0], 2),
            "steps": steps, "loadavg_1m": round(os.getloadavg()[0], 2)}


def param_lines(names: list[str]) -> list[dict]:
    from avsynth.modeling import list_configs, load_config, parameter_counts

    rows = []
    for name in names or list_configs():
        c = parameter_counts(load_config(name))
        rows.append({"config": c.name, "measure": "parameters", "family": c.family, "sam": c.sam_arch,
                     "trainable": c.trainable, "total": c.total, "vggish_frozen": c.vggish,
                     "trainable_percent": round(c.trainable_percent, 4)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="*", default=TINY)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default); 1 is steadiest on a shared machine")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one config in-process
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.one == "vggish":
        print(json.dumps(run_vggish(args.device, args.steps)), flush=True)
        return
    if args.one:
        for rec in run_one(args.one, args.device, args.batch, args.steps, args.warmup):
            print(json.dumps(rec), flush=True)
        return
    for rec in param_lines([]):
        print(json.dumps(rec), flush=True)
    if args.device == "cpu":
        import torch

        if not torch.cuda.is_available():
            print(json.dumps({"measure": "note", "gpu": "not available in this task; full configs only counted on meta"}))
    for name in [*args.configs, "vggish"]:
        cmd = [sys.executable, __file__, "--one", name, "--device", args.device, "--batch", str(args.batch),
               "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads)]
        subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
