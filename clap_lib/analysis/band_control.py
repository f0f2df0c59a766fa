"""A band-limited control for the 16 kHz ESC-50 copy: how much do the empty mel bands above 8 kHz move a network?

Resampled from 16 kHz to the CRNN's 22.05 kHz, the mel bands whose lower edge is at or above 8 kHz hold only the
resampler's leakage, which ``log(mel + eps)`` turns into large, clip-dependent negative values. A signal that is
exactly band-limited has no power there at all, i.e. ``log(eps)``. The control runs the same network on the same
log-mels with those bands set to ``log(eps)`` and compares what it computes with the run's: x_a clip by clip
(cosine), the separability of x_a and the shortcut through the network's own head.
"""

from __future__ import annotations

import numpy as np

FLOOR = float(np.log(np.spacing(1)))  # log(0 + eps) with the front end's eps: an exactly band-limited band


def floor_bands(logmels: np.ndarray, bands: np.ndarray, floor: float = FLOOR) -> np.ndarray:
    """A copy of `logmels` (clips, frames, mels) with the mel bands `bands` set to `floor` everywhere."""
    X = np.array(logmels, dtype=np.float32, copy=True)
    bands = np.asarray(bands, dtype=int)
    if X.ndim != 3:
        raise ValueError(f"logmels must be (clips, frames, mels), got shape {X.shape}")
    if bands.size and (bands.min() < 0 or bands.max() >= X.shape[2]):
        raise ValueError(f"bands {bands.tolist()} outside 0..{X.shape[2] - 1}")
    X[:, :, bands] = floor
    return X


def rowwise_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of `a` with the same row of `b` (0 where a row is all zeros)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    num = (a * b).sum(1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def summary(
    x_a_run: np.ndarray,
    x_a_control: np.ndarray,
    ok: np.ndarray,
    sep_run: dict,
    sep_control: dict,
    shortcut_run: dict | None,
    shortcut_control: dict | None,
    bands: np.ndarray,
    edges_hz: tuple[float, float],
) -> dict:
    """The control's record: which bands, x_a cosine (median and 5th percentile over usable clips), and each
    measure as run and under the control."""
    cos = rowwise_cosine(x_a_run[ok], x_a_control[ok])
    measures = {"linear probe accuracy": "probe", "1-NN accuracy": "nn1", "silhouette of x_a": "silhouette"}
    rows = [
        {"measure": name, "as run": float(sep_run[key]), "bands above 8 kHz at log(eps)": float(sep_control[key])}
        for name, key in measures.items()
    ]
    if shortcut_run is not None and shortcut_control is not None:
        rows.append(
            {
                "measure": "shortcut accuracy (own head, target classes, fold 5)",
                "as run": float(shortcut_run["accuracy"]),
                "bands above 8 kHz at log(eps)": float(shortcut_control["accuracy"]),
            }
        )
    return {
        "bands": [int(b) for b in bands],
        "band_edges_hz": [float(edges_hz[0]), float(edges_hz[1])],
        "floor": FLOOR,
        "x_a_cosine_median": float(np.median(cos)),
        "x_a_cosine_p5": float(np.percentile(cos, 5)),
        "n_clips": int(ok.sum()),
        "rows": rows,
    }
