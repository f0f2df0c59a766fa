"""Early stopping on the validation loss: train until it stops improving, keep the best state.

(Target place in the restructured package: ``clap_lib/training/early_stopping.py``; it lives here while
``clap_lib/training.py`` is still a module, which a ``training/`` package would shadow.)

Rule: an epoch *improves* when its validation loss is below the best so far by more than ``min_delta``; training
stops after ``patience`` consecutive epochs without improvement, or at ``max_epochs``; the state of the best epoch
is restored. The validation pairs are the caller's: in issue 20's design they are held-out background clips of
folds 1-4 (:func:`clap_lib.data.doses.validation_clips`), so the stopping epoch is never chosen on a T clip or on
fold 5. A NaN validation loss never improves.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["EarlyStopping", "StopState", "observe", "stopping_point", "train_until_stopped"]


@dataclass(frozen=True)
class EarlyStopping:
    patience: int = 3
    max_epochs: int = 100
    min_delta: float = 0.0

    def __post_init__(self):
        if self.patience < 1 or self.max_epochs < 1:
            raise ValueError(f"patience and max_epochs must be >= 1, got {self.patience}, {self.max_epochs}")
        if not self.min_delta >= 0:
            raise ValueError(f"min_delta must be >= 0, got {self.min_delta}")


@dataclass(frozen=True)
class StopState:
    """After some epochs (1-based): the best validation loss, its epoch, epochs since it, whether to stop."""

    best: float = math.inf
    best_epoch: int | None = None
    bad: int = 0
    epochs: int = 0
    stop: bool = False


def observe(state: StopState, val_loss: float, rule: EarlyStopping) -> StopState:
    """The state after one more epoch with validation loss `val_loss`."""
    if state.stop:
        raise ValueError("training has already stopped")
    epoch = state.epochs + 1
    if val_loss < state.best - rule.min_delta:  # False for NaN
        s = StopState(float(val_loss), epoch, 0, epoch)
    else:
        s = replace(state, bad=state.bad + 1, epochs=epoch)
    return replace(s, stop=s.bad >= rule.patience or epoch >= rule.max_epochs)


def stopping_point(val_losses: Sequence[float], rule: EarlyStopping) -> StopState:
    """Where training with these per-epoch validation losses stops (the losses after the stop are not read)."""
    state = StopState()
    for v in val_losses:
        state = observe(state, v, rule)
        if state.stop:
            break
    return state


def train_until_stopped(
    epoch: Callable[[int], float],
    get_state: Callable[[], Any],
    set_state: Callable[[Any], None],
    rule: EarlyStopping,
    initial: float | None = None,
) -> tuple[StopState, list[float]]:
    """Run `epoch(k)` (k = 1, 2, ...: train one epoch, return the validation loss) until the rule stops, then
    restore the best epoch's state (`get_state()` copied when an epoch improves; `set_state` at the end).
    `initial`: the validation loss of the starting state (e.g. the end of a previous phase), which then counts
    as epoch 0: when no epoch beats it, the starting state is restored (a fine-tuning phase that only hurts the
    validation loss leaves the model as it was). Returns the final state (``best_epoch``, ``epochs`` = the
    stopping epoch) and the validation curve."""
    state, curve, best = StopState(), [], None
    if initial is not None and initial == initial:  # a NaN start is no candidate
        state, best = StopState(best=float(initial), best_epoch=0), copy.deepcopy(get_state())
    while not state.stop:
        curve.append(float(epoch(state.epochs + 1)))
        state = observe(state, curve[-1], rule)
        if state.best_epoch == state.epochs:
            best = copy.deepcopy(get_state())
    if best is not None:
        set_state(best)
    return state, curve
