"""EfficientAT mn04 (issue 22): front end and forward time per 5 s clip on CPU, the size of its cached input, and
(with `--esc50`) the published network on the real ESC-50: its AudioSet head as a classifier through the ontology
mapping (the shortcut at paper strength) and the separability of its x_a.

    .venv/bin/python benchmarks/mn04.py            # ~1 min on one core; writes results/mn04.json
    .venv/bin/python benchmarks/mn04.py --threads 1 2
    .venv/bin/python benchmarks/mn04.py --esc50    # + all 2000 clips (~2 min of CPU, longer on a shared machine)

Timing uses random weights (the speed does not depend on them), batches of 32 clips, eval mode, no grad. Our
ESC-50 is 16 kHz: the front end resamples it to 32 kHz, and its 23 mel bands above 8 kHz hold only resampler
leakage (clap_lib.models.backbones.mn04), a caveat of every number here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clap_lib.models.backbones.mn04 import random_mn04
from clap_lib.models.backbones.mn04_files import load_mn04
from clap_lib.models.frontend_mn04 import Mn04FrontEnd, mn04_logmel

CLIP_S, SR = 5.0, 16000  # our ESC-50 copy
FRAMES = Mn04FrontEnd().n_frames(int(CLIP_S * 32000))  # 500


def time_forward(threads: int, batch: int = 32, repeats: int = 3) -> tuple[float, float]:
    """(wall, process CPU) seconds per 5 s clip (500 frames x 128 mels) of x_a and the head, eval mode, no grad."""
    torch.set_num_threads(threads)
    model = random_mn04(0).eval()
    x = torch.randn(batch, FRAMES, 128, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        model.embed_and_clip_probs(x[:4])  # warm-up
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(repeats):
            model.embed_and_clip_probs(x)
    return (time.perf_counter() - t0) / (repeats * batch), (time.process_time() - c0) / (repeats * batch)


def time_front_end(threads: int, n: int = 64) -> tuple[float, float]:
    """(wall, process CPU) seconds per 5 s clip at 16 kHz: resampling to 32 kHz, pre-emphasis, STFT, mel, log, normalisation."""
    torch.set_num_threads(threads)
    waves = 0.1 * np.random.default_rng(0).standard_normal((n, int(CLIP_S * SR))).astype(np.float32)
    mn04_logmel(waves[:2], SR)
    t0, c0 = time.perf_counter(), time.process_time()
    mn04_logmel(waves, SR)
    return (time.perf_counter() - t0) / n, (time.process_time() - c0) / n


def esc50_measures() -> dict:
    """The published mn04_as on all 2000 ESC-50 clips (as read, no waveform standardisation): the shortcut over
    all 50 classes on all clips and over the default run's T on fold 5, and the separability of x_a."""
    from scipy import stats

    from clap_lib.analysis.backbone_analysis import separability_table, shortcut_result
    from clap_lib.config.experiment import AudioConfig
    from clap_lib.config.profiles import make_config
    from clap_lib.data.audio import load_clips
    from clap_lib.data.esc50 import ESC50_CLASSES, EVAL_FOLD, locate_esc50, read_esc50_meta
    from clap_lib.data.ontology import esc50_audioset_names
    from clap_lib.models.backbones import spec

    meta = read_esc50_meta(locate_esc50(None))
    clips = load_clips(meta, AudioConfig(sample_rate=SR, waveform_norm="none"), progress=False)
    model = load_mn04("mn04_as")
    x_a, probs = [], []
    with torch.inference_mode():
        for i in range(0, len(meta), 50):
            a, p = model.embed_and_clip_probs(torch.from_numpy(mn04_logmel(clips.waves[i : i + 50], SR)))
            x_a.append(a.numpy())
            probs.append(p.numpy())
    x_a, probs = np.concatenate(x_a), np.concatenate(probs)
    labels, names, T = spec("mn04").head_labels("mn04_as"), esc50_audioset_names(), make_config().split.target
    out = {}
    for key, classes, folds in (("all_50", ESC50_CLASSES, (1, 2, 3, 4, 5)), ("T_fold5", T, (EVAL_FOLD,))):
        r = shortcut_result(probs, labels, meta, clips.ok, classes, names, folds)
        # the paper's denominator: every clip of the classes, those of unmapped classes counted as errors
        n_all = int((clips.ok & meta["fold"].isin(folds) & meta["category"].isin(classes)).sum())
        k = round(r["accuracy"] * r["n_clips"])
        ci = stats.binomtest(k, n_all).proportion_ci(method="wilson")
        out[f"shortcut_{key}"] = {
            m: r[m] for m in ("accuracy", "lo", "hi", "n_clips", "n_classes", "unmatched", "mapped_names_not_in_head")
        } | {
            "correct": k,
            "accuracy_every_clip": k / n_all,
            "lo_every_clip": float(ci.low),
            "hi_every_clip": float(ci.high),
            "n_every_clip": n_all,
        }
    sep = separability_table({"mn04_as": x_a}, meta, clips.ok).iloc[0]
    out["separability_x_a"] = {
        m: float(sep[m]) for m in ("probe", "probe_lo", "probe_hi", "nn1", "nn1_lo", "nn1_hi", "silhouette")
    } | {"n_clips": int(sep["n_clips"])}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--esc50", action="store_true", help="also measure the published network on the real ESC-50")
    ap.add_argument("--threads", type=int, nargs="+", default=[1], help="torch threads to time with")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "mn04.json")
    args = ap.parse_args()
    rows = []
    for threads in args.threads:
        (fw, fc), (nw, nc) = time_front_end(threads), time_forward(threads)
        rows.append(
            {
                "threads": threads,
                "front_end_ms": 1000 * fw,
                "forward_ms": 1000 * nw,
                "front_end_cpu_ms": 1000 * fc,
                "forward_cpu_ms": 1000 * nc,
            }
        )
    # on a shared machine wall time counts the waits for a core; process CPU time is what an idle core would take
    print(
        f"mn04 per 5 s clip ({FRAMES} frames x 128 mels), batches of 32, CPU; load {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores"
    )
    print(
        f"{'threads':>7} {'front end ms':>13} {'forward ms':>11} {'total ms':>9} {'(CPU: front end':>16} "
        f"{'forward':>8} {'total)':>7}"
    )
    for r in rows:
        print(
            f"{r['threads']:>7} {r['front_end_ms']:>13.1f} {r['forward_ms']:>11.1f} "
            f"{r['front_end_ms'] + r['forward_ms']:>9.1f} {r['front_end_cpu_ms']:>16.1f} "
            f"{r['forward_cpu_ms']:>8.1f} {r['front_end_cpu_ms'] + r['forward_cpu_ms']:>7.1f}"
        )
    cache_mib = 2000 * FRAMES * 128 * 4 / 2**20
    print(f"cached input of 2000 clips: 2000 x {FRAMES} x 128 float32 = {cache_mib:.0f} MiB")
    result = {
        "per_clip": rows,
        "frames_per_clip": FRAMES,
        "logmel_2000_clips_MiB": cache_mib,
        "parameters": sum(p.numel() for p in random_mn04(0).parameters()),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "load_1min": os.getloadavg()[0],
            "torch": torch.__version__,
        },
    }
    if args.esc50:
        t0 = time.perf_counter()
        result["esc50"] = esc50_measures()
        result["esc50"]["seconds"] = time.perf_counter() - t0
        for key in ("shortcut_all_50", "shortcut_T_fold5"):
            r = result["esc50"][key]
            print(
                f"{key}: {r['accuracy']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}] over {r['n_classes']} mapped classes "
                f"({r['n_clips']} clips); every clip {r['accuracy_every_clip']:.3f} "
                f"[{r['lo_every_clip']:.3f}, {r['hi_every_clip']:.3f}] ({r['n_every_clip']} clips)"
            )
        s = result["esc50"]["separability_x_a"]
        print(
            f"x_a: probe {s['probe']:.3f} [{s['probe_lo']:.3f}, {s['probe_hi']:.3f}], 1-NN {s['nn1']:.3f} "
            f"[{s['nn1_lo']:.3f}, {s['nn1_hi']:.3f}], silhouette {s['silhouette']:.3f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
