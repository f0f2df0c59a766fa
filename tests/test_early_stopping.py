"""Early stopping on a hand-made validation curve (issue 20)."""

from __future__ import annotations

import math

import pytest
import torch

from clap_lib.training.early_stopping import EarlyStopping, StopState, observe, stopping_point, train_until_stopped

#: falls to its minimum 0.50 at epoch 5, then 0.51 / 0.50 (not below the best) / 0.55 / 0.40 (too late)
CURVE = [1.00, 0.80, 0.70, 0.60, 0.50, 0.51, 0.50, 0.55, 0.40]


def test_stops_after_patience_epochs_without_improvement():
    s = stopping_point(CURVE, EarlyStopping(patience=3))
    assert (s.best_epoch, s.best, s.epochs, s.bad, s.stop) == (5, 0.50, 8, 3, True)
    # patience 4 sees the 0.40 of epoch 9
    s = stopping_point(CURVE, EarlyStopping(patience=4))
    assert (s.best_epoch, s.epochs, s.stop) == (9, 9, False)


def test_min_delta_and_max_epochs():
    # min_delta 0.15: 0.80 < 1.00 - 0.15 improves, 0.70 < 0.65 does not, 0.60 < 0.65 does (best epoch 4),
    # 0.50 < 0.45 and 0.51 do not: the second bad epoch in a row is epoch 6
    s = stopping_point(CURVE, EarlyStopping(patience=2, min_delta=0.15))
    assert (s.best_epoch, s.best, s.epochs) == (4, 0.60, 6)
    s = stopping_point(CURVE, EarlyStopping(patience=3, max_epochs=4))
    assert (s.best_epoch, s.epochs, s.stop) == (4, 4, True)


def test_nan_never_improves_and_a_stopped_state_is_final():
    s = stopping_point([1.0, math.nan, math.nan], EarlyStopping(patience=2))
    assert (s.best_epoch, s.epochs, s.stop) == (1, 3, True)
    with pytest.raises(ValueError, match="already stopped"):
        observe(s, 0.1, EarlyStopping(patience=2))
    with pytest.raises(ValueError, match=">= 1"):
        EarlyStopping(patience=0)
    assert StopState().best == math.inf


def test_train_until_stopped_restores_the_best_state():
    """A parameter set to 10 x epoch each epoch; the validation loss is the curve: the best state is epoch 5's."""
    w = torch.nn.Parameter(torch.zeros(1))

    def epoch(k: int) -> float:
        with torch.no_grad():
            w.fill_(10.0 * k)
        return CURVE[k - 1]

    state, curve = train_until_stopped(
        epoch, lambda: {"w": w.detach().clone()}, lambda s: w.data.copy_(s["w"]), EarlyStopping(patience=3)
    )
    assert curve == CURVE[:8] and state.epochs == 8 and state.best_epoch == 5
    assert w.item() == 50.0


def test_a_starting_state_no_epoch_beats_is_restored():
    """Fine-tuning from a phase-1 state of validation loss 0.45: no epoch of CURVE's first 8 beats it before the
    patience runs out (0.50 at epoch 5 is not below 0.45), so the starting state comes back (best epoch 0)."""
    w = torch.nn.Parameter(torch.full((1,), -1.0))

    def epoch(k: int) -> float:
        with torch.no_grad():
            w.fill_(10.0 * k)
        return CURVE[k - 1]

    state, curve = train_until_stopped(
        epoch,
        lambda: {"w": w.detach().clone()},
        lambda s: w.data.copy_(s["w"]),
        EarlyStopping(patience=3),
        initial=0.45,
    )
    assert (state.best_epoch, state.epochs, curve) == (0, 3, CURVE[:3])
    assert w.item() == -1.0
