"""How separable the ESC-50 classes are in an embedding (x_a of a backbone), by three measures, fold by fold.

* **silhouette**: cosine silhouette (:func:`clap_lib.analysis.metrics.silhouette`, i.e. sklearn) of the clips of each
  fold on their own, and of all clips together (``whole``). No training involved.
* **linear probe**: StandardScaler + multinomial LogisticRegression fitted on the other folds, accuracy on the
  held-out fold (the official ESC-50 cross-validation: every fold held out once). The scaler is inside the
  Pipeline, so it is fitted on the training folds only.
* **1-NN**: accuracy of the cosine nearest neighbour among the training folds' clips.

Each measure comes with its per-fold values, their mean, the sd over folds (ddof=1) and a 95 % Student-t
interval for the mean, ``mean +- t_{0.975, k-1} sd / sqrt(k)``. The folds' training sets overlap, so the
per-fold accuracies are not independent; the interval describes fold-to-fold spread, not a sampling
guarantee.

Cost: LogisticRegression (lbfgs) is capped at `max_iter` = 300 iterations; on 2000 x 256 x 50 classes a probe
converges in about that many (a non-converged fold is counted in ``probe_not_converged`` rather than warned
about), which keeps 5 folds in seconds on 2 cores.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from clap_lib.analysis.metrics import l2_normalize, silhouette

__all__ = ["FoldStat", "Separability", "fold_stat", "nn1_accuracy", "probe_pipeline", "separability"]


@dataclass(frozen=True)
class FoldStat:
    """One measure over the cross-validation folds (`folds` gives the fold ids in `per_fold` order)."""

    per_fold: tuple[float, ...]
    folds: tuple[int, ...]
    mean: float
    sd: float  # over folds, ddof=1 (0 with one fold)
    lo: float  # 95 % Student-t interval of the mean (= mean with one fold)
    hi: float

    def format(self, digits: int = 2) -> str:
        return f"{self.mean:.{digits}f} ± {self.sd:.{digits}f} [{self.lo:.{digits}f}, {self.hi:.{digits}f}]"


def fold_stat(values, folds, level: float = 0.95) -> FoldStat:
    v = np.asarray(values, dtype=float)
    k, mean = len(v), float(v.mean())
    sd = float(v.std(ddof=1)) if k > 1 else 0.0
    half = float(stats.t.ppf(0.5 + level / 2, k - 1) * sd / np.sqrt(k)) if k > 1 else 0.0
    return FoldStat(tuple(float(x) for x in v), tuple(int(f) for f in folds), mean, sd, mean - half, mean + half)


@dataclass(frozen=True)
class Separability:
    silhouette: FoldStat  # per held-out fold, computed on that fold's clips only
    silhouette_whole: float  # all clips at once
    probe: FoldStat
    nn1: FoldStat
    n_clips: int
    n_classes: int
    dim: int
    chance: float  # 1 / n_classes
    probe_not_converged: int  # folds where lbfgs hit max_iter

    def row(self, digits: int | None = None) -> dict:
        """Flat ``{measure: mean, measure_sd, measure_lo, measure_hi}`` row for a results table."""
        out: dict = {
            "n_clips": self.n_clips,
            "n_classes": self.n_classes,
            "dim": self.dim,
            "chance": self.chance,
            "sil_whole": self.silhouette_whole,
        }
        for name in ("silhouette", "probe", "nn1"):
            s: FoldStat = getattr(self, name)
            out |= {name: s.mean, f"{name}_sd": s.sd, f"{name}_lo": s.lo, f"{name}_hi": s.hi}
        if digits is not None:
            out = {k: round(v, digits) if isinstance(v, float) else v for k, v in out.items()}
        return out

    def as_dict(self) -> dict:
        return asdict(self)


def probe_pipeline(max_iter: int = 300, C: float = 1.0, tol: float = 1e-4) -> Pipeline:
    """StandardScaler -> LogisticRegression (lbfgs, multinomial, L2 with `C`), deterministic."""
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter, tol=tol))


def nn1_accuracy(X_train, y_train, X_test, y_test) -> float:
    """Accuracy of the cosine 1-nearest neighbour (ties: the lower training index)."""
    sim = l2_normalize(X_test) @ l2_normalize(X_train).T
    return float(np.mean(np.asarray(y_train)[np.argmax(sim, axis=1)] == np.asarray(y_test)))


def _check(X, y, folds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    y, folds = np.asarray(y), np.asarray(folds)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (clips, dims), got shape {X.shape}")
    if y.shape != (len(X),) or folds.shape != (len(X),):
        raise ValueError(f"y and folds must have shape ({len(X)},), got {y.shape} and {folds.shape}")
    if not np.isfinite(X).all():
        raise ValueError("X has NaN/inf entries")
    if len(np.unique(folds)) < 2:
        raise ValueError(f"need >= 2 folds for cross-validation, got {np.unique(folds).tolist()}")
    return X, y, folds


def separability(
    X,
    y,
    folds,
    max_iter: int = 300,
    C: float = 1.0,
    level: float = 0.95,
    tol: float = 1e-4,
    make_probe: Callable[[], object] | None = None,
) -> Separability:
    """Silhouette, linear probe and 1-NN of the embedding `X` (clips x dims) for labels `y`, by `folds`.

    Every distinct value of `folds` is held out once (ESC-50: 1..5; a subset with 2 folds works too).
    `make_probe` replaces :func:`probe_pipeline` (any sklearn-style estimator factory).
    """
    X, y, folds = _check(X, y, folds)
    make_probe = make_probe or (lambda: probe_pipeline(max_iter, C, tol))
    ids = np.unique(folds)
    sil, probe, nn1, not_converged = [], [], [], 0
    for f in ids:
        test = folds == f
        train = ~test
        sil.append(silhouette(X[test], y[test]))
        est = make_probe()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            est.fit(X[train], y[train])
        not_converged += any(issubclass(w.category, ConvergenceWarning) for w in caught)
        probe.append(float(np.mean(est.predict(X[test]) == y[test])))
        nn1.append(nn1_accuracy(X[train], y[train], X[test], y[test]))
    n_classes = len(np.unique(y))
    return Separability(
        silhouette=fold_stat(sil, ids, level),
        silhouette_whole=silhouette(X, y),
        probe=fold_stat(probe, ids, level),
        nn1=fold_stat(nn1, ids, level),
        n_clips=len(X),
        n_classes=n_classes,
        dim=X.shape[1],
        chance=1.0 / n_classes,
        probe_not_converged=int(not_converged),
    )
