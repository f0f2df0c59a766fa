"""Where each data set lives (`$CLAP_<NAME>`, else the shared data folder) and where to get it."""

from __future__ import annotations

import os
from pathlib import Path

from clap_lib.config.experiment import CAPTION_DATASETS
from clap_lib.data.esc50 import ESC50_ENV
from clap_lib.data.paths import shared_data_dir

ALL_DATASETS: tuple[str, ...] = (*CAPTION_DATASETS, "esc50", "audioset")

#: Environment variable naming each data set's root (checked by :func:`default_roots`).
ROOT_ENV: dict[str, str] = {
    "clotho": "CLAP_CLOTHO",
    "audiocaps": "CLAP_AUDIOCAPS",
    "fsd50k": "CLAP_FSD50K",
    "macs": "CLAP_MACS",
    "esc50": ESC50_ENV,
    "audioset": "CLAP_AUDIOSET",
}

LANDING_PAGES: dict[str, str] = {
    "clotho": "https://zenodo.org/record/4783391",
    "audiocaps": "https://github.com/cdjkim/audiocaps (captions; the audio must be fetched from YouTube)",
    "fsd50k": "https://zenodo.org/record/4060432",
    "macs": "https://zenodo.org/record/5114771 (captions) + https://zenodo.org/record/2589280 (TAU 2019 audio)",
    "esc50": "https://github.com/karolpiczak/ESC-50",
    "audioset": "https://research.google.com/audioset/download.html (audio must be fetched from YouTube)",
    "panns": "https://zenodo.org/record/3987831",
}


def _how_to_get(dataset: str) -> str:
    extra = " and `tau2019`" if dataset == "macs" else ""
    return (
        f"Get it from {LANDING_PAGES[dataset]} (or `clap_lib.paper.datasets.download('{dataset}', DIR)`{extra}, "
        f"which needs internet) and pass its folder, or set ${ROOT_ENV.get(dataset, 'CLAP_' + dataset.upper())}."
    )


def default_roots(base: str | Path | None = None) -> dict[str, Path | None]:
    """Root of each data set: `$CLAP_<NAME>` if set, else `<base>/<name>` or `<base>/captions/<name>`.

    `base` defaults to :func:`clap_lib.data.esc50.shared_data_dir`. When neither folder exists the
    `<base>/<name>` path is still returned so the dry run can say where it looked; None if no base.
    """
    base = Path(base) if base is not None else shared_data_dir()
    roots: dict[str, Path | None] = {}
    for name in ALL_DATASETS:
        env = os.environ.get(ROOT_ENV[name])
        if env:
            roots[name] = Path(env)
        elif base is None:
            roots[name] = None
        else:
            roots[name] = next((p for p in (base / name, base / "captions" / name) if p.is_dir()), base / name)
    return roots
