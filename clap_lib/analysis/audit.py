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

Input layouts (:func:`clap_lib.analysis.audit_inputs.load_embeddings`; the report and the command:
:mod:`clap_lib.report.audit`):

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

then ``python -m clap_lib audit clap_esc50.npz --references artifacts/grid/<key>/results.csv --out audit/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from clap_lib.analysis import metrics
from clap_lib.analysis.audit_inputs import _check_known, _listed, _norm_name, class_names
from clap_lib.data.esc50 import ESC50_CLASSES

# ----------------------------------------------------------------------------- loading


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
        keys = (
            "n_clips",
            "n_classes",
            "dim",
            "silhouette",
            "accuracy",
            "random_guess",
            "n_candidates",
            "n_zero_shot_clips",
            "topo_S",
            "topo_k",
            "topo_chance",
            "topo_null_q95",
            "topo_p",
            "n_topo_labels",
            "seed",
        )
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


def _zero_shot(audio: np.ndarray, names: np.ndarray, text: np.ndarray, labels: np.ndarray, notes: list[str]) -> dict:
    label_idx = {n: i for i, n in enumerate(labels)}
    sel = np.array([n in label_idx for n in names])
    out = {"n_candidates": len(labels), "random_guess": 1.0 / len(labels), "n_zero_shot_clips": int(sel.sum())}
    if not sel.any():
        notes.append("no clip belongs to a given text label: zero-shot accuracy not computed")
        return out
    if audio.shape[1] != text.shape[1]:
        notes.append(
            f"audio dim {audio.shape[1]} != text dim {text.shape[1]}: the audio embeddings are not in "
            f"the text's joint space, zero-shot accuracy not computed"
        )
        return out
    y = np.array([label_idx[n] for n in names[sel]])
    out["accuracy"] = metrics.zero_shot_accuracy(audio[sel], text, y)
    return out


def _topology(
    audio: np.ndarray, names: np.ndarray, text: np.ndarray, labels: np.ndarray, n_perm: int, seed: int, notes: list[str]
) -> dict:
    present = [i for i, n in enumerate(labels) if np.any(names == n)]
    if len(present) < 4:  # k range 2..n//2 needs n >= 4
        notes.append(f"only {len(present)} text labels have clips: topological similarity needs >= 4")
        return {}
    sel = np.isin(names, labels[present])
    means, uniq = metrics.label_means(audio[sel], names[sel])  # rows in sorted label-name order
    Q = text[[present[list(labels[present]).index(u)] for u in uniq]]
    res = metrics.topological_similarity(means, Q)
    null = metrics.permutation_null_S(means, Q, n_perm=n_perm, seed=seed)
    # chance of S = max_k S_k is the null of that max, not E[S_k] at the observed k* (which is lower)
    return {
        "topo_S": res.S,
        "topo_k": res.k_star,
        "n_topo_labels": len(uniq),
        "topo_chance": float(np.mean(null)),
        "topo_null_q95": float(np.quantile(null, 0.95)),
        "topo_p": metrics.permutation_p_value(res.S, null),
    }


def _over_chance(acc, rg):
    return (acc - rg) / (1.0 - rg)


def reference_positions(
    values: dict[str, float | None], references: pd.DataFrame, min_span: float = 0.05
) -> pd.DataFrame:
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
    for metric, ref_col in (
        ("silhouette", "sil_x_a"),
        ("silhouette", "sil_E_a"),
        ("accuracy_over_chance", "accuracy_over_chance"),
        ("topo_Ea_Et", "topo_Ea_Et"),
    ):
        v = values.get(metric)
        if v is None or ref_col not in level.columns:
            continue
        by = {p: float(level.loc[p, ref_col]) if p in level.index else np.nan for p in ("dirty", "clean", "none")}
        span = by["dirty"] - by["none"]
        pos = (v - by["none"]) / span if np.isfinite(span) and abs(span) >= min_span else np.nan
        rows.append(
            {
                "metric": metric if metric == ref_col else f"{metric} vs {ref_col}",
                "this model": float(v),
                **by,
                "position": pos,
            }
        )
    return pd.DataFrame(rows, columns=["metric", "this model", "dirty", "clean", "none", "position"])


def _zero_rows(X: np.ndarray) -> np.ndarray:
    return ~np.any(X != 0, axis=1)


def audit(
    audio,
    targets,
    text=None,
    label_names=None,
    references: pd.DataFrame | None = None,
    seed: int = 0,
    classes: Sequence[str] | None = None,
    n_perm: int = 200,
    tsne: bool = True,
    notes: Sequence[str] = (),
) -> AuditResult:
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
        notes.append(
            f"{int(zero.sum())} all-zero audio row(s) dropped (no direction: cosine 0 to every label, so "
            f"argmax would pick the first), of class(es) {_listed(sorted(set(names[zero])), 3)}"
        )
        audio, names = audio[~zero], names[~zero]
    if references is not None and len(references) == 0:
        raise ValueError("the reference results table has no rows")
    labels = None
    if text is not None:
        text = np.asarray(text, dtype=np.float64)
        if label_names is None:
            if len(text) != len(ESC50_CLASSES):
                raise ValueError(
                    f"text has {len(text)} rows: pass label_names (one per row), or give the "
                    f"{len(ESC50_CLASSES)} ESC-50 classes in target order"
                )
            label_names = ESC50_CLASSES
        labels = np.array([_norm_name(n) for n in label_names])
        if len(labels) != len(text):
            raise ValueError(f"{len(text)} text rows but {len(labels)} label names")
        _check_known(labels, "text label(s)")
        uniq, counts = np.unique(labels, return_counts=True)
        if (counts > 1).any():
            raise ValueError(
                f"text label(s) given more than once: {_listed(uniq[counts > 1])}; give one text embedding per label"
            )
        if _zero_rows(text).any():
            raise ValueError(
                f"all-zero text embedding(s) for label(s) {_listed(labels[_zero_rows(text)])}: a "
                f"candidate without a direction cannot be scored"
            )
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
        raise ValueError(
            f"the silhouette needs clips of at least 2 classes; the clips audited are of "
            f"{len(present)} ({', '.join(present) or 'none'})"
            + (f"; requested classes without clips: {', '.join(absent)}" if absent else "")
        )

    sil = metrics.silhouette(audio, names)
    out: dict = {}
    if text is not None:
        out |= _zero_shot(audio, names, text, labels, notes)
        out |= _topology(audio, names, text, labels, n_perm, seed, notes)
    positions = None
    if references is not None and classes is None:
        notes.append(
            "silhouettes and S depend on the class set: restrict the audit to the reference run's target "
            "classes and fold 5 (CLI: --classes references --fold 5) before reading positions"
        )
    if references is not None:
        vals = {"silhouette": sil, "topo_Ea_Et": out.get("topo_S")}
        if out.get("accuracy") is not None:
            vals["accuracy_over_chance"] = _over_chance(out["accuracy"], out["random_guess"])
        positions = reference_positions(vals, references)
    return AuditResult(
        n_clips=len(audio),
        n_classes=len(np.unique(names)),
        dim=audio.shape[1],
        silhouette=sil,
        per_class_silhouette=metrics.silhouette_per_class(audio, names),
        clip_classes=names,
        tsne=_tsne_2d(audio, seed) if tsne else None,
        positions=positions,
        references=references,
        notes=tuple(notes),
        seed=seed,
        **out,
    )


# ----------------------------------------------------------------------------- the report
