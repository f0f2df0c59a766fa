"""The published GPVAD networks (RicherMans/GPV, GPL-3.0; RicherMans/Datadriven-GPVAD, MIT) in the shared data
folder: which files, where they are found (`$CLAP_GPVAD` / `$CLAP_GPVAD_DD`, the shared data folder), strict loading
of the ten state dicts with a SHA-256 check, and their label CSVs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from clap_lib.models.backbones.crnn import Crnn
from clap_lib.models.backbones.published import read_published_state, weights_folder

GPVAD_ENV = "CLAP_GPVAD"


@dataclass(frozen=True)
class GpvadFile:
    file: str  # state dict
    labels: str  # its `index,label` CSV
    trained_on: str
    sha256_prefix: str
    # label exposure of its training (clap_lib.analysis.ladder.EXPOSURES): "audioset_527" (every AudioSet label)
    # or "speech" (speech / non-speech targets only)
    exposure: str
    folder: str = "gpvad"  # its folder under the shared data (GPVAD_ENV / GPVAD_DD_ENV override)


#: The published networks in the shared data folder (RicherMans/GPV, GPL-3.0), for provenance in the book.
GPVAD_FILES: dict[str, GpvadFile] = {
    "gpv_f": GpvadFile(
        "gpv_f.pth", "gpv_f_labels.csv", "AudioSet, all 527 labels (weak clip labels)", "871e9106", "audioset_527"
    ),
    "gpv_b": GpvadFile(
        "gpv_b.pth",
        "gpv_b_labels.csv",
        "AudioSet clips, speech / noise labels only (weak clip labels)",
        "b06a75ad",
        "speech",
    ),
    "vad_c": GpvadFile(
        "vad_c.pth", "vad_c_labels.csv", "clean speech with frame-level speech / silence labels", "a2015333", "speech"
    ),
}

GPVAD_DD_ENV = "CLAP_GPVAD_DD"

#: The teacher-student networks of the same CRNN (RicherMans/Datadriven-GPVAD, MIT; Dinkel et al., TASLP 2021):
#: two teachers with clip-level supervision on all 527 AudioSet labels, five students with a speech / non-speech
#: head trained on a teacher's frame-level speech targets (no other AudioSet label ever reached them).
_STUDENT = "a teacher's frame-level speech / non-speech targets (student)"
GPVAD_DD_FILES: dict[str, GpvadFile] = {
    name: GpvadFile(f"{stem}.pth", labels, trained_on, sha, exposure, "gpvad_dd")
    for name, stem, labels, trained_on, sha, exposure in (
        (
            "teacher1",
            "teacher1",
            "teacher_labels.csv",
            "AudioSet, all 527 labels (teacher T1, clip labels)",
            "9b87fff6",
            "audioset_527",
        ),
        (
            "teacher2",
            "teacher2",
            "teacher_labels.csv",
            "AudioSet, all 527 labels (teacher T2, clip labels)",
            "49ad72bd",
            "audioset_527",
        ),
        ("a2", "audioset2", "student_labels.csv", f"AudioSet audio, {_STUDENT}", "d8e7e542", "speech"),
        ("v2", "vox2", "student_labels.csv", f"VoxCeleb2, {_STUDENT}", "b92e4cec", "speech"),
        ("a2_v2", "audio2_vox2", "student_labels.csv", f"AudioSet and VoxCeleb2, {_STUDENT}", "c6d57455", "speech"),
        ("sre", "sre", "student_labels.csv", f"NIST SRE, {_STUDENT}", "7dc8a201", "speech"),
        (
            "c1",
            "c1",
            "student_labels.csv",
            f"{_STUDENT}; its training data is not stated in the source",
            "d31987a8",
            "speech",
        ),
    )
}

#: every published CRNN by registry name
PUBLISHED: dict[str, GpvadFile] = {**GPVAD_FILES, **GPVAD_DD_FILES}


def gpvad_dir(path: str | Path | None = None, folder: str = "gpvad") -> Path:
    """The folder of the published files: `path`, else `$CLAP_GPVAD` (`$CLAP_GPVAD_DD` for `folder="gpvad_dd"`),
    else `<shared data>/<folder>`."""
    env = GPVAD_DD_ENV if folder == "gpvad_dd" else GPVAD_ENV
    files = [f.file for f in PUBLISHED.values() if f.folder == folder]
    found, tried = weights_folder(path, env, folder)
    if found is not None:
        return found
    source = (
        "RicherMans/Datadriven-GPVAD, pretrained_models/" if folder == "gpvad_dd" else "RicherMans/GPV, pretrained/"
    )
    raise FileNotFoundError(
        "GPVAD weights folder not found; tried: "
        + (", ".join(tried) or "nothing")
        + f". Put {', '.join(files)} (from {source}) in a folder and pass it, or set ${env}, or place them in "
        f"<shared data>/{folder}."
    )


def resolve_gpvad(name_or_path: str | Path, folder: str | Path | None = None) -> Path:
    """A registry name (``"gpv_f"``, ``"teacher1"``) -> its file in :func:`gpvad_dir`; anything else is a path."""
    if str(name_or_path) in PUBLISHED:
        f = PUBLISHED[str(name_or_path)]
        return gpvad_dir(folder, f.folder) / f.file
    return Path(name_or_path)


def published_labels(name: str) -> tuple[str, ...] | None:
    """The output names of a registered network's head (its label CSV, checked against nothing else)."""
    f = PUBLISHED.get(name)
    return read_gpvad_labels(gpvad_dir(None, f.folder) / f.labels) if f else None


def load_gpvad(path: str | Path, verify: bool = True) -> Crnn:
    """A published CRNN, loaded strictly (every key and shape must match), in eval mode.

    `path` is a file or a registry name of :data:`PUBLISHED`. A file whose name is in the registry must have
    the registered SHA-256 prefix (`verify=False` skips that check). n_labels comes from `outputlayer.weight`.
    """
    path = resolve_gpvad(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"GPVAD weights not found: {path}. Put the published file there, or in ${GPVAD_ENV}, "
            f"or in <shared data>/gpvad or gpvad_dd (the registered files: "
            f"{', '.join(f.file for f in PUBLISHED.values())})."
        )
    registered = {f.file: f.sha256_prefix for f in PUBLISHED.values()}
    state = read_published_state(path, registered, "outputlayer.weight", "a GPVAD CRNN", verify)
    model = Crnn(n_labels=int(state["outputlayer.weight"].shape[0]))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{path} does not match the GPVAD CRNN: {' '.join(str(e).split())}") from e
    return model.eval()


def read_gpvad_labels(csv: str | Path, n_labels: int | None = None) -> tuple[str, ...]:
    """The output order of a network from its `index,label` CSV; index must be 0..n-1 (and n = `n_labels`)."""
    csv = Path(csv)
    if not csv.is_file():
        raise FileNotFoundError(f"GPVAD label file not found: {csv}")
    try:
        df = pd.read_csv(csv, keep_default_na=False)
    except Exception as e:
        raise ValueError(f"cannot parse {csv}: {e}") from e
    if list(df.columns) != ["index", "label"]:
        raise ValueError(f"{csv}: expected columns ['index', 'label'], got {list(df.columns)}")
    if not np.array_equal(df["index"].to_numpy(), np.arange(len(df))):
        raise ValueError(f"{csv}: index must run 0..{len(df) - 1} in order")
    if n_labels is not None and len(df) != n_labels:
        raise ValueError(f"{csv} lists {len(df)} labels but the network has {n_labels} outputs")
    if df["label"].duplicated().any():
        raise ValueError(f"{csv}: duplicated labels {sorted(set(df['label'][df['label'].duplicated()]))[:5]}")
    return tuple(str(s) for s in df["label"])
