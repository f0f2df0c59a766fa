"""The published EfficientAT mn04_as file: where it is found, strict loading (SHA-256 prefix, all 312 keys), and
its label CSV (the head's 527 outputs in order)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from clap_lib.models.backbones.mn04 import Mn04
from clap_lib.models.backbones.published import read_published_state, weights_folder

EFFICIENTAT_ENV = "CLAP_EFFICIENTAT"


# --- published weights --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mn04File:
    file: str
    labels: str  # `index,mid,display_name`, the head's output order
    trained_on: str
    source: str
    sha256_prefix: str


#: The published network in the shared data folder, for provenance in the book.
MN04_FILES: dict[str, Mn04File] = {
    "mn04_as": Mn04File(
        "mn04_as.pt",
        "class_labels_indices.csv",
        "AudioSet, all 527 labels (knowledge distillation from a PaSST ensemble, ImageNet init; AudioSet mAP 0.432)",
        "EfficientAT mn04_as (Schmid, Koutini, Widmer, ICASSP 2023; MIT), as redistributed by "
        "nikih94/swch-audio-classification (commit 2b362d9)",
        "899a8c62",
    )
}
N_STATE_ENTRIES = 312


def efficientat_dir(path: str | Path | None = None) -> Path:
    """The folder of the published file: `path`, else `$CLAP_EFFICIENTAT`, else `<shared data>/efficientat`."""
    found, tried = weights_folder(path, EFFICIENTAT_ENV, "efficientat")
    if found is not None:
        return found
    raise FileNotFoundError(
        "EfficientAT weights folder not found; tried: "
        + (", ".join(tried) or "nothing")
        + f". Put mn04_as.pt and class_labels_indices.csv (the EfficientAT release, mn04_as_mAP_432.pt) in a "
        f"folder and pass it, or set ${EFFICIENTAT_ENV}, or place them in <shared data>/efficientat."
    )


def resolve_mn04(name_or_path: str | Path, folder: str | Path | None = None) -> Path:
    """A registry name (``"mn04_as"``) -> its file in :func:`efficientat_dir`; anything else is taken as a path."""
    if str(name_or_path) in MN04_FILES:
        return efficientat_dir(folder) / MN04_FILES[str(name_or_path)].file
    return Path(name_or_path)


def load_mn04(path: str | Path, verify: bool = True) -> Mn04:
    """The published mn04, loaded strictly (all 312 keys and every shape must match), in eval mode.

    `path` is a file or a registry name of :data:`MN04_FILES`. A file whose name is registered must have the
    registered SHA-256 prefix (`verify=False` skips that check). n_labels comes from `classifier.5.weight`.
    Every failure is a FileNotFoundError / ValueError naming the file.
    """
    path = resolve_mn04(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"EfficientAT weights not found: {path}. Put the published mn04_as.pt there, or in "
            f"${EFFICIENTAT_ENV}, or in <shared data>/efficientat."
        )
    registered = {f.file: f.sha256_prefix for f in MN04_FILES.values()}
    state = read_published_state(path, registered, "classifier.5.weight", "an EfficientAT mn04", verify)
    model = Mn04(n_labels=int(state["classifier.5.weight"].shape[0]))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        n = f"{len(state)} entries, expected {N_STATE_ENTRIES}"
        raise ValueError(f"{path} does not match EfficientAT mn04 ({n}): {' '.join(str(e).split())}") from e
    return model.eval()


def read_mn04_labels(csv: str | Path, n_labels: int | None = None) -> tuple[str, ...]:
    """The head's output order (display names) from its `index,mid,display_name` CSV; index must be 0..n-1,
    mids and names unique (and n = `n_labels`)."""
    csv = Path(csv)
    if not csv.is_file():
        raise FileNotFoundError(f"EfficientAT label file not found: {csv}")
    try:
        df = pd.read_csv(csv, keep_default_na=False)
    except Exception as e:
        raise ValueError(f"cannot parse {csv}: {e}") from e
    if list(df.columns) != ["index", "mid", "display_name"]:
        raise ValueError(f"{csv}: expected columns ['index', 'mid', 'display_name'], got {list(df.columns)}")
    if not np.array_equal(df["index"].to_numpy(), np.arange(len(df))):
        raise ValueError(f"{csv}: index must run 0..{len(df) - 1} in order")
    if n_labels is not None and len(df) != n_labels:
        raise ValueError(f"{csv} lists {len(df)} labels but the network has {n_labels} outputs")
    for col in ("mid", "display_name"):
        if df[col].duplicated().any():
            raise ValueError(f"{csv}: duplicated {col} {sorted(set(df[col][df[col].duplicated()]))[:5]}")
    return tuple(str(s) for s in df["display_name"])
