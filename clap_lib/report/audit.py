"""The leakage audit's report (audit.html with a T-SNE image, audit.json) and its command,
`python -m clap_lib audit EMBEDDINGS [--references results.csv] --out DIR` (the audit itself:
:mod:`clap_lib.analysis.audit`)."""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from clap_lib.analysis.audit import AuditResult, audit
from clap_lib.analysis.audit_inputs import esc50_targets, load_embeddings, read_references


def _tsne_png(result: AuditResult) -> str | None:
    if result.tsne is None:
        return None
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 6))
    FigureCanvasAgg(fig)  # Agg canvas without pyplot: no global backend state
    ax = fig.add_subplot()
    uniq = np.unique(result.clip_classes)
    cmap = colormaps["tab20"]
    for i, c in enumerate(uniq):
        pts = result.tsne[result.clip_classes == c]
        ax.scatter(pts[:, 0], pts[:, 1], s=8, color=cmap(i % 20), alpha=0.8)
        ax.annotate(c, pts.mean(axis=0), fontsize=6, ha="center")
    ax.set_title(f"T-SNE (cosine) of the audio embeddings, silhouette {result.silhouette:.3f}")
    ax.set_xticks([])
    ax.set_yticks([])
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _summary_rows(result: AuditResult) -> pd.DataFrame:
    rows = [
        ("clips", result.n_clips),
        ("classes", result.n_classes),
        ("dimension", result.dim),
        ("silhouette (cosine)", result.silhouette),
    ]
    if result.n_candidates is not None:
        rows += [
            ("candidate labels", result.n_candidates),
            ("zero-shot clips", result.n_zero_shot_clips),
            ("zero-shot accuracy", result.accuracy),
            ("random guess", result.random_guess),
        ]
    if result.topo_S is not None:
        rows += [
            ("topological similarity S (audio label means vs text)", result.topo_S),
            ("k*", result.topo_k),
            ("chance S (mean of the permutation null of max_k S_k)", result.topo_chance),
            ("95th percentile of that null", result.topo_null_q95),
            ("permutation p of S", result.topo_p),
        ]
    return pd.DataFrame(
        [(k, "n/a" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))) for k, v in rows],
        columns=["quantity", "value"],
    )


def _table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, float_format=lambda v: f"{v:.4f}", na_rep="n/a", border=0, classes="t")


def write_report(result: AuditResult, out_dir: str | Path) -> Path:
    """Write ``audit.html`` (self-contained: inline CSS, T-SNE as a base64 PNG, no scripts) and ``audit.json``
    into ``out_dir``; returns the HTML path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "audit.json").write_text(json.dumps(result.numbers(), indent=2))
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Leakage audit</title><style>",
        "body{font-family:sans-serif;max-width:60em;margin:2em auto}table.t{border-collapse:collapse}",
        "table.t td,table.t th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}",
        "</style></head><body><h1>Leakage audit</h1>",
        "<h2>Summary</h2>",
        _table(_summary_rows(result)),
    ]
    if result.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in result.notes) + "</ul>")
    if result.positions is not None:
        parts += [
            "<h2>Position between the reference backbones</h2>",
            "<p>position = (this model - none) / (dirty - none): 0 = like the randomly initialised backbone, "
            "1 = like the backbone pretrained on every ESC-50 class (reference means over training data); "
            "empty where the two references differ by less than 0.05, too little to place a model between.</p>",
            _table(result.positions),
        ]
    png = _tsne_png(result)
    if png:
        parts += ["<h2>T-SNE</h2>", f"<img alt='T-SNE of the audio embeddings' src='data:image/png;base64,{png}'>"]
    pcs = pd.DataFrame(
        sorted(result.per_class_silhouette.items(), key=lambda kv: kv[1]), columns=["class", "silhouette"]
    )
    parts += ["<h2>Silhouette per class</h2>", _table(pcs)]
    if result.references is not None:
        cols = [
            c
            for c in (
                "pretraining",
                "training",
                "accuracy",
                "random_guess",
                "sil_x_a",
                "sil_E_a",
                "topo_xa_Ea",
                "topo_xt_Et",
                "topo_Ea_Et",
            )
            if c in result.references.columns
        ]
        parts += ["<h2>Reference results</h2>", _table(result.references[cols])]
    parts.append("</body></html>")
    path = out / "audit.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m clap_lib.analysis.audit", description=__doc__.split("\n\n")[0])
    p.add_argument("embeddings", help=".npz (audio, files [, text, labels]), .csv/.parquet (file + dims) or .npy")
    p.add_argument("--files", help="text file of clip names, one a line (for .npy embeddings)")
    p.add_argument("--meta", help="ESC-50 meta csv (esc50.csv) mapping file names to targets and folds")
    p.add_argument("--references", help="a grid's results.csv (or its folder) to compare with")
    p.add_argument(
        "--classes",
        help="comma-separated classes to restrict to, or 'references' for the "
        "reference run's target classes (from its config.json)",
    )
    p.add_argument("--fold", type=int, help="keep only clips of this ESC-50 fold (the project evaluates fold 5)")
    p.add_argument("--out", default="audit", help="output folder (default: ./audit)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the T-SNE and the permutations (0..2**32-1)")
    return p


def _seed(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer in 0..2**32-1, got {text!r}") from None
    if not 0 <= v < 2**32:
        raise argparse.ArgumentTypeError(f"expected an integer in 0..2**32-1, got {v}")
    return v


def _one_line(e: BaseException) -> str:
    msg = e.args[0] if isinstance(e, KeyError) and e.args else e  # KeyError's str() adds quotes
    return " ".join(str(msg).split()) or type(e).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry: ``python -m clap_lib.analysis.audit EMBEDDINGS [--meta esc50.csv] [--references results.csv] [--out DIR]``.
    Returns 0; 2 with a one-line error on stderr for bad inputs (no traceback); 130 on Ctrl-C."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile) as e:
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    """The audit of the parsed arguments: report written, summary printed; input errors raise."""
    emb = load_embeddings(args.embeddings, args.files)
    targets, folds = esc50_targets(emb.files, args.meta)
    audio = emb.audio
    if args.fold is not None:
        keep = folds == args.fold
        if not keep.any():
            raise ValueError(f"no clip of fold {args.fold} in {args.embeddings}")
        audio, targets = audio[keep], targets[keep]
    refs, ref_classes = read_references(args.references) if args.references else (None, None)
    classes = None
    if args.classes == "references":
        if not ref_classes:
            raise ValueError("--classes references needs --references with a config.json beside results.csv")
        classes = ref_classes
    elif args.classes:
        classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    result = audit(audio, targets, emb.text, emb.label_names, refs, args.seed, classes, notes=emb.notes)
    path = write_report(result, args.out)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    acc = "n/a" if result.accuracy is None else f"{result.accuracy:.3f}"
    print(f"silhouette {result.silhouette:.3f}, zero-shot accuracy {acc}; report: {path}")
    return 0
