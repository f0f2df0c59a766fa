"""The band-limited control (clap_lib.analysis.band_control): bands floored, cosine by hand and against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics.pairwise import cosine_similarity

from clap_lib.analysis.band_control import FLOOR, floor_bands, rowwise_cosine, summary


def test_floor_is_log_eps_and_only_the_named_bands_change():
    assert FLOOR == pytest.approx(np.log(2.220446049250313e-16))
    X = np.random.default_rng(0).normal(size=(3, 5, 8)).astype(np.float32)
    Y = floor_bands(X, np.array([6, 7]))
    assert (Y[:, :, 6:] == np.float32(FLOOR)).all()
    np.testing.assert_array_equal(Y[:, :, :6], X[:, :, :6])
    assert not np.shares_memory(X, Y) and (X[:, :, 6:] != np.float32(FLOOR)).all()  # the input is untouched
    np.testing.assert_array_equal(floor_bands(X, np.array([], int)), X)
    with pytest.raises(ValueError, match=r"bands \[8\] outside 0..7"):
        floor_bands(X, np.array([8]))
    with pytest.raises(ValueError, match="must be \\(clips, frames, mels\\)"):
        floor_bands(X[0], np.array([1]))


def test_rowwise_cosine_by_hand_and_against_sklearn():
    a = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    b = np.array([[0.0, 2.0], [2.0, 2.0], [1.0, 0.0]])
    np.testing.assert_allclose(rowwise_cosine(a, b), [0.0, 1.0, 0.0])  # orthogonal, parallel, zero row
    rng = np.random.default_rng(1)
    A, B = rng.normal(size=(20, 7)), rng.normal(size=(20, 7))
    np.testing.assert_allclose(rowwise_cosine(A, B), np.diag(cosine_similarity(A, B)), rtol=1e-12)
    with pytest.raises(ValueError, match="shapes differ"):
        rowwise_cosine(A, B[:, :3])


def test_summary_rows_and_cosine_over_usable_clips():
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    y = np.array([[1.0, 0.0], [1.0, 0.0], [5.0, 5.0]])  # clip 1 turned by 90 degrees, but it is not usable
    ok = np.array([True, False, True])
    sep = {"probe": 0.6, "nn1": 0.5, "silhouette": 0.1}
    out = summary(
        x,
        y,
        ok,
        sep,
        {"probe": 0.55, "nn1": 0.45, "silhouette": 0.05},
        {"accuracy": 0.4},
        {"accuracy": 0.35},
        np.array([59, 60]),
        (8000.0, 11025.0),
    )
    assert out["x_a_cosine_median"] == pytest.approx(1.0) and out["n_clips"] == 2 and out["bands"] == [59, 60]
    assert [r["measure"] for r in out["rows"]][-1].startswith("shortcut")
    assert out["rows"][0] == {"measure": "linear probe accuracy", "as run": 0.6, "bands above 8 kHz at log(eps)": 0.55}
    assert len(summary(x, y, ok, sep, sep, None, None, np.array([59]), (8000.0, 9000.0))["rows"]) == 3
