"""The ladder of CRNNs (issue 21): seconds to extract x_a of one network on every ESC-50 clip, and the
separability of x_a (linear probe with the official folds, 1-NN, silhouette; clap_lib.analysis.backbone_analysis) of every
published CRNN and of random inits, from one cached features stage (the log-mels are shared by every CRNN).

    .venv/bin/python benchmarks/ladder.py --features ARTIFACTS/features/KEY --seeds 0,1,2 --cache /tmp/x_a

As the pipeline's backbone stage does: published networks keep their BatchNorm statistics; a random init has them
re-estimated on 512 training clips (folds 1-4, numpy seed 7) before x_a is taken.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clap_lib.analysis.backbone_analysis import separability_table
from clap_lib.data.esc50 import ESC50_CLASSES, train_eval_masks
from clap_lib.models.backbones.crnn import random_crnn
from clap_lib.models.backbones.gpvad_files import PUBLISHED, load_gpvad
from clap_lib.pipeline.stages import backbone_outputs
from clap_lib.training.pretrain import calibrate_batchnorm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--features", type=Path, required=True, help="a gpvad features stage folder (logmels.npy, ...)")
    ap.add_argument("--seeds", default="0,1,2", help="random-init seeds")
    ap.add_argument("--cache", type=Path, required=True, help="folder for x_a of each network (reused when there)")
    ap.add_argument("--out", type=Path, default=None, help="CSV of the table (default: print only)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    logmels = np.load(args.features / "logmels.npy", mmap_mode="r")
    ok = np.load(args.features / "ok.npy")
    meta = pd.read_csv(args.features / "meta.csv")
    args.cache.mkdir(parents=True, exist_ok=True)
    train_mask, _ = train_eval_masks(meta)
    calib = np.sort(np.random.default_rng(7).choice(np.flatnonzero(train_mask & ok), 512, replace=False))
    nets = {name: f"file:{name}" for name in PUBLISHED}
    nets |= {f"random/{s}": f"random seed {s}" for s in map(int, args.seeds.split(","))}
    rows = []
    cols = [
        "backbone",
        "x_a seconds",
        "x_a CPU seconds",
        "sep CPU seconds",
        "probe",
        "probe_lo",
        "probe_hi",
        "nn1",
        "nn1_lo",
        "nn1_hi",
        "silhouette",
        "silhouette_lo",
        "silhouette_hi",
        "probe_not_converged",
    ]
    for name, source in nets.items():
        path = args.cache / (name.replace("/", "_") + ".npy")
        if name in PUBLISHED:
            model = load_gpvad(name)
            prov = {"file": PUBLISHED[name].file, "trained on": PUBLISHED[name].trained_on}
        else:
            model = random_crnn(int(name.split("/")[1]), len(ESC50_CLASSES))
            prov = {"source": source, "trained on": "nothing"}
        seconds = cpu = np.nan
        if path.is_file():
            x_a = np.load(path)
        else:
            t0, c0 = time.perf_counter(), time.process_time()
            if name not in PUBLISHED:
                calibrate_batchnorm(model, np.asarray(logmels[calib]))
            x_a = backbone_outputs(model, logmels, with_probs=False)[0]
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
            np.save(path, x_a)
        c0 = time.process_time()
        row = separability_table({name: x_a}, meta, ok, {name: prov}).iloc[0].to_dict()
        rows.append(row | {"x_a seconds": seconds, "x_a CPU seconds": cpu, "sep CPU seconds": time.process_time() - c0})
        print(pd.DataFrame(rows[-1:])[cols].round(3).to_string(index=False, header=len(rows) == 1), flush=True)
        if args.out:  # after every network: a stopped run keeps what it measured
            pd.DataFrame(rows).to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
