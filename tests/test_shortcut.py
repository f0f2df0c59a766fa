"""The shortcut classifier: ESC-50 class scores as the max of a tagger's AudioSet probabilities."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from clap_lib.analysis.shortcut import (
    label_file_spelling,
    restrict_to_labels,
    shortcut_accuracy,
    shortcut_scores,
    unmatched_classes,
)

LABELS = ("Dog", "Bark", "Rain", "Rain_on_surface", "Accelerating_revving_vroom", "Speech")
MAPPING = {
    "dog": ["Dog", "Bark"],
    "rain": ["Rain", "Rain on surface"],
    "engine": ["Accelerating, revving, vroom"],
    "mouse_click": [],
}
CLASSES = ("dog", "rain", "engine", "mouse_click")
P = np.array(
    [
        [0.9, 0.2, 0.1, 0.0, 0.3, 0.5],  # dog
        [0.1, 0.7, 0.2, 0.1, 0.4, 0.0],  # dog (by Bark)
        [0.2, 0.1, 0.3, 0.8, 0.1, 0.0],  # rain (by Rain on surface)
        [0.6, 0.0, 0.5, 0.1, 0.2, 0.9],  # rain, but the tagger says dog -> wrong
        [0.0, 0.1, 0.0, 0.0, 0.4, 0.2],  # engine
        [0.9, 0.9, 0.9, 0.9, 0.9, 0.9],
    ]
)  # mouse_click: unmatched, excluded


def test_normalise_label_accepts_both_spellings():
    assert label_file_spelling("Accelerating, revving, vroom") == "Accelerating_revving_vroom"
    assert label_file_spelling("Accelerating_revving_vroom") == "Accelerating_revving_vroom"
    assert label_file_spelling(" Rain on surface ") == "Rain_on_surface"
    assert label_file_spelling("Bee, wasp, etc.") == "Bee_wasp_etc."


def test_scores_are_the_max_over_mapped_labels_and_unmatched_is_nan():
    with pytest.warns(UserWarning, match=r"mouse_click"):
        S = shortcut_scores(P, LABELS, MAPPING, CLASSES)
    assert S.shape == (6, 4)
    np.testing.assert_allclose(S[:, 0], [0.9, 0.7, 0.2, 0.6, 0.1, 0.9])  # max(Dog, Bark)
    np.testing.assert_allclose(S[:, 1], [0.1, 0.2, 0.8, 0.5, 0.0, 0.9])  # max(Rain, Rain_on_surface)
    np.testing.assert_allclose(S[:, 2], P[:, 4])
    assert np.isnan(S[:, 3]).all()  # never a silent 0
    assert unmatched_classes(MAPPING, CLASSES) == ["mouse_click"]
    assert unmatched_classes({"dog": ["Dog"]}, ("dog", "cat")) == ["cat"]  # absent from the mapping = unmatched


def test_accuracy_over_matched_classes_with_wilson_interval():
    y = np.array([0, 0, 1, 1, 2, 3])
    r = shortcut_accuracy(P, LABELS, MAPPING, CLASSES, y)
    assert r["unmatched"] == ["mouse_click"] and r["n_excluded_clips"] == 1
    assert r["n_clips"] == 5 and r["n_classes"] == 3 and r["chance"] == pytest.approx(1 / 3)
    assert r["accuracy"] == pytest.approx(4 / 5)
    assert r["per_class"] == {"dog": 1.0, "rain": 0.5, "engine": 1.0}
    ci = stats.binomtest(4, 5).proportion_ci(method="wilson")
    assert (r["lo"], r["hi"]) == pytest.approx((ci.low, ci.high))
    # by hand: Wilson with z = 1.96, p = 0.8, n = 5
    z, p, n = stats.norm.ppf(0.975), 0.8, 5
    centre, half = (
        (p + z**2 / (2 * n)) / (1 + z**2 / n),
        z / (1 + z**2 / n) * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)),
    )
    assert (r["lo"], r["hi"]) == pytest.approx((centre - half, centre + half))
    # class names work as y too
    assert shortcut_accuracy(P, LABELS, MAPPING, CLASSES, np.array(CLASSES)[y])["accuracy"] == r["accuracy"]


def test_unmatched_class_is_never_predicted():
    # the mouse_click clip's huge scores must not win: the prediction is over matched classes only
    y = np.array([3, 3, 3, 3, 3, 0])
    r = shortcut_accuracy(P, LABELS, MAPPING, CLASSES, y)
    assert r["n_clips"] == 1 and r["accuracy"] == 1.0


def test_max_is_not_fooled_by_redundant_synonyms():
    # sum would let "dog" (mapped to two co-firing names) beat "rain" although rain has the higher probability
    probs = np.array([[0.4, 0.4, 0.6, 0.0, 0.0, 0.0]])
    r = shortcut_accuracy(probs, LABELS, {"dog": ["Dog", "Bark"], "rain": ["Rain"]}, ("dog", "rain"), [1])
    assert r["accuracy"] == 1.0


def test_mapped_name_not_among_the_labels_raises_naming_it():
    bad = MAPPING | {"cat": ["Meow", "Dog"]}
    with pytest.raises(ValueError, match=r"'Meow' \(for 'cat'\)"):
        shortcut_scores(P, LABELS, bad, CLASSES + ("cat",))
    with pytest.raises(ValueError, match=r"clip_probs must be \(clips, 6 labels\)"):
        shortcut_scores(P[:, :5], LABELS, MAPPING, CLASSES)
    with pytest.raises(ValueError, match="y must index"):
        shortcut_accuracy(P, LABELS, MAPPING, CLASSES, np.array([0, 0, 1, 1, 2, 4]))
    with pytest.raises(ValueError, match="nothing to evaluate"):
        shortcut_accuracy(P, LABELS, {}, CLASSES, np.zeros(6, int))


def test_restrict_to_labels_drops_and_reports_unscorable_names():
    kept, dropped = restrict_to_labels({"cat": ["Meow", "Cat communication"], "dog": ["Bark"]}, ("Bark", "Meow"))
    assert kept == {"cat": ("Meow",), "dog": ("Bark",)} and dropped == [("cat", "Cat communication")]
    kept, dropped = restrict_to_labels({"wind": ["Howl (wind)"]}, LABELS)
    assert kept == {"wind": ()} and unmatched_classes(kept, ["wind"]) == ["wind"]
