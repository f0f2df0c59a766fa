"""The official download URLs of every data set and weights file, and a resumable fetch (needs internet)."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from clap_lib.data.esc50 import ESC50_URL
from clap_lib.io import atomic_write
from clap_lib.paper.datasets.audiocaps import AUDIOCAPS_SPLITS
from clap_lib.paper.datasets.audioset import AUDIOSET_SPLITS, ONTOLOGY_URL
from clap_lib.paper.datasets.clotho import CLOTHO_SPLITS

_CLOTHO = "https://zenodo.org/record/4783391/files/"
_FSD50K = "https://zenodo.org/record/4060432/files/"
_TAU19 = "https://zenodo.org/record/2589280/files/TAU-urban-acoustic-scenes-2019-development."
_AUDIOSET_CSV = "http://storage.googleapis.com/us_audioset/youtube_corpus/v1/csv/"

#: Official download URLs: data set -> {file name: url}. Archives are downloaded, never extracted
#: (Clotho ships 7z; FSD50K's audio is a split zip that `zip -s 0 X.zip --out single.zip` joins).
DOWNLOADS: dict[str, dict[str, str]] = {
    "clotho": {
        **{f"clotho_captions_{s}.csv": f"{_CLOTHO}clotho_captions_{s}.csv" for s in CLOTHO_SPLITS},
        **{f"clotho_audio_{s}.7z": f"{_CLOTHO}clotho_audio_{s}.7z" for s in CLOTHO_SPLITS},
    },
    "audiocaps": {
        f"{s}.csv": f"https://raw.githubusercontent.com/cdjkim/audiocaps/master/dataset/{s}.csv"
        for s in AUDIOCAPS_SPLITS
    },
    "fsd50k": {
        name: _FSD50K + name
        for name in (
            "FSD50K.ground_truth.zip",
            "FSD50K.metadata.zip",
            "FSD50K.doc.zip",
            "FSD50K.dev_audio.zip",
            *(f"FSD50K.dev_audio.z0{i}" for i in range(1, 6)),
            "FSD50K.eval_audio.zip",
            "FSD50K.eval_audio.z01",
        )
    },
    "macs": {
        name: f"https://zenodo.org/record/5114771/files/{name}"
        for name in ("MACS.yaml", "MACS_competence.csv", "LICENSE.txt")
    },
    "tau2019": {
        f"TAU-urban-acoustic-scenes-2019-development.{part}.zip": f"{_TAU19}{part}.zip"
        for part in ("meta", "doc", *(f"audio.{i}" for i in range(1, 22)))
    },
    "esc50": {"ESC-50-master.zip": ESC50_URL},
    "audioset": {
        **{name: _AUDIOSET_CSV + name for name in (*AUDIOSET_SPLITS.values(), "class_labels_indices.csv")},
        "ontology.json": ONTOLOGY_URL,
    },
    "panns": {"Cnn14_mAP=0.431.pth": "https://zenodo.org/record/3987831/files/Cnn14_mAP%3D0.431.pth"},
}


def download(name: str, dest: str | Path, timeout: float = 60.0) -> list[Path]:
    """Fetch the official files of `name` (a key of :data:`DOWNLOADS`) into `dest`; returns their paths.

    Files already in `dest` are kept (a rerun resumes). Archives are not extracted. Raises
    ConnectionError naming the URL when the network cannot be reached.
    """
    if name not in DOWNLOADS:
        raise ValueError(f"unknown download {name!r}; allowed: {', '.join(DOWNLOADS)}")
    dest = Path(dest)
    paths = []
    for fname, url in DOWNLOADS[name].items():
        target = dest / fname
        if not target.is_file():
            atomic_write(target, lambda tmp, u=url: _fetch(u, tmp, timeout))
        paths.append(target)
    return paths


def _fetch(url: str, target: Path, timeout: float) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(target, "wb") as out:
            while chunk := response.read(1 << 20):
                out.write(chunk)
    except (urllib.error.URLError, TimeoutError, ConnectionError) as e:  # not local disk errors
        raise ConnectionError(
            f"cannot download {url}: {getattr(e, 'reason', e)}. This needs internet access; "
            f"on an offline machine fetch the file elsewhere and copy it to {target.parent}"
        ) from e
