"""CNN14 training throughput: clips/s for front end + forward + backward + Adam step, paper-profile audio.

    .venv/bin/python benchmarks/throughput.py                          # this machine's device ("auto")
    .venv/bin/python benchmarks/throughput.py --device cuda --batch 128 --precision bf16
    .venv/bin/python benchmarks/throughput.py --width 0.125 --batch 32  # the lab network

Input: 5 s of 44.1 kHz audio per clip (the paper profile), log-mel on the device, CNN14 at `--width`
(1.0 = the paper's network) with its AudioSet head and a BCE loss, as in clean pretraining. Reports the
median over `--steps` timed steps after `--warmup` untimed ones. Prints a table and appends to
benchmarks/results/throughput.json (one record per device / width / batch / precision, newest kept).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clap_lib.config.profiles import make_config  # noqa: E402
from clap_lib.data.audio import LogMel  # noqa: E402
from clap_lib.models.backbones.cnn14 import Cnn14  # noqa: E402
from clap_lib.paper.inputs import autocast, resolve_precision  # noqa: E402
from clap_lib.training.distributed import resolve_device  # noqa: E402

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(device: torch.device, width: float, batch: int, steps: int, warmup: int, precision: str) -> dict:
    audio = make_config("paper").audio
    gen = torch.Generator().manual_seed(0)
    front = LogMel(audio).to(device)
    model = Cnn14(n_mels=audio.n_mels, width=width).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    waves = torch.randn(batch, audio.n_samples, generator=gen).to(device)
    targets = (torch.rand(batch, model.fc_audioset.out_features, generator=gen) < 0.01).float().to(device)
    times = []
    for i in range(warmup + steps):
        _sync(device)
        t0 = time.perf_counter()
        with autocast(device, precision):
            logits = model.fc_audioset(model(front(waves)))
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), targets)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    step = statistics.median(times)
    return {
        "device": device_name(device),
        "device_type": device.type,
        "width": width,
        "batch": batch,
        "precision": precision,
        "steps": steps,
        "median_step_seconds": round(step, 4),
        "clips_per_second": round(batch / step, 2),
        "n_params": sum(p.numel() for p in model.parameters()),
        "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        if device.type == "cuda"
        else None,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:N")
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--batch", type=int, default=None, help="default: 128 on CUDA (the paper's batch), 4 on CPU")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default: 20 on CUDA, 3 on CPU)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--precision", default="auto", choices=PRECISIONS)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "throughput.json"))
    args = ap.parse_args(argv)
    if args.width <= 0:
        ap.error(f"--width must be > 0, got {args.width}")
    try:
        dev = resolve_device(args.device)
    except ValueError as e:
        ap.error(f"--device {args.device}: {e}; use --device cpu")
    gpu = dev.type == "cuda"
    batch = args.batch or (128 if gpu else 4)
    steps = args.steps or (20 if gpu else 3)
    if min(batch, steps) <= 0 or args.warmup < 0:
        ap.error("--batch and --steps must be > 0 and --warmup >= 0")
    rec = measure(dev, args.width, batch, steps, args.warmup, resolve_precision(args.precision, dev))
    rec |= {"platform": platform.platform(), "torch": torch.__version__, "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    records = json.loads(out.read_text()) if out.is_file() else []
    same = ("device", "width", "batch", "precision")
    records = [r for r in records if any(r.get(k) != rec[k] for k in same)] + [rec]
    out.write_text(json.dumps(records, indent=2))
    print(f"{'device':<40}{'width':>6}{'batch':>7}{'precision':>10}{'s/step':>9}{'clips/s':>9}")
    for r in records:
        print(
            f"{r['device'][:39]:<40}{r['width']:>6g}{r['batch']:>7}{r['precision']:>10}"
            f"{r['median_step_seconds']:>9.3f}{r['clips_per_second']:>9.2f}"
        )
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
