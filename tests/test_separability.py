"""Fold-wise separability of an embedding: silhouette, linear probe, 1-NN, on hand-made clusters."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
from scipy import stats
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import silhouette_score

from clap_lib.analysis.separability import fold_stat, nn1_accuracy, probe_pipeline, separability


def _clusters(n_classes=5, per_class_fold=4, n_folds=5, dim=16, spread=0.05, seed=0):
    """Tight clusters around orthogonal directions: every fold holds every class."""
    rng = np.random.default_rng(seed)
    centres = np.eye(dim)[:n_classes] * 10
    y = np.tile(np.repeat(np.arange(n_classes), per_class_fold), n_folds)
    folds = np.repeat(np.arange(1, n_folds + 1), n_classes * per_class_fold)
    X = centres[y] + spread * rng.standard_normal((len(y), dim))
    return X, y, folds


def test_perfectly_separable_clusters_score_one():
    X, y, folds = _clusters()
    s = separability(X, y, folds)
    assert s.probe.per_fold == (1.0,) * 5 and s.nn1.per_fold == (1.0,) * 5
    assert s.probe.mean == s.nn1.mean == 1.0 and s.probe.sd == 0.0 and (s.probe.lo, s.probe.hi) == (1.0, 1.0)
    assert s.silhouette.mean > 0.95 and s.silhouette_whole > 0.95
    assert s.n_clips == 100 and s.n_classes == 5 and s.dim == 16 and s.chance == 0.2
    assert s.probe.folds == (1, 2, 3, 4, 5)


def test_shuffled_labels_are_near_chance():
    rng = np.random.default_rng(1)
    X, y, folds = _clusters(n_classes=4, per_class_fold=25, seed=1)
    y_shuffled = rng.permutation(y)
    s = separability(X, y_shuffled, folds)
    # 500 clips, 4 classes: accuracy ~ Binomial(100, 0.25) / 100 per fold; the 5-fold mean is within 0.1 of chance
    assert abs(s.probe.mean - 0.25) < 0.1 and abs(s.nn1.mean - 0.25) < 0.1
    assert abs(s.silhouette_whole) < 0.05
    assert s.probe.lo < 0.25 + 0.1 and s.nn1.lo < 0.25 + 0.1


def test_silhouette_matches_sklearn():
    X, y, folds = _clusters(spread=3.0, seed=2)
    s = separability(X, y, folds)
    assert s.silhouette_whole == pytest.approx(silhouette_score(X, y, metric="cosine"), abs=1e-12)
    for f, v in zip(s.silhouette.folds, s.silhouette.per_fold):
        assert v == pytest.approx(silhouette_score(X[folds == f], y[folds == f], metric="cosine"), abs=1e-12)


def test_fold_stat_mean_sd_and_t_interval():
    st = fold_stat([0.5, 0.6, 0.7, 0.8], folds=[1, 2, 3, 4])
    sd = np.std([0.5, 0.6, 0.7, 0.8], ddof=1)
    half = stats.t.ppf(0.975, 3) * sd / 2
    assert st.mean == pytest.approx(0.65) and st.sd == pytest.approx(sd)
    assert (st.lo, st.hi) == pytest.approx((0.65 - half, 0.65 + half))
    assert fold_stat([0.3], [1]).sd == 0.0


def test_nn1_uses_cosine_and_training_neighbours_only():
    X_train = np.array([[1.0, 0.0], [0.0, 10.0]])
    y_train = np.array([0, 1])
    # (0.3, 0.5): Euclidean-nearest to (1, 0) (0.86 vs 9.5), but at 59 degrees it is cosine-nearest to (0, 10)
    assert nn1_accuracy(X_train, y_train, np.array([[0.3, 0.5]]), np.array([1])) == 1.0
    # a test point identical to a held-out clip does not find itself: only training clips are neighbours
    X, y, folds = _clusters(n_classes=2, per_class_fold=2, n_folds=2, spread=0.0)
    y_bad = y.copy()
    y_bad[folds == 2] = 1 - y_bad[folds == 2]  # held-out labels flipped: a self-match would score 1
    assert separability(X, y_bad, folds).nn1.mean == 0.0


class _Spy(BaseEstimator, ClassifierMixin):
    """Records the rows it is fitted on; predicts the majority class."""

    fitted: ClassVar[list] = []

    def fit(self, X, y):
        _Spy.fitted.append(np.asarray(X).copy())
        self.classes_ = np.unique(y)
        self.majority_ = np.bincount(y).argmax()
        return self

    def predict(self, X):
        return np.full(len(X), self.majority_)


def test_the_probe_never_sees_the_held_out_fold():
    X, y, folds = _clusters(n_classes=3, per_class_fold=2, n_folds=3)
    X = X + 1000.0 * folds[:, None]  # every fold has its own offset, so rows identify their fold
    _Spy.fitted = []
    separability(X, y, folds, make_probe=_Spy)
    assert len(_Spy.fitted) == 3
    for f, seen in zip((1, 2, 3), _Spy.fitted):
        seen_folds = set(np.round(seen[:, 0] / 1000.0).astype(int))  # offset dominates column 0
        assert f not in seen_folds and len(seen) == int((folds != f).sum())


def test_scaler_fitted_on_training_folds_gives_a_different_answer_than_a_leaky_one():
    """Feature 0 separates the classes; the held-out fold has it scaled x1e4. A scaler fitted on all clips would
    shrink feature 0 of the training clips to ~0, the L2-penalised probe would then lean on the noise feature
    and fall to chance; fitted on the training folds only, the sign of feature 0 still classifies."""
    rng = np.random.default_rng(0)
    n = 200
    y = np.tile([0, 1], n // 2)
    folds = np.repeat([1, 2], n // 2)
    X = np.stack([np.where(y == 1, 1.0, -1.0) + 0.1 * rng.standard_normal(n), rng.standard_normal(n)], axis=1)
    X[folds == 2, 0] *= 1e4
    s = separability(X, y, folds, C=0.01)
    honest = probe_pipeline(C=0.01).fit(X[folds == 1], y[folds == 1])
    assert s.probe.per_fold[1] == pytest.approx(np.mean(honest.predict(X[folds == 2]) == y[folds == 2]))
    assert s.probe.per_fold[1] > 0.95
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    leaky_scaler = StandardScaler().fit(X)
    leaky = LogisticRegression(C=0.01, max_iter=300).fit(leaky_scaler.transform(X[folds == 1]), y[folds == 1])
    leaky_acc = np.mean(leaky.predict(leaky_scaler.transform(X[folds == 2])) == y[folds == 2])
    assert leaky_acc < 0.8  # so the two answers differ: the test can tell a leaky scaler apart


def test_bad_input_is_rejected():
    X, y, folds = _clusters()
    with pytest.raises(ValueError, match=">= 2 folds"):
        separability(X, y, np.ones_like(folds))
    with pytest.raises(ValueError, match="shape"):
        separability(X, y[:-1], folds)
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        separability(X, y, folds)


def test_row_is_flat_and_rounded():
    X, y, folds = _clusters()
    row = separability(X, y, folds).row(digits=3)
    assert row["probe"] == 1.0 and row["probe_sd"] == 0.0 and row["n_classes"] == 5
    assert set(row) >= {"silhouette", "silhouette_lo", "silhouette_hi", "nn1_hi", "sil_whole", "chance"}
