"""MACS: annotator sentences on TAU Urban Acoustic Scenes 2019 audio.

Layout (``root`` is the folder passed to the reader):

MACS (Zenodo record 5114771) + TAU Urban Acoustic Scenes 2019 development (Zenodo record 2589280)
    ``root/MACS.yaml``: ``files:`` a list of ``{filename, annotations: [{annotator_id, sentence,
    tags}]}``; one pair per annotation ``sentence`` (tags are not captions and are not used).
    Audio: ``root/TAU-urban-acoustic-scenes-2019-development/audio/{filename}``. Split: "development".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from clap_lib.paper.datasets.common import _check_audio, _listing, _order_columns, _require_root
from clap_lib.paper.datasets.roots import _how_to_get

MACS_SPLIT = "development"  # MACS has no split; its audio is the TAU 2019 development set
TAU2019_AUDIO = Path("TAU-urban-acoustic-scenes-2019-development") / "audio"


def read_macs(root: str | Path, require_audio: bool = True, audio_dir: str | Path | None = None) -> pd.DataFrame:
    """MACS pairs (one per annotation sentence); audio in `audio_dir` (default: root/TAU-.../audio)."""
    root = _require_root(root, "macs")
    path = root / "MACS.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"MACS.yaml not found in {root}. {_how_to_get('macs')}")
    data = _parse_yaml(path)
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list):
        raise ValueError(
            f"{path}: expected a top-level key `files:` holding a list of "
            "{filename, annotations: [{annotator_id, sentence, tags}]}"
        )
    audio_dir = Path(audio_dir) if audio_dir is not None else root / TAU2019_AUDIO
    present = _listing(audio_dir)
    rows = []
    for i, entry in enumerate(files):
        if not isinstance(entry, dict) or "filename" not in entry or not isinstance(entry.get("annotations"), list):
            raise ValueError(f"{path}: files[{i}] lacks `filename` or an `annotations` list: {str(entry)[:200]}")
        for j, ann in enumerate(entry["annotations"]):
            sentence = str(ann.get("sentence") or "").strip() if isinstance(ann, dict) else ""
            if not sentence:
                raise ValueError(f"{path}: files[{i}] ({entry['filename']}) annotation {j} has no `sentence`")
            rows.append((entry["filename"], sentence, ann.get("annotator_id")))
    df = pd.DataFrame(rows, columns=["audio_id", "caption", "annotator_id"])
    df.insert(0, "dataset", "macs")
    df.insert(1, "split", MACS_SPLIT)
    df["audio_path"] = [str(audio_dir / f) for f in df["audio_id"]]
    df["audio_exists"] = df["audio_id"].isin(present)
    return _order_columns(_check_audio(df, "macs", str(audio_dir), require_audio))


def _parse_yaml(path: Path) -> Any:
    try:
        import yaml  # PyYAML comes with the book toolchain; only MACS needs it
    except ImportError as e:
        raise ImportError("reading MACS.yaml needs PyYAML (`pip install pyyaml`)") from e
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.load(f, Loader=loader)
    except yaml.YAMLError as e:
        raise ValueError(f"cannot parse MACS file {path}: {e}") from e
