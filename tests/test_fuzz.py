"""Property tests (hypothesis) of the pure functions: no crash on odd input, outputs in range."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from clap_lib.analysis import metrics
from clap_lib.data.audio import AudioError, fix_length, load_audio, normalise
from clap_lib.data.esc50 import ESC50_CLASSES
from clap_lib.data.filtering import class_words, leakage_filter, tokenize

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=32)


@FAST
@given(st.lists(st.text(max_size=80), max_size=12), st.lists(st.sampled_from(ESC50_CLASSES), min_size=1, max_size=6))
def test_filter_never_crashes_and_counts_add_up(captions, classes):
    r = leakage_filter(captions, classes)
    assert r.keep.shape == (len(captions),) and r.n_kept + r.n_removed == len(captions)
    assert all(v >= 0 for v in r.removed_per_word.values())
    for cap, keep, words in zip(captions, r.keep, r.matched_words):
        assert keep == (len(words) == 0)
        assert all(t == t.lower() for t in tokenize(cap))


@FAST
@given(
    st.sampled_from(ESC50_CLASSES),
    st.sampled_from(["", "the ", "A LOUD ", "two "]),
    st.sampled_from(["", ",", "!", "."]),
)
def test_a_caption_naming_a_class_is_always_removed(cls, prefix, suffix):
    word = class_words([cls])[0]  # a content word of the name (stop words such as "can" never match)
    assert not leakage_filter([f"{prefix}{word}{suffix} nearby"], [cls]).keep[0]


@st.composite
def labelled_cloud(draw):
    n_cls = draw(st.integers(2, 5))
    per = draw(st.integers(2, 6))
    d = draw(st.integers(1, 8))
    X = draw(arrays(np.float64, (n_cls * per, d), elements=finite))
    X = X + 1e-3 * np.arange(X.size).reshape(X.shape)  # no all-zero rows (cosine undefined)
    return X, np.repeat(np.arange(n_cls), per)


@FAST
@given(labelled_cloud())
def test_silhouette_and_accuracy_in_range(data):
    X, y = data
    s = metrics.silhouette(X, y)
    assert -1 - 1e-9 <= s <= 1 + 1e-9
    means, _ = metrics.label_means(X, y)
    acc = metrics.zero_shot_accuracy(X, means, y)
    assert 0 <= acc <= 1


@FAST
@given(labelled_cloud(), st.integers(0, 2**31 - 1))
def test_topological_similarity_in_range(data, seed):
    X, _ = data
    Q = np.random.default_rng(seed).standard_normal(X.shape)
    r = metrics.topological_similarity(X, Q)
    assert 0 <= r.S <= 1 and np.all((r.curve >= 0) & (r.curve <= 1 + 1e-12))
    assert r.curve[0] == 1 and r.curve[-1] == pytest.approx(1)  # self-inclusive: S_1 = S_n = 1


@FAST
@given(arrays(np.float32, st.integers(0, 4000), elements=st.floats(-2, 2, width=32)), st.integers(1, 5000))
@example(np.array([1e-10], np.float32), 2)  # found by hypothesis: std 5e-11 < eps, centred only
@example(np.full(11, 0.80696726, np.float32), 11)  # found by hypothesis: a constant, 1-ulp mean offset
def test_fix_length_and_normalise(x, n):
    padded = fix_length(x, n)
    y = normalise(padded)
    assert y.shape == (n,) and np.isfinite(y).all()
    if (padded - padded.mean()).std() > 1e-8:  # normalise's own test (eps 1e-8 on the centred float32 clip)
        assert abs(float(y.mean())) < 1e-3 and abs(float(y.std()) - 1) < 1e-2
    else:  # (near-)silence is centred, never blown up by dividing by ~0
        assert np.abs(y).max() <= 2 * np.abs(padded).max() + 1e-12


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sr=st.sampled_from([8000, 16000, 22050, 44100]),
    channels=st.integers(1, 3),
    seconds=st.sampled_from([0.0, 0.01, 0.1, 1.0]),
    poison=st.sampled_from([None, "nan", "inf", "zeros"]),
)
def test_load_audio_handles_or_rejects_with_a_clear_error(tmp_path, sr, channels, seconds, poison):
    n = int(sr * seconds)
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (n, channels)).astype(np.float32)
    if poison == "zeros":
        x[:] = 0
    elif poison and n:
        x[n // 2, 0] = np.nan if poison == "nan" else np.inf
    path = tmp_path / f"clip_{sr}_{channels}_{n}_{poison}.wav"
    sf.write(path, x, sr, subtype="FLOAT")
    try:
        y = load_audio(path, 16000)
    except AudioError as e:
        assert path.name in str(e) or "empty" in str(e) or "finite" in str(e)
        assert n == 0 or poison in ("nan", "inf")
        return
    assert y.ndim == 1 and np.isfinite(y).all()
    assert abs(len(y) - round(n * 16000 / sr)) <= 1
