"""Leakage audit of any audio(-text) embedding model on ESC-50.

Given the audio embeddings of ESC-50 clips (and, for a joint audio-text model, the embeddings of one text
prompt per class) the audit computes what the paper uses to expose inherited class separability:

* cosine silhouette of the clips labelled by class, overall and per class;
* a 2-D T-SNE (cosine, seeded) of the clips;
* zero-shot accuracy (argmax cosine over the given labels) when text embeddings are given;
* topological similarity ``S = max_k S_k`` of the audio label means vs the text embeddings, with its chance
  level and a permutation p-value, when text embeddings are given. Chance is the mean of the permutation null
  of ``S`` itself (text rows shuffled, then the max over k taken again), not ``E[S_k]`` at the observed ``k*``:
  taking the max over k lifts the null above any single ``S_k``;
* where the model sits between this project's backbones: given a reference results table (``results.csv`` of a
  grid), ``position = (model - none) / (dirty - none)`` per metric, with ``dirty``/``none`` the mean over the
  reference rows with that audio pretraining (0 = like the randomly initialised backbone, 1 = like the one
  pretrained on every ESC-50 class). Accuracies are compared as accuracy over chance
  ``(acc - 1/K) / (1 - 1/K)`` because the numbers of candidate labels ``K`` differ. For a like-for-like
  comparison restrict the audit to the reference run's target classes and fold 5 (CLI: ``--classes references
  --fold 5``); silhouettes of different class sets are not comparable.

Input layouts (:func:`load_embeddings`):

* ``.npz`` with ``audio`` (n, d) and ``files`` (n,) clip file names [+ optional ``text`` (m, d) and ``labels``
  (m,) class names; without ``labels`` a 50-row ``text`` is taken to be in ESC-50 target order]. The key
  ``file`` is accepted too, but ``np.savez(path, file=...)`` cannot write it (``file`` is savez's own first
  parameter), hence ``files``;
* ``.csv`` / ``.parquet`` with a ``file`` column and one numeric column per embedding dimension (the columns
  ``target``, ``category`` and ``fold`` are ignored);
* ``.npy`` (n, d) plus a text file of the n clip file names, one a line (``files=`` / ``--files``).

Inputs that would skew the numbers are refused with an error naming them: class or label names that are not
ESC-50 classes, duplicate text labels, all-zero text rows, a file listed twice with different embeddings, an
empty reference table. What can be dropped without bias is dropped with a note (in the report and on stderr):
all-zero audio rows (a failed export; cosine to every label is 0, so argmax would pick the first label) and
exact duplicate rows of one file.

Class targets come from the ESC-50 file names ``{fold}-{src}-{take}-{target}.wav`` (the last dash field), or
from the official ``esc50.csv`` when given (``meta=`` / ``--meta``; matched on the file name without extension).

Feeding a public CLAP model (run where the model and ESC-50 are available; not a dependency of this package)::

    import os, glob, numpy as np
    from clap_lib.data.esc50 import ESC50_CLASSES
    files = sorted(glob.glob("ESC-50/audio/*.wav"))
    prompts = [f"This is a sound of {c.replace('_', ' ')}." for c in ESC50_CLASSES]

    # LAION-CLAP (pip install laion_clap)
    import laion_clap
    model = laion_clap.CLAP_Module(enable_fusion=False); model.load_ckpt()
    audio = model.get_audio_embedding_from_filelist(x=files, use_tensor=False)
    text = model.get_text_embedding(prompts, use_tensor=False)

    # or Microsoft CLAP (pip install msclap)
    from msclap import CLAP
    model = CLAP(version="2023", use_cuda=False)
    audio = model.get_audio_embeddings(files).cpu().numpy()
    text = model.get_text_embeddings(prompts).cpu().numpy()

    np.savez("clap_esc50.npz", audio=audio, text=text, labels=np.array(ESC50_CLASSES),
             files=np.array([os.path.basename(f) for f in files]))

then ``python -m clap_lib.analysis.audit clap_esc50.npz --references artifacts/grid/<key>/results.csv --out audit/``.
"""
from __future__ import annotations

import argparse
import base64
import html
import io
import json
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from clap_lib.analysis import metrics
from clap_lib.data.esc50 import ESC50_CLASSES

__all__ = ["EmbeddingSet", "load_embeddings", "parse_esc50_name", "esc50_targets", "class_names",
           "read_references", "AuditResult", "audit", "reference_positions", "write_report", "main"]

META_COLUMNS = ("file", "target", "category", "fold")
FORMATS = (".npz (numpy.savez: audio, files [, text, labels]), .csv / .parquet (a file column + one column per "
           "dimension) or .npy (numpy.save) with --files")


# ----------------------------------------------------------------------------- loading

@dataclass(frozen=True)
class EmbeddingSet:
    """Audio embeddings of clips (one row per file) and optional text embeddings of class labels."""
    audio: np.ndarray
    files: np.ndarray
    text: np.ndarray | None = None
    label_names: np.ndarray | None = None
    source: Path | None = None
    notes: tuple[str, ...] = ()


def _listed(xs, n: int = 5) -> str:
    """``['a', 'b'] ...`` of the first n names (plain str, not numpy's np.str_ repr)."""
    xs = [str(x) for x in xs]
    return f"{xs[:n]}{' ...' if len(xs) > n else ''}"


def _check_2d(a: np.ndarray, what: str, path: Path) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 2 or not np.issubdtype(a.dtype, np.number):
        raise ValueError(f"{path}: {what} must be a numeric 2-D array (rows, dim), got shape {a.shape} "
                         f"dtype {a.dtype}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{path}: {what} holds NaN or inf values")
    return a.astype(np.float64)


def _basenames(files) -> np.ndarray:
    return np.array([Path(str(f)).name for f in np.asarray(files).ravel()])


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    # np.load falls back to unpickling for anything that is not a zip, hence "contains pickled data": say
    # instead what the file should be
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not an .npz archive (not a zip file); accepted formats: {FORMATS}")
    try:
        with np.load(path, allow_pickle=False) as z:
            name_key = "file" if "file" in z.files and "files" not in z.files else "files"
            missing = [k for k in ("audio", name_key) if k not in z.files]
            if missing:
                raise KeyError(f"{path}: missing array(s) {missing}; an .npz needs 'audio' (n, d) and 'files' "
                               f"(n,) [+ 'text' (m, d), 'labels' (m,)]; found {sorted(z.files)}")
            return (z["audio"], z[name_key], z["text"] if "text" in z.files else None,
                    z["labels"] if "labels" in z.files else None)
    except (zipfile.BadZipFile, EOFError) as e:
        raise ValueError(f"{path}: damaged .npz archive ({e})") from None
    except ValueError as e:
        if "pickle" not in str(e).lower():
            raise
        raise ValueError(f"{path}: holds object (pickled) arrays, which are not read; store names as strings, "
                         f"e.g. files=np.array(names, dtype=str)") from None


def _read_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, EOFError) as e:
        # numpy reads a file without the .npy header as a pickle: that message would mislead
        why = "no .npy header" if "pickle" in str(e).lower() else str(e)
        raise ValueError(f"{path}: not a numeric .npy array written by numpy.save ({why}); accepted formats: "
                         f"{FORMATS}") from None


def _drop_duplicate_files(audio: np.ndarray, names: np.ndarray, path: Path):
    """Keep the first row of each file listed more than once with identical embeddings; refuse a file whose
    rows differ (which one is the clip cannot be told). Kept, a duplicate would count twice and sit at cosine
    distance 0 from its copy, inflating the silhouette."""
    uniq, first, counts = np.unique(names, return_index=True, return_counts=True)
    if len(uniq) == len(names):
        return audio, names, None
    dup = uniq[counts > 1]
    differ = [n for n in dup if not np.all(audio[names == n] == audio[names == n][0])]
    if differ:
        raise ValueError(f"{path}: {len(differ)} file(s) listed more than once with different embeddings, e.g. "
                         f"{_listed(differ, 3)}; keep one row per clip")
    keep = np.sort(first)
    note = (f"{len(names) - len(keep)} duplicate row(s) of {len(dup)} file(s) dropped (identical embeddings), "
            f"e.g. {_listed(dup, 3)}")
    return audio[keep], names[keep], note


def load_embeddings(path: str | Path, files: str | Path | None = None) -> EmbeddingSet:
    """Read embeddings in one of the layouts of the module docstring; errors name the path and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"embeddings file not found: {path}")
    suffix = path.suffix.lower()
    text = labels = None
    if suffix == ".npz":
        audio, names, text, labels = _read_npz(path)
        if labels is not None and text is None:
            raise KeyError(f"{path}: has 'labels' but no 'text' embeddings")
    elif suffix in (".csv", ".parquet"):
        df = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
        if "file" not in df.columns:
            raise KeyError(f"{path}: no 'file' column; columns are {list(df.columns)[:8]}...")
        emb = df.drop(columns=[c for c in META_COLUMNS if c in df.columns])
        bad = [c for c in emb.columns if not pd.api.types.is_numeric_dtype(emb[c])]
        if bad:
            raise ValueError(f"{path}: non-numeric embedding column(s) {bad[:5]}; every column other than "
                             f"{', '.join(META_COLUMNS)} must be an embedding dimension")
        if emb.shape[1] == 0:
            raise ValueError(f"{path}: no embedding columns besides {', '.join(META_COLUMNS)}")
        audio, names = emb.to_numpy(), df["file"].to_numpy()
    elif suffix == ".npy":
        if files is None:
            raise ValueError(f"{path}: a .npy holds no file names; pass files= (CLI: --files LIST.txt), "
                             f"a text file with one clip file name per line")
        files = Path(files)
        if not files.is_file():
            raise FileNotFoundError(f"file list not found: {files}")
        audio = _read_npy(path)
        names = np.array([ln.strip() for ln in files.read_text().splitlines() if ln.strip()])
    else:
        raise ValueError(f"{path}: unsupported extension {suffix!r}; accepted formats: {FORMATS}")
    audio = _check_2d(audio, "audio", path)
    names = _basenames(names)
    if len(names) != len(audio):
        raise ValueError(f"{path}: {len(audio)} audio rows but {len(names)} file names")
    if len(audio) == 0:
        raise ValueError(f"{path}: no clips (0 audio rows)")
    audio, names, dup_note = _drop_duplicate_files(audio, names, path)
    if text is not None:
        text = _check_2d(text, "text", path)
        if labels is not None:
            labels = np.asarray(labels).astype(str).ravel()
            if len(labels) != len(text):
                raise ValueError(f"{path}: {len(text)} text rows but {len(labels)} labels")
        elif len(text) != len(ESC50_CLASSES):
            raise KeyError(f"{path}: 'text' has {len(text)} rows and there is no 'labels' array; without labels "
                           f"text must hold the {len(ESC50_CLASSES)} ESC-50 classes in target order")
        else:
            labels = np.array(ESC50_CLASSES)
    return EmbeddingSet(audio, names, text, labels, path, (dup_note,) if dup_note else ())


def parse_esc50_name(name: str) -> tuple[int, int]:
    """``(fold, target)`` of an ESC-50 file name ``{fold}-{src}-{take}-{target}.wav``."""
    stem = Path(str(name)).name.rsplit(".", 1)[0]
    parts = stem.split("-")
    try:
        if len(parts) != 4:
            raise ValueError
        fold, target = int(parts[0]), int(parts[-1])
    except ValueError:
        raise ValueError(f"not an ESC-50 file name ({{fold}}-{{src}}-{{take}}-{{target}}.wav): {name!r}; "
                         f"pass the ESC-50 meta csv to map names to classes") from None
    if not 0 <= target < len(ESC50_CLASSES):
        raise ValueError(f"ESC-50 target {target} out of range 0..{len(ESC50_CLASSES) - 1} in {name!r}")
    return fold, target


def _stem(name: str) -> str:
    return Path(str(name)).name.rsplit(".", 1)[0]


def esc50_targets(files, meta: str | Path | pd.DataFrame | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(targets, folds)`` of the files: from the meta csv (columns filename, fold, target) when given, else
    parsed from the names. A file absent from the meta raises, naming it."""
    files = list(np.asarray(files).ravel())
    if meta is None:
        parsed = [parse_esc50_name(f) for f in files]
        return np.array([t for _, t in parsed], dtype=int), np.array([f for f, _ in parsed], dtype=int)
    if not isinstance(meta, pd.DataFrame):
        if not Path(meta).is_file():
            raise FileNotFoundError(f"ESC-50 meta csv not found: {meta}")
        meta = pd.read_csv(meta)
    miss = [c for c in ("filename", "fold", "target") if c not in meta.columns]
    if miss:
        raise KeyError(f"ESC-50 meta is missing column(s) {miss}")
    lookup = {_stem(f): (int(fo), int(t)) for f, fo, t in zip(meta["filename"], meta["fold"], meta["target"])}
    absent = [f for f in files if _stem(f) not in lookup]
    if absent:
        raise KeyError(f"{len(absent)} file(s) not in the ESC-50 meta, e.g. {absent[:3]}")
    return (np.array([lookup[_stem(f)][1] for f in files], dtype=int),
            np.array([lookup[_stem(f)][0] for f in files], dtype=int))


def _norm_name(name: str) -> str:
    return str(name).strip().lower().replace(" ", "_").replace("-", "_")


def _check_known(names, what: str) -> None:
    unknown = sorted(set(names) - set(ESC50_CLASSES))
    if unknown:
        raise ValueError(f"unknown {what} {_listed(unknown, 10)}: not ESC-50 classes; the classes are "
                         f"{', '.join(ESC50_CLASSES)}")


def class_names(targets) -> np.ndarray:
    """Class name per clip: ESC-50 names for integer targets, normalised names (lower case, ``_`` for spaces)
    for string targets. A name that is not an ESC-50 class raises, naming it."""
    t = np.asarray(targets)
    if np.issubdtype(t.dtype, np.integer):
        if t.size and (t.min() < 0 or t.max() >= len(ESC50_CLASSES)):
            raise ValueError(f"integer targets must be ESC-50 targets 0..{len(ESC50_CLASSES) - 1}")
        return np.array(ESC50_CLASSES)[t]
    names = np.array([_norm_name(x) for x in t.ravel()])
    _check_known(names, "class name(s) in the targets")
    return names


def read_references(path: str | Path) -> tuple[pd.DataFrame, list[str] | None]:
    """A grid's results table (a ``results.csv`` or the grid folder holding it) and, when a ``config.json`` sits
    beside it, the run's target classes."""
    path = Path(path)
    csv = path / "results.csv" if path.is_dir() else path
    if not csv.is_file():
        raise FileNotFoundError(f"reference results not found: {csv}")
    df = pd.read_csv(csv)
    miss = [c for c in ("pretraining", "training") if c not in df.columns]
    if miss:
        raise KeyError(f"{csv}: reference results need column(s) {miss}")
    if df.empty:
        raise ValueError(f"{csv}: the reference results table has no rows")
    cfg = csv.parent / "config.json"
    classes = json.loads(cfg.read_text()).get("target_classes") if cfg.is_file() else None
    return df, classes


# ----------------------------------------------------------------------------- the audit

@dataclass(frozen=True)
class AuditResult:
    """Numbers of one audit; ``None`` where an input was not given (text, references)."""
    n_clips: int
    n_classes: int
    dim: int
    silhouette: float
    per_class_silhouette: dict[str, float]
    clip_classes: np.ndarray
    tsne: np.ndarray | None
    accuracy: float | None = None
    random_guess: float | None = None
    n_candidates: int | None = None
    n_zero_shot_clips: int | None = None
    topo_S: float | None = None
    topo_k: int | None = None
    topo_chance: float | None = None
    topo_null_q95: float | None = None
    topo_p: float | None = None
    n_topo_labels: int | None = None
    positions: pd.DataFrame | None = None
    references: pd.DataFrame | None = None
    notes: tuple[str, ...] = ()
    seed: int = 0

    def numbers(self) -> dict:
        """JSON-safe dict of every scalar, the per-class silhouettes and the position table."""
        keys = ("n_clips", "n_classes", "dim", "silhouette", "accuracy", "random_guess", "n_candidates",
                "n_zero_shot_clips", "topo_S", "topo_k", "topo_chance", "topo_null_q95", "topo_p", "n_topo_labels",
                "seed")
        out = {k: _jsonable(getattr(self, k)) for k in keys}
        out["per_class_silhouette"] = {k: float(v) for k, v in self.per_class_silhouette.items()}
        out["positions"] = None if self.positions is None else _records(self.positions)
        out["notes"] = list(self.notes)
        return out


def _jsonable(v):
    if v is None:
        return None
    if isinstance(v, (np.integer, int)) and not isinstance(v, bool):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return float(v) if np.isfinite(v) else None
    return v


def _records(df: pd.DataFrame) -> list[dict]:
    return [{k: _jsonable(v) for k, v in row.items()} for row in df.to_dict(orient="records")]


def _tsne_2d(X: np.ndarray, seed: int) -> np.ndarray | None:
    """Same recipe as ``experiment.tsne_2d`` (cosine, PCA init, perplexity capped for small sets), kept here so
    that an audit runs without torch; None when there are too few points for T-SNE."""
    from sklearn.manifold import TSNE

    perplexity = float(min(30, max(2, (len(X) - 1) // 3)))
    if len(X) < 5 or perplexity >= len(X):
        return None
    return TSNE(2, metric="cosine", init="pca", perplexity=perplexity, random_state=seed).fit_transform(X)


def _zero_shot(audio: np.ndarray, names: np.ndarray, text: np.ndarray, labels: np.ndarray,
               notes: list[str]) -> dict:
    label_idx = {n: i for i, n in enumerate(labels)}
    sel = np.array([n in label_idx for n in names])
    out = {"n_candidates": len(labels), "random_guess": 1.0 / len(labels), "n_zero_shot_clips": int(sel.sum())}
    if not sel.any():
        notes.append("no clip belongs to a given text label: zero-shot accuracy not computed")
        return out
    if audio.shape[1] != text.shape[1]:
        notes.append(f"audio dim {audio.shape[1]} != text dim {text.shape[1]}: the audio embeddings are not in "
                     f"the text's joint space, zero-shot accuracy not computed")
        return out
    y = np.array([label_idx[n] for n in names[sel]])
    out["accuracy"] = metrics.zero_shot_accuracy(audio[sel], text, y)
    return out


def _topology(audio: np.ndarray, names: np.ndarray, text: np.ndarray, labels: np.ndarray, n_perm: int,
              seed: int, notes: list[str]) -> dict:
    present = [i for i, n in enumerate(labels) if np.any(names == n)]
    if len(present) < 4:  # k range 2..n//2 needs n >= 4
        notes.append(f"only {len(present)} text labels have clips: topological similarity needs >= 4")
        return {}
    sel = np.isin(names, labels[present])
    means, uniq = metrics.label_means(audio[sel], names[sel])      # rows in sorted label-name order
    Q = text[[present[list(labels[present]).index(u)] for u in uniq]]
    res = metrics.topological_similarity(means, Q)
    null = metrics.permutation_null_S(means, Q, n_perm=n_perm, seed=seed)
    # chance of S = max_k S_k is the null of that max, not E[S_k] at the observed k* (which is lower)
    return {"topo_S": res.S, "topo_k": res.k_star, "n_topo_labels": len(uniq),
            "topo_chance": float(np.mean(null)), "topo_null_q95": float(np.quantile(null, 0.95)),
            "topo_p": metrics.permutation_p_value(res.S, null)}


def _over_chance(acc, rg):
    return (acc - rg) / (1.0 - rg)


def reference_positions(values: dict[str, float | None], references: pd.DataFrame,
                        min_span: float = 0.05) -> pd.DataFrame:
    """Rows ``metric, this model, dirty, clean, none, position`` with ``position = (v - none) / (dirty - none)``.

    Where the references barely differ (``|dirty - none| < min_span``) the position is NaN: dividing by a
    near-zero span would turn noise into a large, meaningless number.

    ``values`` may hold ``silhouette``, ``accuracy_over_chance`` and ``topo_Ea_Et``. The model's silhouette is
    compared with both reference silhouettes (backbone ``sil_x_a`` and projection ``sil_E_a``); reference
    accuracy over chance uses the reference's ``random_guess`` column (1/25 if absent).
    """
    ref = references.copy()
    if "accuracy" in ref.columns:
        rg = ref["random_guess"] if "random_guess" in ref.columns else 1 / 25
        ref["accuracy_over_chance"] = _over_chance(ref["accuracy"], rg)
    level = ref.groupby("pretraining").mean(numeric_only=True)
    rows = []
    for metric, ref_col in (("silhouette", "sil_x_a"), ("silhouette", "sil_E_a"),
                            ("accuracy_over_chance", "accuracy_over_chance"), ("topo_Ea_Et", "topo_Ea_Et")):
        v = values.get(metric)
        if v is None or ref_col not in level.columns:
            continue
        by = {p: float(level.loc[p, ref_col]) if p in level.index else np.nan for p in ("dirty", "clean", "none")}
        span = by["dirty"] - by["none"]
        pos = (v - by["none"]) / span if np.isfinite(span) and abs(span) >= min_span else np.nan
        rows.append({"metric": metric if metric == ref_col else f"{metric} vs {ref_col}", "this model": float(v),
                     **by, "position": pos})
    return pd.DataFrame(rows, columns=["metric", "this model", "dirty", "clean", "none", "position"])


def _zero_rows(X: np.ndarray) -> np.ndarray:
    return ~np.any(X != 0, axis=1)


def audit(audio, targets, text=None, label_names=None, references: pd.DataFrame | None = None, seed: int = 0,
          classes: Sequence[str] | None = None, n_perm: int = 200, tsne: bool = True,
          notes: Sequence[str] = ()) -> AuditResult:
    """Audit embeddings ``audio`` (n, d) of clips of classes ``targets`` (ESC-50 ints or class names).

    ``text`` (m, d): one embedding per candidate label, named by ``label_names`` (default: the 50 ESC-50
    classes in target order when m = 50). ``classes`` restricts clips *and* candidate labels to those classes
    (as the project does with its target classes T). ``references``: a grid results table (see
    :func:`reference_positions`). ``notes``: notes from loading (e.g. ``EmbeddingSet.notes``), kept first.

    Refused (ValueError naming the values): names that are not ESC-50 classes (targets, labels, ``classes``),
    duplicate labels, all-zero text rows, fewer than 2 classes with clips, an empty reference table. All-zero
    audio rows are dropped with a note.
    """
    audio = np.asarray(audio, dtype=np.float64)
    names = class_names(targets)
    if audio.ndim != 2 or len(names) != len(audio):
        raise ValueError(f"audio must be (n, d) with one target per row; got {audio.shape} and {len(names)} targets")
    notes = list(notes)
    zero = _zero_rows(audio)
    if zero.any():
        notes.append(f"{int(zero.sum())} all-zero audio row(s) dropped (no direction: cosine 0 to every label, so "
                     f"argmax would pick the first), of class(es) {_listed(sorted(set(names[zero])), 3)}")
        audio, names = audio[~zero], names[~zero]
    if references is not None and len(references) == 0:
        raise ValueError("the reference results table has no rows")
    labels = None
    if text is not None:
        text = np.asarray(text, dtype=np.float64)
        if label_names is None:
            if len(text) != len(ESC50_CLASSES):
                raise ValueError(f"text has {len(text)} rows: pass label_names (one per row), or give the "
                                 f"{len(ESC50_CLASSES)} ESC-50 classes in target order")
            label_names = ESC50_CLASSES
        labels = np.array([_norm_name(n) for n in label_names])
        if len(labels) != len(text):
            raise ValueError(f"{len(text)} text rows but {len(labels)} label names")
        _check_known(labels, "text label(s)")
        uniq, counts = np.unique(labels, return_counts=True)
        if (counts > 1).any():
            raise ValueError(f"text label(s) given more than once: {_listed(uniq[counts > 1])}; give one text "
                             f"embedding per label")
        if _zero_rows(text).any():
            raise ValueError(f"all-zero text embedding(s) for label(s) {_listed(labels[_zero_rows(text)])}: a "
                             f"candidate without a direction cannot be scored")
    if classes is not None:
        keep = {_norm_name(c) for c in classes}
        _check_known(keep, "class(es) requested")
        absent = sorted(keep - set(names))
        if absent:
            notes.append(f"{len(absent)} requested class(es) have no clip: {', '.join(absent[:5])}")
        sel = np.isin(names, list(keep))
        audio, names = audio[sel], names[sel]
        if labels is not None:
            lsel = np.isin(labels, list(keep))
            text, labels = text[lsel], labels[lsel]
        notes.append(f"restricted to {len(keep)} classes ({int(sel.sum())} clips)")
    present = np.unique(names)
    if len(present) < 2:
        absent = sorted({_norm_name(c) for c in classes} - set(present)) if classes is not None else []
        raise ValueError(f"the silhouette needs clips of at least 2 classes; the clips audited are of "
                         f"{len(present)} ({', '.join(present) or 'none'})"
                         + (f"; requested classes without clips: {', '.join(absent)}" if absent else ""))

    sil = metrics.silhouette(audio, names)
    out: dict = {}
    if text is not None:
        out |= _zero_shot(audio, names, text, labels, notes)
        out |= _topology(audio, names, text, labels, n_perm, seed, notes)
    positions = None
    if references is not None and classes is None:
        notes.append("silhouettes and S depend on the class set: restrict the audit to the reference run's target "
                     "classes and fold 5 (CLI: --classes references --fold 5) before reading positions")
    if references is not None:
        vals = {"silhouette": sil, "topo_Ea_Et": out.get("topo_S")}
        if out.get("accuracy") is not None:
            vals["accuracy_over_chance"] = _over_chance(out["accuracy"], out["random_guess"])
        positions = reference_positions(vals, references)
    return AuditResult(
        n_clips=len(audio), n_classes=len(np.unique(names)), dim=audio.shape[1], silhouette=sil,
        per_class_silhouette=metrics.silhouette_per_class(audio, names), clip_classes=names,
        tsne=_tsne_2d(audio, seed) if tsne else None, positions=positions, references=references,
        notes=tuple(notes), seed=seed, **out)


# ----------------------------------------------------------------------------- the report

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
    ax.set_xticks([]); ax.set_yticks([])
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _summary_rows(result: AuditResult) -> pd.DataFrame:
    rows = [("clips", result.n_clips), ("classes", result.n_classes), ("dimension", result.dim),
            ("silhouette (cosine)", result.silhouette)]
    if result.n_candidates is not None:
        rows += [("candidate labels", result.n_candidates), ("zero-shot clips", result.n_zero_shot_clips),
                 ("zero-shot accuracy", result.accuracy), ("random guess", result.random_guess)]
    if result.topo_S is not None:
        rows += [("topological similarity S (audio label means vs text)", result.topo_S), ("k*", result.topo_k),
                 ("chance S (mean of the permutation null of max_k S_k)", result.topo_chance),
                 ("95th percentile of that null", result.topo_null_q95), ("permutation p of S", result.topo_p)]
    return pd.DataFrame([(k, "n/a" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v)))
                         for k, v in rows], columns=["quantity", "value"])


def _table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, float_format=lambda v: f"{v:.4f}", na_rep="n/a", border=0, classes="t")


def write_report(result: AuditResult, out_dir: str | Path) -> Path:
    """Write ``audit.html`` (self-contained: inline CSS, T-SNE as a base64 PNG, no scripts) and ``audit.json``
    into ``out_dir``; returns the HTML path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "audit.json").write_text(json.dumps(result.numbers(), indent=2))
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>Leakage audit</title><style>",
             "body{font-family:sans-serif;max-width:60em;margin:2em auto}table.t{border-collapse:collapse}",
             "table.t td,table.t th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}",
             "</style></head><body><h1>Leakage audit</h1>", "<h2>Summary</h2>", _table(_summary_rows(result))]
    if result.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in result.notes) + "</ul>")
    if result.positions is not None:
        parts += ["<h2>Position between the reference backbones</h2>",
                  "<p>position = (this model - none) / (dirty - none): 0 = like the randomly initialised backbone, "
                  "1 = like the backbone pretrained on every ESC-50 class (reference means over training data); "
                  "empty where the two references differ by less than 0.05, too little to place a model between.</p>",
                  _table(result.positions)]
    png = _tsne_png(result)
    if png:
        parts += ["<h2>T-SNE</h2>", f"<img alt='T-SNE of the audio embeddings' src='data:image/png;base64,{png}'>"]
    pcs = pd.DataFrame(sorted(result.per_class_silhouette.items(), key=lambda kv: kv[1]),
                       columns=["class", "silhouette"])
    parts += ["<h2>Silhouette per class</h2>", _table(pcs)]
    if result.references is not None:
        cols = [c for c in ("pretraining", "training", "accuracy", "random_guess", "sil_x_a", "sil_E_a",
                            "topo_xa_Ea", "topo_xt_Et", "topo_Ea_Et") if c in result.references.columns]
        parts += ["<h2>Reference results</h2>", _table(result.references[cols])]
    parts.append("</body></html>")
    path = out / "audit.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- CLI

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m clap_lib.analysis.audit", description=__doc__.split("\n\n")[0])
    p.add_argument("embeddings", help=".npz (audio, files [, text, labels]), .csv/.parquet (file + dims) or .npy")
    p.add_argument("--files", help="text file of clip names, one a line (for .npy embeddings)")
    p.add_argument("--meta", help="ESC-50 meta csv (esc50.csv) mapping file names to targets and folds")
    p.add_argument("--references", help="a grid's results.csv (or its folder) to compare with")
    p.add_argument("--classes", help="comma-separated classes to restrict to, or 'references' for the "
                                     "reference run's target classes (from its config.json)")
    p.add_argument("--fold", type=int, help="keep only clips of this ESC-50 fold (the project evaluates fold 5)")
    p.add_argument("--out", default="audit", help="output folder (default: ./audit)")
    p.add_argument("--seed", type=int, default=0)
    return p


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


if __name__ == "__main__":
    sys.exit(main())
