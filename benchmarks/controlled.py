"""Issue 20's recipe and budget: what one converged CLAP run costs on this machine, and whether the backbone trains.

Reads a default run's cached stages (features: the log-mels; backbone: x_a and weights of GPV-F / random), the
real caption pools and ESC-50, and measures on class split 0:

1. text: x_t of every caption the dose design needs (dirty pairs + the background filler of `unseen`), s per 1000.
2. frozen phase (projectors + temperature on cached x_a, x_t; the repository's recipe: Adam 1e-4, batch 128, last
   incomplete batch dropped, dropout 0.5, grad-norm clip 100, logits clamped at 100), trained until the validation
   loss (held-out *background* clips of folds 1-4, clap_lib.data.doses.validation_clips) stops improving
   (clap_lib.training.early_stopping, patience `--patience`), for `dirty` and `unseen` at equal pair counts:
   a. an epoch over pairs (every pair once) vs an epoch over clips (every clip once, one sampled caption);
   b. K seeds trained as one batched model (stacked projector weights, bmm; Adam is elementwise and gradients are
      clipped per model, so each slice trains exactly as a model of its own) against K = 1.
3. fine-tuning of the audio backbone's top: the GPVAD bi-GRU (which produces x_a = its time-mean) with both
   projectors, on cached outputs of the frozen convolutional trunk, from the converged frozen-phase heads, until the
   validation loss stops improving; for `dirty` and `unseen`, GPV-F and random init. Cost per epoch, epochs, and
   x_a after training: its silhouette on the fold-5 clips of T (Table 2's measure; recorded, no choice is made on
   it) and its cosine to x_a before.

Writes benchmarks/results/controlled.json. Timings are for `--threads` threads (2 on the 2-core machine).

    .venv/bin/python benchmarks/controlled.py --artifacts artifacts --threads 2
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clap_lib.analysis.metrics import silhouette  # noqa: E402
from clap_lib.config.profiles import make_config  # noqa: E402
from clap_lib.data import caption_pools as cp  # noqa: E402
from clap_lib.data.doses import dose_pairs, validation_clips  # noqa: E402
from clap_lib.data.esc50 import EVAL_FOLD, locate_esc50, read_esc50_meta  # noqa: E402
from clap_lib.data.paths import shared_data_dir  # noqa: E402
from clap_lib.models import backbones  # noqa: E402
from clap_lib.models.clap import Projection  # noqa: E402
from clap_lib.training.early_stopping import EarlyStopping, StopState, observe  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "controlled.json"


def clock() -> float:
    """CPU seconds of this process (all its threads): on a machine shared with other jobs the wall time measures
    the neighbours; with one thread, CPU time is the wall time the run takes on an idle core."""
    return time.process_time()


# --- inputs -----------------------------------------------------------------------------------------------------


def stage_dirs(artifacts: Path) -> tuple[Path, dict[str, Path]]:
    """(the features stage, {pretraining level: backbone stage}) of a default run's artifacts."""
    feats = [d for d in (artifacts / "features").iterdir() if (d / "logmels.npy").is_file()]
    if not feats:
        raise FileNotFoundError(
            f"no features stage with logmels.npy under {artifacts / 'features'}: run `python -m clap_lib run` first"
        )
    levels = {}
    for d in (artifacts / "backbone").iterdir():
        if (d / "provenance.json").is_file() and (d / "x_a.npy").is_file():
            levels[json.loads((d / "provenance.json").read_text())["level"]] = d
    return feats[0], levels


def encode_captions(cfg, captions: list[str]) -> tuple[np.ndarray, float]:
    from clap_lib.models.text import build_text_encoder

    text = build_text_encoder(cfg).eval()
    t0 = clock()
    with torch.no_grad():
        x_t = torch.cat([text(text.tokenize(captions[i : i + 128])) for i in range(0, len(captions), 128)])
    return x_t.numpy(), clock() - t0


def index_pairs(table, cap_row: dict[str, int]) -> np.ndarray:
    return np.stack([table["clip"].to_numpy(), table["caption"].map(cap_row).to_numpy()], axis=1)


# --- K projector pairs as one batched model -----------------------------------------------------------------


class BatchedHeads(nn.Module):
    """K copies of CLAP's two projectors and temperature (clap_lib.models.Projection, initialised as Clap does with
    torch.manual_seed(seed) per copy) with stacked weights: one bmm per layer for all K."""

    def __init__(self, seeds: list[int], d_a: int, d_t: int, d: int = 1024, p_drop: float = 0.5):
        super().__init__()
        a, t = [], []
        for s in seeds:
            torch.manual_seed(s)
            a.append(Projection(d_a, d, p_drop))
            t.append(Projection(d_t, d, p_drop))
        self.p_drop = p_drop
        self.a = self._stack(a)
        self.t = self._stack(t)
        self.logit_scale = nn.Parameter(torch.full((len(seeds),), math.log(1 / 0.07)))

    @staticmethod
    def _stack(projs: list[Projection]) -> nn.ParameterDict:
        return nn.ParameterDict(
            {
                "W1": nn.Parameter(torch.stack([p.linear1.weight.T.detach() for p in projs])),
                "W2": nn.Parameter(torch.stack([p.linear2.weight.T.detach() for p in projs])),
                "g": nn.Parameter(torch.stack([p.layer_norm.weight.detach() for p in projs])),
                "b": nn.Parameter(torch.stack([p.layer_norm.bias.detach() for p in projs])),
            }
        )

    def _proj(self, P: nn.ParameterDict, x: torch.Tensor) -> torch.Tensor:
        h = torch.bmm(x, P["W1"])
        h = h + F.dropout(torch.bmm(F.gelu(h), P["W2"]), self.p_drop, self.training)
        h = F.layer_norm(h, h.shape[-1:])
        return F.normalize(h * P["g"][:, None] + P["b"][:, None], dim=-1)

    def losses(self, x_a: torch.Tensor, x_t: torch.Tensor, clamp: float = 100.0) -> torch.Tensor:
        """(K,) CLIP losses of batches x_a (K, B, d_a), x_t (K, B, d_t)."""
        E_a, E_t = self._proj(self.a, x_a), self._proj(self.t, x_t)
        C = torch.clamp(self.logit_scale.exp()[:, None, None] * torch.bmm(E_a, E_t.transpose(1, 2)), -clamp, clamp)
        K, B, _ = C.shape
        target = torch.arange(B).repeat(K)
        ce_a = F.cross_entropy(C.reshape(K * B, B), target, reduction="none").view(K, B).mean(1)
        ce_t = F.cross_entropy(C.transpose(1, 2).reshape(K * B, B), target, reduction="none").view(K, B).mean(1)
        return 0.5 * (ce_a + ce_t)

    def slice_state(self, k: int) -> dict:
        return {n: p.detach()[k].clone() for n, p in self.named_parameters()}

    def load_slice(self, k: int, state: dict) -> None:
        with torch.no_grad():
            for n, p in self.named_parameters():
                p[k] = state[n]


def clip_per_model(params: list[nn.Parameter], K: int, max_norm: float) -> None:
    """torch.nn.utils.clip_grad_norm_ for each model's slice (dim 0) on its own."""
    norms = torch.sqrt(sum(p.grad.reshape(K, -1).pow(2).sum(1) for p in params))
    coef = torch.clamp(max_norm / (norms + 1e-6), max=1.0)
    for p in params:
        p.grad.mul_(coef.view(K, *[1] * (p.grad.ndim - 1)))


def epoch_rows(train: np.ndarray, mode: str, seed: int, epoch: int) -> np.ndarray:
    """Row order of one epoch: every pair once (`pairs`); every clip once with one of its captions (`clips`); or a
    quarter of a pair permutation (`quarter`: four epochs make one pass over the pairs, so every dose of equal pair
    count has equal steps per epoch, which `clips` does not give when doses differ in clip count)."""
    if mode == "quarter":
        perm = np.random.default_rng([seed, epoch // 4, 11]).permutation(len(train))
        return np.array_split(perm, 4)[epoch % 4]
    rng = np.random.default_rng([seed, epoch, 11])
    if mode == "pairs":
        return rng.permutation(len(train))
    order = rng.permutation(len(train))  # the first row of each clip in a random order: a uniform caption
    _, first = np.unique(train[order, 0], return_index=True)
    return rng.permutation(order[first])


def frozen_phase(
    x_a: torch.Tensor,
    x_t: torch.Tensor,
    train: np.ndarray,
    val: np.ndarray,
    seeds: list[int],
    mode: str,
    rule: EarlyStopping,
    batch: int = 128,
    lr: float = 1e-4,
) -> dict:
    """Train K = len(seeds) projector pairs as one batched model until each one's validation loss stops improving."""
    K = len(seeds)
    heads = BatchedHeads(seeds, x_a.shape[1], x_t.shape[1])
    params = list(heads.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    states, best, curves = [StopState()] * K, [None] * K, [[] for _ in range(K)]
    t_train = t_val = 0.0
    epoch = 0
    while not all(s.stop for s in states):
        t0 = clock()
        heads.train()
        orders = [epoch_rows(train, mode, s, epoch) for s in seeds]
        n_steps = min(len(o) for o in orders) // batch
        for step in range(n_steps):
            rows = np.stack([train[o[step * batch : (step + 1) * batch]] for o in orders])  # (K, B, 2)
            loss = heads.losses(x_a[rows[..., 0]], x_t[rows[..., 1]]).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            clip_per_model(params, K, 100.0)
            opt.step()
        t_train += clock() - t0
        t0 = clock()
        v = val_losses(heads, x_a, x_t, val, batch)
        t_val += clock() - t0
        epoch += 1
        for k in range(K):
            if states[k].stop:
                continue
            curves[k].append(float(v[k]))
            states[k] = observe(states[k], float(v[k]), rule)
            if states[k].best_epoch == states[k].epochs:
                best[k] = heads.slice_state(k)
    for k in range(K):
        heads.load_slice(k, best[k])
    return {
        "heads": heads,
        "mode": mode,
        "K": K,
        "epochs_run": epoch,
        "steps_per_epoch": n_steps,
        "stop_epoch": [s.epochs for s in states],
        "best_epoch": [s.best_epoch for s in states],
        "best_val_loss": [s.best for s in states],
        "val_curves": curves,
        "train_s_per_epoch": t_train / epoch,
        "val_s_per_epoch": t_val / epoch,
        "s_per_epoch": (t_train + t_val) / epoch,
        "total_s": t_train + t_val,
    }


@torch.no_grad()
def val_losses(heads: BatchedHeads, x_a, x_t, val: np.ndarray, batch: int) -> np.ndarray:
    """Each model's CLIP loss over consecutive batches of the validation pairs, weighted by batch size."""
    heads.eval()
    K = heads.logit_scale.shape[0]
    tot, n = torch.zeros(K), 0
    for i in range(0, len(val), batch):
        r = val[i : i + batch]
        tot += heads.losses(x_a[r[:, 0]].expand(K, -1, -1), x_t[r[:, 1]].expand(K, -1, -1)) * len(r)
        n += len(r)
    return (tot / n).numpy()


# --- the GRU on cached trunk outputs -------------------------------------------------------------------------


@torch.no_grad()
def trunk_outputs(model, logmels: np.ndarray, batch: int = 64) -> torch.Tensor:
    """(clips, T/4, 128): the frozen convolutional trunk of the CRNN (eval mode), the input of its bi-GRU."""
    model.eval()
    out = []
    for i in range(0, len(logmels), batch):
        x = torch.from_numpy(np.asarray(logmels[i : i + batch], dtype=np.float32)).unsqueeze(1)
        out.append(model.features(x).transpose(1, 2).flatten(2))
    return torch.cat(out)


class GruClap(nn.Module):
    """The CRNN's bi-GRU (x_a = time-mean of its output) + the two projectors and temperature of one seed."""

    def __init__(self, gru: nn.GRU, heads: BatchedHeads, k: int = 0):
        super().__init__()
        self.gru = copy.deepcopy(gru)
        self.a, self.t = Projection(256), Projection(heads.t["W1"].shape[1])
        with torch.no_grad():
            for proj, P in ((self.a, heads.a), (self.t, heads.t)):
                proj.linear1.weight.copy_(P["W1"][k].T)
                proj.linear2.weight.copy_(P["W2"][k].T)
                proj.layer_norm.weight.copy_(P["g"][k])
                proj.layer_norm.bias.copy_(P["b"][k])
        self.logit_scale = nn.Parameter(heads.logit_scale.detach()[k].clone())

    def x_a(self, trunk: torch.Tensor) -> torch.Tensor:
        return self.gru(trunk)[0].mean(1)

    def loss(self, trunk: torch.Tensor, x_t: torch.Tensor) -> torch.Tensor:
        from clap_lib.loss import clip_loss

        E_a = F.normalize(self.a(self.x_a(trunk)), dim=-1)
        E_t = F.normalize(self.t(x_t), dim=-1)
        return clip_loss(E_a, E_t, self.logit_scale)


def fine_tune(
    model: GruClap,
    trunk: torch.Tensor,
    x_t: torch.Tensor,
    train: np.ndarray,
    val: np.ndarray,
    mode: str,
    rule: EarlyStopping,
    lr: float,
    seed: int = 0,
    batch: int = 128,
) -> dict:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    state, best, curve, t_train, t_val, epoch = StopState(), None, [], 0.0, 0.0, 0

    @torch.no_grad()
    def validate() -> float:
        model.eval()
        ls = [
            (model.loss(trunk[val[i : i + batch, 0]], x_t[val[i : i + batch, 1]]).item(), len(val[i : i + batch]))
            for i in range(0, len(val), batch)
        ]
        return sum(v * n for v, n in ls) / sum(n for _, n in ls)

    start = validate()
    # the phase-1 state is epoch 0: a fine-tuning that only raises the validation loss leaves the model as it was
    state, best = StopState(best=start, best_epoch=0), copy.deepcopy(model.state_dict())
    while not state.stop:
        t0 = clock()
        model.train()
        order = epoch_rows(train, mode, seed, 1000 + epoch)
        for step in range(len(order) // batch):
            r = train[order[step * batch : (step + 1) * batch]]
            loss = model.loss(trunk[r[:, 0]], x_t[r[:, 1]])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 100.0)
            opt.step()
        t_train += clock() - t0
        t0 = clock()
        curve.append(validate())
        t_val += clock() - t0
        epoch += 1
        state = observe(state, curve[-1], rule)
        if state.best_epoch == state.epochs:
            best = copy.deepcopy(model.state_dict())
    model.load_state_dict(best)
    model.eval()
    return {
        "lr": lr,
        "mode": mode,
        "val_loss_start": start,
        "val_curve": curve,
        "stop_epoch": state.epochs,
        "best_epoch": state.best_epoch,
        "best_val_loss": state.best,
        "train_s_per_epoch": t_train / epoch,
        "val_s_per_epoch": t_val / epoch,
        "total_s": t_train + t_val,
    }


def eval_cost(artifacts: Path, cfg) -> dict:
    """CPU seconds of what a CLAP stage does after training, on a cached run's embeddings: the paper's metrics
    (zero-shot accuracy, silhouettes, S with its permutation null) and the four T-SNEs of the figures."""
    from clap_lib.pipeline.evaluation import run_metrics, tsne_2d

    run = next(d for d in (artifacts / "clap").iterdir() if (d / "embeddings.npz").is_file())
    emb = dict(np.load(run / "embeddings.npz"))
    t0 = clock()
    run_metrics(emb, cfg.split, cfg)
    t1 = clock()
    for k in ("x_a", "E_a", "x_t", "E_t"):
        tsne_2d(emb[k], cfg.seed)
    return {"metrics_s": t1 - t0, "tsne_s": clock() - t1, "n_eval_clips": int(len(emb["x_a"]))}


# --- main ------------------------------------------------------------------------------------------------------


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--artifacts", default="artifacts")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--patience", type=int, default=3)
    ap.add_argument("--max-epochs", type=int, default=200)
    ap.add_argument("--batched-seeds", type=int, default=5)
    ap.add_argument("--gru-lr", type=float, nargs="+", default=[1e-4])
    ap.add_argument("--gru-max-epochs", type=int, default=30)
    ap.add_argument("--parts", default="frozen,batched,gru")
    ap.add_argument("--modes", default="pairs,clips,quarter", help="epoch kinds of the frozen-phase comparison")
    ap.add_argument("--gru-mode", default="quarter")
    ap.add_argument("--quarter-patience", type=int, default=8, help="patience in quarter epochs")
    ap.add_argument("--frozen-lrs", type=float, nargs="+", default=[1e-4, 1e-3])
    ap.add_argument("--gru-pretrainings", default="dirty,none")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--x-t-cache", default=None, help="a .npy file to keep x_t in between calls")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    parts = set(a.parts.split(","))
    root = Path(a.data_root) if a.data_root else shared_data_dir()
    cfg = make_config("gpvad")
    split = cfg.split
    feats_dir, bb_dirs = stage_dirs(Path(a.artifacts))
    meta = read_esc50_meta(locate_esc50(root / "esc50" if root else None))
    ok = np.load(feats_dir / "ok.npy")
    pools = cp.class_pools(cp.real_caption_table(root / "captions" if root else None))
    dirty_all = cp.real_pairs(meta, ok, pools, cfg.captions_per_clip, cfg.seed)
    val_clips = validation_clips(dirty_all, split.target, cfg.clap.val_fraction, cfg.seed)
    dirty = dirty_all[~dirty_all["clip"].isin(val_clips)].reset_index(drop=True)
    val_table = dirty_all[dirty_all["clip"].isin(val_clips)]
    tables = {
        "dirty": dose_pairs(dirty, pools, split.target, 1.0, cfg.seed),
        "unseen": dose_pairs(dirty, pools, split.target, 0.0, cfg.seed),
    }
    captions = sorted(set(dirty_all["caption"]) | set(tables["unseen"]["caption"]))
    cache = Path(a.x_t_cache) if a.x_t_cache else None
    if cache is not None and cache.is_file() and json.loads(cache.with_suffix(".json").read_text()) == captions:
        x_t_np, text_s = np.load(cache), float("nan")  # encoded by an earlier call: not timed again
    else:
        x_t_np, text_s = encode_captions(cfg, captions)
        if cache is not None:
            np.save(cache, x_t_np)
            cache.with_suffix(".json").write_text(json.dumps(captions))
    x_t = torch.from_numpy(x_t_np)
    cap_row = {c: i for i, c in enumerate(captions)}
    rows = {k: index_pairs(t, cap_row) for k, t in tables.items()}
    val = index_pairs(val_table, cap_row)
    rule = EarlyStopping(patience=a.patience, max_epochs=a.max_epochs)

    def rule_of(mode: str) -> EarlyStopping:  # a quarter epoch is validated 4 times as often
        return EarlyStopping(a.quarter_patience, 4 * a.max_epochs) if mode == "quarter" else rule

    out: dict = {
        "machine": platform.machine(),
        "threads": a.threads,
        "clock": "process CPU seconds",
        "torch": torch.__version__,
        "split_target": list(split.target),
        "patience": a.patience,
        "pairs": {k: int(len(t)) for k, t in tables.items()},
        "val_pairs": int(len(val)),
        "val_clips": int(len(val_clips)),
        "train_clips": {k: int(t["clip"].nunique()) for k, t in tables.items()},
        "text": {"n_captions": len(captions), "seconds": text_s, "s_per_1000": 1000 * text_s / len(captions)},
    }
    print(json.dumps(out, indent=1), flush=True)
    x_a = {lvl: torch.from_numpy(np.load(bb_dirs[lvl] / "x_a.npy").astype(np.float32)) for lvl in ("dirty", "none")}
    heads: dict = {}
    if "frozen" in parts:
        runs = {}
        for level in ("dirty", "unseen"):
            for mode, lr in ((m, lr) for lr in a.frozen_lrs for m in a.modes.split(",")):
                r = frozen_phase(x_a["dirty"], x_t, rows[level], val, [cfg.seed], mode, rule_of(mode), lr=lr)
                if lr == 1e-4:
                    heads[(level, mode)] = r.pop("heads")
                r.pop("heads", None)
                runs[f"gpv_f/{level}/{mode}/lr={lr:g}"] = r | {"lr": lr, "patience": rule_of(mode).patience}
                print(
                    f"frozen gpv_f/{level}/{mode}/lr={lr:g}: stop {r['stop_epoch']} best {r['best_epoch']} "
                    f"val {r['best_val_loss'][0]:.4f} {r['s_per_epoch']:.2f} s/epoch, {r['total_s']:.1f} s",
                    flush=True,
                )
        for level in ("dirty", "unseen"):
            r = frozen_phase(x_a["none"], x_t, rows[level], val, [cfg.seed], a.gru_mode, rule_of(a.gru_mode))
            heads[("none", level)] = r.pop("heads")
            runs[f"none/{level}/{a.gru_mode}"] = r
            print(
                f"frozen none/{level}/{a.gru_mode}: stop {r['stop_epoch']} val {r['best_val_loss'][0]:.4f} "
                f"{r['s_per_epoch']:.2f} s/epoch, {r['total_s']:.1f} s",
                flush=True,
            )
        out["frozen"] = runs
    if "batched" in parts:
        K = a.batched_seeds
        rb = frozen_phase(x_a["dirty"], x_t, rows["dirty"], val, list(range(K)), a.gru_mode, rule_of(a.gru_mode))
        rb.pop("heads")
        r1 = frozen_phase(
            x_a["dirty"], x_t, rows["dirty"], val, [0], a.gru_mode, EarlyStopping(rb["epochs_run"], rb["epochs_run"])
        )
        r1.pop("heads")
        out["batched"] = {
            "K": K,
            "batched": rb,
            "single_same_epochs": {
                k: r1[k] for k in ("train_s_per_epoch", "val_s_per_epoch", "s_per_epoch", "epochs_run")
            },
            "speedup_per_seed_epoch": K * r1["s_per_epoch"] / rb["s_per_epoch"],
        }
        print(
            f"batched K={K}: {rb['s_per_epoch']:.2f} s/epoch vs K=1 {r1['s_per_epoch']:.2f}: "
            f"x{out['batched']['speedup_per_seed_epoch']:.2f} per seed-epoch; stops {rb['stop_epoch']}",
            flush=True,
        )
    if "gru" in parts:
        spec = backbones.spec(cfg.backbone)
        logmels = np.load(feats_dir / "logmels.npy", mmap_mode="r")
        test = np.flatnonzero(
            (meta["fold"] == EVAL_FOLD).to_numpy() & ok & meta["category"].isin(split.target).to_numpy()
        )
        y = meta.loc[test, "category"].to_numpy()
        gru_out = {}
        for pre in a.gru_pretrainings.split(","):
            model = spec.from_state(
                cfg, torch.load(bb_dirs[pre] / "backbone.pt", map_location="cpu", weights_only=True)
            )
            t0 = clock()
            trunk = trunk_outputs(model, logmels)
            trunk_s = clock() - t0
            with torch.no_grad():
                x_before = model.gru(trunk[test])[0].mean(1).numpy()
            assert np.allclose(x_before, x_a[pre][test].numpy(), atol=1e-4)  # the cached trunk reproduces x_a
            res = {
                "trunk_s_all_clips": trunk_s,
                "trunk_MB": trunk.numel() * 4 / 2**20,
                "sil_x_a_before": silhouette(x_before, y),
            }
            for level in ("dirty", "unseen"):
                h = heads.get((level, a.gru_mode)) if pre == "dirty" else heads.get(("none", level))
                if h is None:
                    h = frozen_phase(x_a[pre], x_t, rows[level], val, [cfg.seed], a.gru_mode, rule_of(a.gru_mode))[
                        "heads"
                    ]
                for lr in a.gru_lr:
                    m = GruClap(model.gru, h)
                    r = fine_tune(
                        m,
                        trunk,
                        x_t,
                        rows[level],
                        val,
                        a.gru_mode,
                        EarlyStopping(rule_of(a.gru_mode).patience, a.gru_max_epochs),
                        lr,
                    )
                    with torch.no_grad():
                        x_after = m.x_a(trunk[test]).numpy()
                    cos = np.sum(x_after * x_before, 1) / (
                        np.linalg.norm(x_after, axis=1) * np.linalg.norm(x_before, axis=1)
                    )
                    r |= {"sil_x_a_after": silhouette(x_after, y), "x_a_cosine_to_before_median": float(np.median(cos))}
                    res[f"{level}/lr={lr:g}"] = r
                    res.setdefault("_x_after", {})[f"{level}/lr={lr:g}"] = x_after
                    print(
                        f"gru {pre}/{level} lr {lr:g}: val {r['val_loss_start']:.4f} -> {r['best_val_loss']:.4f}, "
                        f"stop {r['stop_epoch']} (best {r['best_epoch']}), {r['train_s_per_epoch']:.1f}+"
                        f"{r['val_s_per_epoch']:.1f} s/epoch; sil x_a {res['sil_x_a_before']:.3f} -> "
                        f"{r['sil_x_a_after']:.3f}, cos {r['x_a_cosine_to_before_median']:.3f}",
                        flush=True,
                    )
            xs = res.pop("_x_after")
            for lr in a.gru_lr:
                d, u = xs[f"dirty/lr={lr:g}"], xs[f"unseen/lr={lr:g}"]
                cos = np.sum(d * u, 1) / (np.linalg.norm(d, axis=1) * np.linalg.norm(u, axis=1))
                res[f"dirty_vs_unseen/lr={lr:g}"] = {
                    "x_a_cosine_median": float(np.median(cos)),
                    "max_abs_diff": float(np.abs(d - u).max()),
                }
            gru_out["gpv_f" if pre == "dirty" else "random"] = res
        out["gru"] = gru_out
    if "eval" in parts:
        out["eval"] = eval_cost(Path(a.artifacts), cfg)
        print(f"eval per run: {out['eval']}", flush=True)
    for r in out.get("frozen", {}).values():
        r["val_curves"] = [[round(v, 5) for v in c] for c in r["val_curves"]]
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1, default=float))
    print(f"wrote {a.out}")
    return out


if __name__ == "__main__":
    main()
