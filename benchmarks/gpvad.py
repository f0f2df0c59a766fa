"""The GPVAD CRNN backbone: forward and front-end time per 5 s clip, peak memory of 2000 clips of log-mels, and
(when the shared data is there) how separable ESC-50 is in x_a of each published network and of random weights.

    .venv/bin/python benchmarks/gpvad.py                   # ~1-2 min on 2 CPU cores; writes results/gpvad.json
    .venv/bin/python benchmarks/gpvad.py --per-class 8     # separability on all clips of folds 1-2 (800 clips)

Timing uses random weights (the speed does not depend on them). Separability: x_a of every clip of folds 1-2,
`--per-class` clips per class and fold, each fold held out once (clap_lib.analysis.separability).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clap_lib.models.backbones.crnn import random_crnn
from clap_lib.models.backbones.gpvad_files import GPVAD_FILES, gpvad_dir, load_gpvad, read_gpvad_labels
from clap_lib.models.frontend import crnn_logmel, mel_bands_above

CLIP_S, SR = 5.0, 16000  # our ESC-50 copy


def time_forward(threads: int, batch: int = 32, repeats: int = 3) -> float:
    """Seconds per 5 s clip (251 frames) of the CRNN's x_a, eval mode, no grad."""
    torch.set_num_threads(threads)
    model = random_crnn(0).eval()
    x = torch.randn(batch, 251, 64, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        model(x[:4])  # warm-up
        t0 = time.perf_counter()
        for _ in range(repeats):
            model(x)
    return (time.perf_counter() - t0) / (repeats * batch)


def time_front_end(threads: int, n: int = 64) -> float:
    torch.set_num_threads(threads)
    waves = np.random.default_rng(0).standard_normal((n, int(CLIP_S * SR))).astype(np.float32)
    crnn_logmel(waves[:2], SR)
    t0 = time.perf_counter()
    crnn_logmel(waves, SR)
    return (time.perf_counter() - t0) / n


_MEMORY_CHILD = """
import resource, sys, time, numpy as np, torch
sys.path.insert(0, {root!r})
from clap_lib.models.backbones.crnn import crnn_logmel
torch.set_num_threads(2)
waves = np.random.default_rng(0).standard_normal(({n}, {samples}), dtype=np.float32)  # no float64 temporary
base = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize() // 1024  # current RSS, KiB
t0 = time.perf_counter()
L = crnn_logmel(waves, {sr})
dt = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(base * 1024, peak * 1024, L.nbytes, waves.nbytes, dt, L.shape[1])
"""


def front_end_memory(n: int = 2000) -> dict:
    """Peak RSS of a fresh process computing log-mels of `n` 5 s clips at once; `front_end_extra_MiB` = peak minus
    the RSS just before the call (waveforms and torch already loaded), i.e. the output plus scratch."""
    code = _MEMORY_CHILD.format(root=str(ROOT), n=n, samples=int(CLIP_S * SR), sr=SR)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    base, peak, out_b, in_b, dt, frames = (float(v) for v in out)
    return {
        "clips": n,
        "frames_per_clip": int(frames),
        "logmel_MiB": out_b / 2**20,
        "waveforms_MiB": in_b / 2**20,
        "rss_before_MiB": base / 2**20,
        "rss_peak_MiB": peak / 2**20,
        "front_end_extra_MiB": (peak - base) / 2**20,
        "seconds": dt,
        "seconds_per_clip_2_threads": dt / n,
    }


# --- separability on real ESC-50 ------------------------------------------------------------------------


def read_subset(esc50: Path, per_class: int, folds=(1, 2)):
    import pandas as pd
    import soundfile as sf

    meta = pd.read_csv(esc50 / "esc50.csv")
    meta = meta[meta["fold"].isin(folds)].sort_values(["fold", "target", "filename"])
    meta = meta.groupby(["fold", "target"]).head(per_class).reset_index(drop=True)
    waves = np.zeros((len(meta), int(CLIP_S * SR)), dtype=np.float32)
    for i, f in enumerate(meta["filename"]):
        x, sr = sf.read(esc50 / "audio" / f.replace(".wav", ".flac"), dtype="float32")
        assert sr == SR, (f, sr)
        waves[i, : min(len(x), waves.shape[1])] = x[: waves.shape[1]]
    return meta, waves


@torch.inference_mode()
def embed(model, L: np.ndarray, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(x_a, clip probabilities) of every clip."""
    model.eval()
    xa, cp = [], []
    for i in range(0, len(L), batch):
        a, p = model.embed_and_clip_probs(torch.from_numpy(L[i : i + batch]))
        xa.append(a.numpy())
        cp.append(p.numpy())
    return np.concatenate(xa), np.concatenate(cp)


def separability_table(esc50: Path, folder: Path, per_class: int, save=lambda part: None) -> dict:
    from clap_lib.analysis.separability import separability
    from clap_lib.data.audio import normalise

    torch.set_num_threads(2)
    t0 = time.perf_counter()
    meta, waves = read_subset(esc50, per_class)
    L_raw = crnn_logmel(waves, SR)
    L_norm = crnn_logmel(np.stack([normalise(w) for w in waves]), SR)  # what clap_lib.data.esc50.load_clips feeds
    y, folds = meta["target"].to_numpy(), meta["fold"].to_numpy()
    rows, extra = {}, {}

    def add(name, X, what):
        print(f"  separability: {name}", file=sys.stderr, flush=True)
        s = separability(X, y, folds)
        rows[name] = {
            "what": what,
            **s.row(digits=4),
            "probe_not_converged": s.probe_not_converged,
            "per_fold": {"silhouette": s.silhouette.per_fold, "probe": s.probe.per_fold, "nn1": s.nn1.per_fold},
        }
        save({"rows": rows})

    add(
        "logmel_mean_std",
        np.concatenate([L_raw.mean(1), L_raw.std(1)], axis=1),
        "no network: per-band time mean and sd of the log-mel (128-d)",
    )
    probs = {}
    for name, f in GPVAD_FILES.items():
        model = load_gpvad(folder / f.file)
        xa, probs[name] = embed(model, L_raw)
        add(name, xa, f"x_a of {f.file} ({f.trained_on}), raw waveform")
    xa, _ = embed(load_gpvad(folder / "gpv_f.pth"), L_norm)
    add("gpv_f_unit_variance_input", xa, "x_a of gpv_f.pth on unit-variance normalised waveforms")
    xa, _ = embed(random_crnn(0), L_raw)
    add("random", xa, "x_a of random_crnn(0), BatchNorm at init (mean 0, var 1)")
    try:
        from clap_lib.training.pretrain import calibrate_batchnorm

        model = random_crnn(0)
        calibrate_batchnorm(model, L_raw)
        xa, _ = embed(model, L_raw)
        add("random_bn_calibrated", xa, "x_a of random_crnn(0) after training.calibrate_batchnorm on these clips")
    except ImportError as e:  # the pipeline modules may be mid-refactor; the other rows stand on their own
        extra["random_bn_calibrated"] = f"skipped: {e}"
    try:
        from clap_lib.analysis.shortcut import restrict_to_labels, shortcut_accuracy
        from clap_lib.data.esc50 import ESC50_CLASSES
        from clap_lib.data.ontology import esc50_audioset_names

        labels = read_gpvad_labels(folder / GPVAD_FILES["gpv_f"].labels, 527)
        mapping, dropped = restrict_to_labels(esc50_audioset_names(), labels)  # ontology names with no output
        r = shortcut_accuracy(probs["gpv_f"], labels, mapping, ESC50_CLASSES, y)
        extra["shortcut_gpv_f"] = {
            k: r[k] for k in ("accuracy", "lo", "hi", "n_clips", "n_classes", "chance", "unmatched")
        } | {"dropped_names": dropped}
    except ImportError as e:
        extra["shortcut_gpv_f"] = f"skipped: {e}"
    return {
        "clips": len(meta),
        "folds": sorted(set(folds.tolist())),
        "per_class_per_fold": per_class,
        "seconds": time.perf_counter() - t0,
        "rows": rows,
        **extra,
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--esc50", type=Path, default=None, help="ESC-50 root (default <shared data>/esc50)")
    ap.add_argument("--gpvad", type=Path, default=None, help="folder of the published files (default gpvad_dir())")
    ap.add_argument("--per-class", type=int, default=4, help="clips per class and fold (folds 1-2); 0 = skip")
    ap.add_argument("--memory-clips", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gpvad.json")
    args = ap.parse_args(argv)
    res: dict = {
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpus": __import__("os").cpu_count(),
            "platform": platform.platform(),
        },
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "mel_bands_above_8kHz": mel_bands_above(8000.0).tolist(),
    }
    print("timing ...", file=sys.stderr, flush=True)
    res["forward_s_per_clip"] = {f"{t}_thread": time_forward(t) for t in (1, 2)}
    res["front_end_s_per_clip"] = {f"{t}_thread": time_front_end(t) for t in (1, 2)}
    res["memory_2000_clips"] = front_end_memory(args.memory_clips)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    res["peak_rss_MiB_this_process_so_far"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.per_class > 0:
        from clap_lib.data.esc50 import locate_esc50

        try:
            esc50, folder = locate_esc50(args.esc50), gpvad_dir(args.gpvad)

            def save(part):
                args.out.write_text(json.dumps(res | {"separability": part, "partial": True}, indent=2) + "\n")

            res["separability"] = separability_table(esc50, folder, args.per_class, save)
        except FileNotFoundError as e:
            res["separability"] = f"skipped: {e}"
    print(
        f"CRNN x_a per 5 s clip: {1e3 * res['forward_s_per_clip']['1_thread']:.1f} ms (1 thread), "
        f"{1e3 * res['forward_s_per_clip']['2_thread']:.1f} ms (2 threads)"
    )
    print(
        f"front end per clip: {1e3 * res['front_end_s_per_clip']['1_thread']:.1f} ms (1 thread), "
        f"{1e3 * res['front_end_s_per_clip']['2_thread']:.1f} ms (2 threads)"
    )
    m = res["memory_2000_clips"]
    print(
        f"{m['clips']} clips: log-mels {m['logmel_MiB']:.0f} MiB, waveforms {m['waveforms_MiB']:.0f} MiB, "
        f"peak RSS {m['rss_peak_MiB']:.0f} MiB (+{m['front_end_extra_MiB']:.0f} during the front end)"
    )
    sep = res.get("separability")
    if isinstance(sep, dict):
        print(f"\nx_a separability, {sep['clips']} clips of folds {sep['folds']} (mean ± sd over folds):")
        print(f"{'':28s} {'silhouette':>16s} {'linear probe':>16s} {'1-NN':>16s}")
        for name, r in sep["rows"].items():
            print(
                f"{name:28s} " + " ".join(f"{r[k]:7.3f} ± {r[k + '_sd']:.3f}" for k in ("silhouette", "probe", "nn1"))
            )
        if isinstance(sep.get("shortcut_gpv_f"), dict):
            s = sep["shortcut_gpv_f"]
            print(
                f"shortcut (GPV-F's own head): {s['accuracy']:.3f} [{s['lo']:.3f}, {s['hi']:.3f}] over "
                f"{s['n_classes']} classes, {s['n_clips']} clips; unmatched {s['unmatched']}; names not among "
                f"the 527 labels, dropped: {s['dropped_names']}"
            )
    elif sep:
        print(sep)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return res


if __name__ == "__main__":
    main()
