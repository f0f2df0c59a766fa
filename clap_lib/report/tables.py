"""Tables of the book, in the paper's layout (rows: audio pretraining; columns: CLAP training data), with
intervals shown as `0.61 [0.55, 0.66]` when the results carry `<metric>_lo` / `<metric>_hi`."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from clap_lib.analysis import metrics, paper_tables
from clap_lib.config.experiment import parse_source
from clap_lib.config.levels import PRETRAININGS, TRAININGS
from clap_lib.config.profiles import make_config
from clap_lib.data.esc50 import ESC50_CLASSES
from clap_lib.pipeline.results import GridResult
from clap_lib.report.artifacts import LABELS, TOPO, RunArtifacts, _seconds, _stages


def fmt(value: float, lo: float | None = None, hi: float | None = None, digits: int = 3) -> str:
    """`0.612` or, with an interval, `0.612 [0.550, 0.660]`."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    s = f"{value:.{digits}f}"
    if lo is not None and hi is not None and not (np.isnan(lo) or np.isnan(hi)):
        s += f" [{lo:.{digits}f}, {hi:.{digits}f}]"
    return s


def _cell(row: pd.Series, col: str, digits: int) -> str:
    lo, hi = row.get(f"{col}_lo"), row.get(f"{col}_hi")
    return fmt(float(row[col]), None if lo is None else float(lo), None if hi is None else float(hi), digits)


def grid_table(results: pd.DataFrame, col: str, digits: int = 3) -> pd.DataFrame:
    """The paper's layout: rows = CLAP training data, columns = audio pretraining. Cells with intervals if present."""
    out = pd.DataFrame(index=pd.Index([t for t in TRAININGS if t in set(results["training"])], name="training data"),
                       columns=pd.Index([p for p in PRETRAININGS if p in set(results["pretraining"])],
                                        name="audio pretraining"), dtype=object)
    for _, row in results.iterrows():
        out.loc[row["training"], row["pretraining"]] = _cell(row, col, digits)
    return out


def table1(results: pd.DataFrame) -> pd.DataFrame:
    """Table 1: zero-shot accuracy on fold-5 clips of the target classes, plus the random guess."""
    t = grid_table(results, "accuracy")
    t["random guess"] = fmt(float(results["random_guess"].iloc[0]))
    return t


def long_table(results: pd.DataFrame, cols: dict[str, str], digits: int = 3) -> pd.DataFrame:
    """One row per combination, one column per metric (formatted); `cols` maps column -> header."""
    rows = []
    for _, r in results.sort_values(["pretraining", "training"], key=_order_key).iterrows():
        rows.append({"audio pretraining": r["pretraining"], "training data": r["training"]}
                    | {head: _cell(r, c, digits) for c, head in cols.items()})
    return pd.DataFrame(rows).set_index(["audio pretraining", "training data"])


def _order_key(s: pd.Series) -> pd.Series:
    order = PRETRAININGS if s.name == "pretraining" else TRAININGS
    return s.map(order.index)


def table2(results: pd.DataFrame) -> pd.DataFrame:
    """Table 2: cosine silhouette of x_a and of E_a (fold-5 clips of T, labelled by class)."""
    return long_table(results, {"sil_x_a": "silhouette of x_a", "sil_E_a": "silhouette of E_a"})


def table3(results: pd.DataFrame) -> pd.DataFrame:
    """Table 3: topological similarity S = max_k S_k on label-wise means."""
    return long_table(results, TOPO)


def results_frame(results: pd.DataFrame) -> pd.DataFrame:
    """The numeric results table (6 combinations x metrics), in the paper's order."""
    cols = ["pretraining", "training", "accuracy", "random_guess", "sil_x_a", "sil_E_a", *TOPO, "n_pairs",
            "n_target_clip_pairs", "n_eval_clips", "n_skipped_clips"]
    df = results.sort_values(["pretraining", "training"], key=_order_key)
    return df[[c for c in cols if c in df]].reset_index(drop=True).rename(columns=LABELS)


def topo_table(results: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """S = max_k S_k of each pair of spaces with what it must be read against: the chance level of the max
    (permutation null), k* and whether k* sits on the window's edge, and the edge-free excess over chance
    max_k (S_k - chance_k) with its interval (metrics.table_metrics)."""
    rows = []
    for _, r in results.sort_values(["pretraining", "training"], key=_order_key).iterrows():
        for key, label in TOPO.items():
            if key not in r:
                continue
            edge = r.get(f"{key}_k_edge")
            rows.append({"audio pretraining": r["pretraining"], "training data": r["training"], "spaces": label,
                         "S": _cell(r, key, digits),
                         "chance of S": fmt(r.get(f"{key}_chance", np.nan), digits=digits),
                         "k*": int(r[f"{key}_k"]) if pd.notna(r.get(f"{key}_k")) else "-",
                         "k* on the window's edge": ("yes" if bool(edge) else "no") if pd.notna(edge) else "-",
                         "excess over chance": _cell(r, f"{key}_excess", digits) if f"{key}_excess" in r else "-"})
    return pd.DataFrame(rows).set_index(["audio pretraining", "training data", "spaces"])


def correlation_table(correlations: dict) -> pd.DataFrame:
    names = {"acc_vs_sil_E_a": "accuracy vs silhouette E_a",
             "logacc_vs_topo_Ea_Et": "log accuracy vs S(E_a, E_t)"}
    rows = []
    for key, label in names.items():
        c = correlations.get(key)
        if not c:
            continue
        row = {"correlation": label, "Pearson r": fmt(c["r"]), "p (parametric)": fmt(c["p"]), "n": c["n"]}
        if "p_perm" in c:
            row["p (permutation)"] = fmt(c["p_perm"])
        if "ci" in c:
            row["95% bootstrap CI"] = f"[{c['ci'][0]:.3f}, {c['ci'][1]:.3f}]"
        rows.append(row)
    return pd.DataFrame(rows).set_index("correlation") if rows else pd.DataFrame()


def correlation_sentence(c: dict | None, what: str) -> str:
    """A clause on one correlation that claims no more than its interval allows: a direction only when the 95 %
    bootstrap interval over combinations excludes 0."""
    if not c or not isinstance(c.get("r"), float) or c["r"] != c["r"]:
        return f"its correlation with {what} cannot be computed on this run"
    r, n = c["r"], c["n"]
    p = f" (permutation p = {c['p_perm']:.3f})" if "p_perm" in c else ""
    if "ci" not in c:
        return f"its Pearson r with {what} is {r:.2f} over n = {n} combinations{p}, with no interval"
    lo, hi = c["ci"]
    iv = f"its 95 % interval over the n = {n} combinations, [{lo:.2f}, {hi:.2f}]"
    if lo > 0 or hi < 0:
        return f"it {'rises' if r > 0 else 'falls'} with {what}: Pearson r = {r:.2f}, {iv}{p}"
    return f"its Pearson r with {what} is {r:.2f}, but {iv}, includes 0{p}: this run shows no correlation"


def _weights_text(config: dict, level: str) -> str:

    src = parse_source(config["weights"][level])
    p = config["pretrain"]
    parts = []
    if src.file is not None:
        from clap_lib.models import backbones

        info = backbones.spec(config["backbone"]).weights_info(src.file)
        parts.append(f"published {info['file']} ({info['trained on']})")
    if src.train is not None:
        what = {"all": "all 50 ESC-50 classes", "background": "the background classes B only",
                "audioset_clean": "AudioSet without the ESC-50 classes"}[src.train]
        if src.t_fraction:  # the pretraining dose (issue 21)
            what = f"the background classes B plus {src.t_fraction:g} of the T classes' clips"
        parts.append(f"trained here on {what}" + (", folds 1-4" if src.train != "audioset_clean" else "")
                     + f", {p['epochs']} epochs, Adam {p['lr']:g}, batch {p['batch_size']}")
    return " + ".join(parts) or "random initialisation (seeded)"


def recipe_table(config: dict) -> pd.DataFrame:
    """The CLAP training recipe as the paper states it, next to the values this run used (from its config)."""
    c, a = config["clap"], config["audio"]
    unfrozen = ("until validation loss stops improving" if c["max_unfrozen_epochs"] >= 100 else
                f"at most {c['max_unfrozen_epochs']} epochs, early stop after {c['early_stop_patience']} "
                f"without improvement")
    backbone = {"cnn14": f"CNN14 (PANNs), width {config['width']:g}",
                "crnn": "GPVAD CRNN (Dinkel et al.), 5 conv blocks + bi-GRU, x_a = time-mean of the GRU output"}
    front = (f"{a['n_mels']} mels, window {a['n_fft']}, hop {a['hop']}, {a['fmin']:g}-{a['fmax']:g} Hz, 10 log10"
             if a["front_end"] == "panns" else
             f"{a['n_mels']} Slaney mels, FFT {a['n_fft']}, window {a['win_length']}, hop {a['hop']}, "
             f"0-{a['fmax']:g} Hz, log(mel + eps) (GPVAD); ESC-50 here is 16 kHz, so bands above 8 kHz are empty")
    norm = "zero mean / unit variance" if a["waveform_norm"] == "standardise" else "as recorded (GPVAD's input)"
    captions = ("the hand-written caption bank (clap_lib/resources), every caption of the clip's class"
                if config["captions"] == "bank" else
                f"{config['captions_per_clip']} real AudioCaps / Clotho captions of the clip's class per clip")
    rows = [
        ("audio backbone", "CNN14 (PANNs), width 1", backbone[config["backbone"]]),
        ("audio pretraining dirty", "AudioSet, all labels (PANNs checkpoint)", _weights_text(config, "dirty")),
        ("audio pretraining clean", "AudioSet without the ESC-50 classes", _weights_text(config, "clean")),
        ("audio pretraining none", "random initialisation", _weights_text(config, "none")),
        ("text backbone", "bert-base-uncased, [CLS]", f"{config['text_model']}, [CLS]"),
        ("training pairs", "Clotho, AudioCaps, FSD50K, MACS", "ESC-50 folds 1-4 x " + captions
         if config["profile"] != "paper" else "Clotho, AudioCaps, FSD50K, MACS"),
        ("projectors", "MLP to 1024-d, L2-normalised", f"MLP to {config['d_embed']}-d, L2-normalised"),
        ("frozen backbones", "first 5 epochs, Adam 1e-4", f"first {c['frozen_epochs']} epochs, Adam {c['frozen_lr']:g}"),
        ("unfrozen backbones", "Adam 1e-5 until validation loss stops improving",
         f"Adam {c['unfrozen_lr']:g}, {unfrozen}"
         + ("" if c["unfrozen_pair_fraction"] >= 1 else f", {c['unfrozen_pair_fraction']:.3g} of the pairs per epoch")),
        ("gradient clipping", "norm 100", f"norm {c['grad_clip']:g}"),
        ("logit clamp", "C in [-100, 100]", f"C in [-{c['logit_clamp']:g}, {c['logit_clamp']:g}]"),
        ("LR schedule", "ReduceLROnPlateau, factor 0.1, patience 10",
         f"ReduceLROnPlateau, factor {c['plateau_factor']:g}, patience {c['plateau_patience']}"),
        ("batch size", "128", str(c["batch_size"])),
        ("audio input", "5 s at 44.1 kHz, zero-padded, zero mean / unit variance",
         f"{a['clip_seconds']:g} s at {a['sample_rate'] / 1000:g} kHz, zero-padded, {norm}"),
        ("log-mel front end", "64 mels, window 1024, hop 320, 50-14000 Hz", front),
        ("validation split", "random 20 % of the pairs", f"random {c['val_fraction']:.0%} of the training clips "
         "(all captions of a clip on one side)"
         + ("" if c["max_val_pairs"] is None else f", at most {c['max_val_pairs']} pairs scored per epoch")),
    ]
    if config["backbone"] == "cnn14":
        rows.append(("CNN14 dropout", "0.2 after each block, 0.5 around fc1 (PANNs)",
                     f"{config['cnn_dropout']:g} after each block, {config['cnn_fc_dropout']:g} around fc1"))
    rows.append(("BatchNorm while frozen", "not stated (frozen = no gradient)",
                 "statistics re-estimated on the training clips, then eval mode (x_a computed once)"
                 if config["profile"] != "paper" else "running statistics of the backbone, eval mode"))
    return pd.DataFrame(rows, columns=["item", "paper", "this run"]).set_index("item")


def model_size_table(config: dict) -> pd.DataFrame:
    """Parameter counts of the run's model parts, built from the config with random weights: no weight file is
    read (the text encoder is instantiated from its configuration only)."""
    from transformers import AutoConfig, AutoModel

    from clap_lib.models import backbones
    from clap_lib.models.clap import Projection
    from clap_lib.models.text import resolve_text_model

    cfg = make_config(config["profile"], {"backbone": config["backbone"], "width": str(config["width"]),
                                          "audio.n_mels": str(config["audio"]["n_mels"])})
    spec = backbones.spec(cfg.backbone)
    audio = spec.random_init(cfg, 50, 0)
    text = AutoModel.from_config(AutoConfig.from_pretrained(resolve_text_model(config["text_model"])))
    d = config["d_embed"]
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    head = dict(audio.named_parameters())
    head_params = sum(v.numel() for k, v in head.items() if k.startswith(spec.head_key.split(".")[0] + "."))
    audio_backbone = count(audio) - head_params  # the classifier head is not part of CLAP
    name = {"cnn14": f"CNN14, width {config['width']:g}", "crnn": "GPVAD CRNN"}[cfg.backbone]
    rows = [(f"audio backbone ({name})", audio_backbone, audio.embed_dim),
            ("text backbone", count(text), text.config.hidden_size),
            ("audio projector", count(Projection(audio.embed_dim, d)), d),
            ("text projector", count(Projection(text.config.hidden_size, d)), d)]
    return pd.DataFrame(rows, columns=["part", "parameters", "output dim"]).set_index("part")


def run_summary(run: RunArtifacts) -> pd.DataFrame:
    m = run.metrics
    rows = [("accuracy on T", fmt(m["accuracy"])), ("random guess", fmt(m["random_guess"])),
            ("silhouette x_a", fmt(m["sil_x_a"])), ("silhouette E_a", fmt(m["sil_E_a"]))]
    rows += [(f"S {label} (k* = {m[key + '_k']})", fmt(m[key])) for key, label in TOPO.items()]
    rows += [("training pairs", m["n_pairs"]), ("training pairs of target-class clips", m["n_target_clip_pairs"]),
             ("fold-5 clips of T", m["n_eval_clips"]), ("skipped (unreadable) clips", m.get("n_skipped_clips", 0)),
             ("epochs (frozen + unfrozen)", len(run.history))]
    return pd.DataFrame(rows, columns=["quantity", "value"]).set_index("quantity")


def per_class_table(run: RunArtifacts, targets: list[str]) -> pd.DataFrame:
    """Accuracy (label prompts) and silhouette of each target class (fold-5 clips, E_a)."""
    e = run.emb
    t_idx = np.array([ESC50_CLASSES.index(c) for c in targets])
    sel = np.isin(e["clip_target"], t_idx)
    y = np.searchsorted(t_idx, e["clip_target"][sel])
    acc = metrics.per_class_accuracy(e["E_a"][sel], e["E_t"][t_idx], y)
    sil = metrics.silhouette_per_class(e["E_a"][sel], y)
    df = pd.DataFrame({"class": targets, "accuracy": acc,
                       "silhouette E_a": [sil.get(i, np.nan) for i in range(len(targets))]})
    return df.set_index("class").round(3).sort_values("accuracy", ascending=False)


def run_facts(grid: GridResult) -> pd.DataFrame:
    cfg = json.loads((grid.dir / "config.json").read_text())
    r = grid.results
    rows = [("grid key (hash of the full config)", grid.dir.name),
            ("profile", cfg["config"]["profile"]), ("seed", cfg["config"]["seed"]),
            ("target classes T", ", ".join(cfg["target_classes"])),
            ("fold-5 clips of T", int(r["n_eval_clips"].iloc[0])),
            ("skipped (unreadable) audio files", int(r.get("n_skipped_clips", pd.Series([0])).max()))]
    for kind, d in _stages(grid)["backbone"].items():
        man = json.loads((Path(d) / "manifest.json").read_text())
        rows.append((f"backbone {kind}: compute seconds", _seconds(man)))
    for name, d in _stages(grid)["clap"].items():
        man = json.loads((Path(d) / "manifest.json").read_text())
        rows.append((f"CLAP {name}: compute seconds", _seconds(man)))
    return pd.DataFrame(rows, columns=["fact", "value"]).set_index("fact")


def label_neighbours(X: np.ndarray, labels: list[str], top: int = 15) -> pd.DataFrame:
    """The `top` most similar label pairs (cosine) in one embedding space."""
    U = metrics.l2_normalize(X)
    cos = U @ U.T
    i, j = np.triu_indices(len(labels), k=1)
    order = np.argsort(-cos[i, j], kind="stable")[:top]
    return pd.DataFrame({"label a": [labels[a] for a in i[order]], "label b": [labels[b] for b in j[order]],
                         "cosine": cos[i[order], j[order]].round(3)}, index=pd.RangeIndex(1, len(order) + 1))


def paper_comparison(results: pd.DataFrame, tables: tuple[int, ...], path: str | Path | None = None,
                     digits: int = 3) -> tuple[dict[int, pd.DataFrame], str]:
    """({table: frame}, note): this run next to the paper's Tables `tables` (Tavares et al. 2025, as printed,
    bundled in clap_lib/paper_tables.csv): the paper's value, this run's with its interval, and the difference."""

    try:
        src = paper_tables.locate(path)
    except paper_tables.PaperTablesMissing as e:
        return {}, f"The paper's numbers are not shown: {e}."
    paper = paper_tables.load(src)
    out = {}
    for t in tables:
        side = paper_tables.side_by_side(results, paper, t)
        frame = pd.DataFrame(index=side.index)
        for col in paper_tables.TABLES[t]:
            head = LABELS.get(col, col)
            frame[f"{head}: paper"] = [fmt(v, digits=2) for v in side[f"{col} (paper)"]]
            frame[f"{head}: this run"] = [fmt(v, lo, hi, digits) for v, lo, hi in
                                          zip(side[f"{col} (run)"], side[f"{col} (run lo)"], side[f"{col} (run hi)"])]
            frame[f"{head}: difference"] = [fmt(v, digits=digits) for v in side[f"{col} (run - paper)"]]
        frame.index.names = ["audio pretraining", "training data"]
        out[t] = frame
    return out, (f"The paper's values (Tavares et al., ICASSP 2025, Tables 1-3 as printed, two decimals) from "
                 f"`{paper_tables.shown_path(src)}`; difference = this run - paper. The paper evaluates all 50 "
                 "classes of ESC-50 with CNN14 / BERT-base trained on four caption datasets; this run's setting is "
                 "in Section 2.")


def paper_correlation_table(path: str | Path | None = None) -> tuple[dict[str, pd.DataFrame], str]:
    """({name: frame}, note): the paper's two correlations as its text states them and as re-derived from its
    printed tables, with the range that rounding the tables to two decimals allows."""

    try:
        df = paper_tables.load(paper_tables.locate(path))
    except paper_tables.PaperTablesMissing as e:
        return {}, f"The paper's correlations are not re-derived: {e}."
    both = paper_tables.paper_correlations_both(df)
    t = pd.DataFrame({
        "the paper's text": [f"r = {r:.2f}, p {rel} {p:g}" for r, p, rel in
                             zip(both["text r"], both["text p"], both["text p relation"])],
        "re-derived from its printed tables": [f"r = {r:.3f}, p = {p:.4f}" for r, p in
                                               zip(both["tables r"], both["tables p"])],
        "range allowed by rounding": [f"r in [{a:.3f}, {b:.3f}], p in [{c:.4f}, {d:.4f}]" for a, b, c, d in
                                      zip(both["r low"], both["r high"], both["p low"], both["p high"])],
        "text reachable": ["yes" if a and b else "no" for a, b in zip(both["text r reachable"],
                                                                     both["text p reachable"])],
    }, index=both.index)
    return ({"the paper's correlations": t},
            "Every entry of the printed tables perturbed within +-0.005 gives the range; the text's values, "
            "computed from unrounded numbers, must lie inside it.")


def show_paper(pair) -> None:
    """Display a ({title: table}, note) pair from `paper_comparison` / `paper_correlation_table`."""
    from IPython.display import Markdown, display

    tables, note = pair
    for title, table in tables.items():
        display(Markdown(f"**Table {title}**" if isinstance(title, int) else f"**{title.capitalize()}**"))
        display(table)
    display(Markdown(f"*{note}*"))


def silhouette_change_table(results: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Silhouette of x_a and of E_a per combination and what the projection changes (E_a - x_a)."""
    df = results.sort_values(["pretraining", "training"], key=_order_key)
    out = pd.DataFrame({"audio pretraining": df["pretraining"], "training data": df["training"],
                        "silhouette of x_a": df["sil_x_a"].round(digits), "silhouette of E_a": df["sil_E_a"].round(digits),
                        "change by the projection": (df["sil_E_a"] - df["sil_x_a"]).round(digits)})
    return out.set_index(["audio pretraining", "training data"])


def humanize(df: pd.DataFrame) -> pd.DataFrame:
    """The same table with every raw results-column name in its cells, index and headers replaced by the
    human header (`sil_E_a` -> "silhouette of E_a"), longest names first so that prefixes never clash. A name
    that already stands inside its header ("zero-shot accuracy", "training data", "audio pretraining") is left
    as it is: never "zero-shot zero-shot accuracy"."""
    import re

    names = sorted(LABELS, key=len, reverse=True)
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")
    fix = lambda v: pattern.sub(_human_name, v) if isinstance(v, str) else v  # noqa: E731
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object or pd.api.types.is_string_dtype(out[c]):
            out[c] = out[c].map(fix)
    out.columns = [fix(c) if isinstance(c, str) else c for c in out.columns]
    if isinstance(out.index, pd.MultiIndex):
        out.index = pd.MultiIndex.from_tuples([tuple(fix(x) for x in t) for t in out.index], names=out.index.names)
    elif not isinstance(out.index, pd.RangeIndex):
        out.index = pd.Index([fix(x) for x in out.index], name=out.index.name)
    return out


def _human_name(m) -> str:
    """The header of the raw name matched by `m`, unless the text around the match already spells that header."""
    name, text = m.group(1), m.string
    label = LABELS[name]
    i = label.lower().find(name.lower())
    if i >= 0:
        before, after = label[:i], label[i + len(name) :]
        start, end = m.start(), m.end()
        if (
            start >= len(before)
            and text[start - len(before) : start].lower() == before.lower()
            and text[end : end + len(after)].lower() == after.lower()
        ):
            return name
    return label
