"""The audio backbones in the book: where each came from, how separable its x_a is, what its own AudioSet head
does as a classifier (the shortcut), and the leakage audit of every backbone (all read from the grid folder)."""

from __future__ import annotations

import json

import pandas as pd

from clap_lib.config.profiles import BACKBONE_NAMES
from clap_lib.pipeline.paper_strength import PUBLISHED_MAP  # noqa: F401 (the book's published mAP figures)
from clap_lib.pipeline.results import GridResult
from clap_lib.report.artifacts import _stages
from clap_lib.report.tables import fmt


def _level(name: str) -> str:
    return BACKBONE_NAMES.get(name, name)


def provenance_table(grid: GridResult) -> pd.DataFrame:
    """Each backbone of the run: the weights it starts from and what they were trained on."""
    rows = []
    for level, d in _stages(grid)["backbone"].items():
        p = json.loads((d / "provenance.json").read_text())
        rows.append(
            {
                "backbone": _level(level),
                "weights": p.get("file", "-"),
                "trained on": p.get("trained on", "-"),
                "trained here": p.get("trained here", "no"),
                "BatchNorm statistics": p.get("batchnorm", "-"),
                "source setting": p.get("source", ""),
            }
        )
    return pd.DataFrame(rows).set_index("backbone")


def separability(grid: GridResult) -> pd.DataFrame | None:
    p = grid.dir / "separability.csv"
    return pd.read_csv(p) if p.is_file() else None


def separability_table(grid: GridResult, digits: int = 3) -> pd.DataFrame | None:
    """x_a of each backbone on all ESC-50 clips, official 5-fold CV: silhouette, linear probe, 1-NN."""
    df = separability(grid)
    if df is None:
        return None
    rows = []
    for r in df.to_dict("records"):
        rows.append(
            {
                "backbone": _level(r["backbone"]),
                "trained on": r["trained on"],
                "silhouette of x_a": fmt(r["silhouette"], r["silhouette_lo"], r["silhouette_hi"], digits),
                "linear probe accuracy": fmt(r["probe"], r["probe_lo"], r["probe_hi"], digits),
                "1-NN accuracy": fmt(r["nn1"], r["nn1_lo"], r["nn1_hi"], digits),
                "chance": fmt(r["chance"], digits=3),
            }
        )
    return pd.DataFrame(rows).set_index("backbone")


def band_control(grid: GridResult) -> dict | None:
    """The band-limited control of the dirty network (clap_lib.analysis.band_control), if the run made one."""
    p = grid.dir / "band_control.json"
    return json.loads(p.read_text()) if p.is_file() else None


def band_control_table(grid: GridResult, digits: int = 3) -> pd.DataFrame | None:
    c = band_control(grid)
    if c is None:
        return None
    df = pd.DataFrame(c["rows"]).set_index("measure")
    df["change"] = df["bands above 8 kHz at log(eps)"] - df["as run"]
    return df.round(digits)


def shortcut(grid: GridResult) -> dict | None:
    p = grid.dir / "shortcut.json"
    return json.loads(p.read_text()) if p.is_file() else None


def shortcut_table(grid: GridResult, digits: int = 3) -> pd.DataFrame | None:
    """A published head used directly as a supervised classifier of the target classes T: no CLAP training."""
    sc = shortcut(grid)
    if not sc:
        return None
    rows = []
    for level, r in sc.items():
        rows.append(
            {
                "backbone": _level(level),
                "weights": r.get("weights", "-"),
                "accuracy on T (fold 5)": fmt(r["accuracy"], r["lo"], r["hi"], digits),
                "classes scored": r["n_classes"],
                "clips": r["n_clips"],
                "chance": fmt(r["chance"], digits=3),
                "classes without an AudioSet match": ", ".join(r["unmatched"]) or "none",
            }
        )
    return pd.DataFrame(rows).set_index("backbone")


def paper_strength(grid: GridResult) -> dict | None:
    """The shortcut-at-paper-strength stage of this grid (clap_lib.pipeline.paper_strength.paper_strength_for)."""
    from clap_lib.pipeline.paper_strength import paper_strength_for

    return paper_strength_for(grid.dir)


def paper_strength_paper_dd() -> float:
    """The paper's Table 1 dirty/dirty zero-shot accuracy, as printed (clap_lib.analysis.paper_tables)."""
    from clap_lib.analysis import paper_tables

    return float(paper_tables.load().set_index(["pretraining", "training"]).loc[("dirty", "dirty"), "accuracy"])


def paper_strength_table(grid: GridResult, digits: int = 3) -> pd.DataFrame | None:
    """EfficientAT mn04_as's own AudioSet head as a supervised classifier of ESC-50 (all 50 classes on every clip, T
    on fold 5), beside this run's dirty backbone's shortcut and the paper's Table 1 dirty/dirty (a printed figure)."""
    ps = paper_strength(grid)
    if not ps or "shortcut" not in ps:
        return None
    wrong, mapped = "accuracy, unmatched classes counted wrong", "accuracy over the mapped classes"
    rows = []
    for key, what, where in (("all_50", "all 50 classes", "all clips"), ("T_fold5", "T", "fold 5")):
        r = ps["shortcut"][key]
        e = r["every_clip"]
        rows.append(
            {
                "classifier": f"EfficientAT mn04_as's AudioSet head, {what} (no CLAP)",
                "classes": what,
                "clips": f"{where} ({e['n_clips']})",
                wrong: fmt(e["accuracy"], e["lo"], e["hi"], digits),
                mapped: fmt(r["accuracy"], r["lo"], r["hi"], digits) + f" ({r['n_classes']} classes)",
            }
        )
    for level, r in (shortcut(grid) or {}).items():
        rows.append(
            {
                "classifier": f"{_level(level)} ({r.get('weights', '-')})'s AudioSet head, T (no CLAP, this run)",
                "classes": "T",
                "clips": f"fold 5 ({r['n_clips']} of mapped classes)",
                wrong: "-",
                mapped: fmt(r["accuracy"], r["lo"], r["hi"], digits) + f" ({r['n_classes']} classes)",
            }
        )
    paper = paper_strength_paper_dd()
    rows.append(
        {
            "classifier": "the paper: CLAP, dirty pretraining / dirty training, zero-shot (Table 1, printed)",
            "classes": "ESC-50 (the paper's evaluation)",
            "clips": "-",
            wrong: fmt(float(paper), digits=2),
            mapped: "-",
        }
    )
    return pd.DataFrame(rows).set_index("classifier")


def network_audit_table(grid: GridResult, digits: int = 3) -> tuple[pd.DataFrame, dict] | None:
    p = grid.dir / "network_audit.csv"
    if not p.is_file():
        return None
    df = pd.read_csv(p)
    df["backbone"] = df["backbone"].map(_level)
    df = (
        df.rename(
            columns={
                "label information": "ESC-50 label information in its training (rank)",
                "audit silhouette": "audit: silhouette of x_a",
                "probe": "linear probe accuracy",
                "nn1": "1-NN accuracy",
            }
        )
        .set_index("backbone")
        .round(digits)
    )
    return df, json.loads((grid.dir / "network_audit.json").read_text())
