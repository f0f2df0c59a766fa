"""What each data set root holds (counts, what is missing and where it looked), without training anything, and
`python -m clap_lib dry-run`: what a profile needs (data and weight files), found or missing."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from clap_lib.config.experiment import ExperimentConfig
from clap_lib.config.levels import PRETRAININGS
from clap_lib.data.esc50 import locate_esc50, read_esc50_meta
from clap_lib.paper.datasets.audioset import (
    AUDIOSET_SPLITS,
    audioset_classes_removed,
    clean_audioset_segments,
    read_audioset_class_labels,
    read_audioset_segments,
    read_ontology,
)
from clap_lib.paper.datasets.common import _require_root
from clap_lib.paper.datasets.paper_set import TRAINING_SPLITS, filter_pairs, read_caption_dataset
from clap_lib.paper.datasets.roots import ALL_DATASETS, ROOT_ENV, _how_to_get, default_roots


def _pair_counts(df: pd.DataFrame) -> dict[str, Any]:
    files = df.drop_duplicates("audio_path")
    clean = filter_pairs(df)
    return {
        "pairs_per_split": {str(k): int(v) for k, v in df.groupby("split", sort=False).size().items()},
        "n_pairs": len(df),
        "n_clean_pairs": clean.n_kept,
        "n_removed_pairs": clean.n_removed,
        "n_audio_files": len(files),
        "n_audio_present": int(files["audio_exists"].sum()),
        "n_missing_audio": int((~files["audio_exists"]).sum()),
        "n_pairs_missing_audio": int((~df["audio_exists"]).sum()),
    }


def _probe_captions(name: str, root: Path) -> dict[str, Any]:
    df = read_caption_dataset(name, root, require_audio=False)
    out = _pair_counts(df)
    train = df[df["split"].isin(TRAINING_SPLITS[name])]
    out["n_training_pairs"] = len(train)
    out["n_clean_training_pairs"] = filter_pairs(train).n_kept if len(train) else 0
    return out


def _probe_esc50(root: Path) -> dict[str, Any]:
    meta = read_esc50_meta(locate_esc50(root))
    return {
        "n_audio_files": len(meta),
        "n_audio_present": len(meta),
        "n_missing_audio": 0,
        "n_classes": int(meta["target"].nunique()),
        "n_folds": int(meta["fold"].nunique()),
    }


def _probe_audioset(root: Path) -> dict[str, Any]:
    root = _require_root(root, "audioset")
    out: dict[str, Any] = {}
    classes = None
    if (root / "class_labels_indices.csv").is_file():
        classes = read_audioset_class_labels(root)
        out["n_classes"] = len(classes)
    if (root / "ontology.json").is_file():
        onto = read_ontology(root)
        out["n_ontology_classes"] = len(onto)
        classes = classes if classes is not None else onto
    ontology = root / "ontology.json" if (root / "ontology.json").is_file() else None
    removed = audioset_classes_removed(classes, ontology=ontology) if classes is not None else None
    if removed is not None:
        out["n_classes_removed"] = len(removed)
    if any((root / f).is_file() for f in AUDIOSET_SPLITS.values()):
        seg = read_audioset_segments(root, require_audio=False)
        out.update(
            {
                "segments_per_split": {str(k): int(v) for k, v in seg.groupby("split", sort=False).size().items()},
                "n_segments": len(seg),
                "n_audio_files": len(seg),
                "n_audio_present": int(seg["audio_exists"].sum()),
                "n_missing_audio": int((~seg["audio_exists"]).sum()),
            }
        )
        if removed is not None:
            out["n_clean_segments"] = len(clean_audioset_segments(seg, removed["mid"]))
    elif not out:
        raise FileNotFoundError(
            f"no AudioSet segment lists, class_labels_indices.csv or ontology.json in {root}. "
            + _how_to_get("audioset")
        )
    else:
        out["missing"] = (
            f"segment lists ({', '.join(AUDIOSET_SPLITS.values())}) not in {root}: "
            "metadata only, nothing to pretrain on"
        )
    return out


def dry_run_report(roots: Mapping[str, str | Path | None]) -> dict[str, dict[str, Any]]:
    """What each data set root holds, without training or loading any model.

    For every name in :data:`ALL_DATASETS`: ``found`` (bool), ``root`` (where it looked, or None),
    ``missing`` (what is missing and where: the reader's error when not found; for AudioSet found with
    metadata only, the absent segment lists) and, when found, the counts: audio files
    referenced / present / missing, pairs per split, pairs and clean pairs (leakage filter, all 50
    ESC-50 classes), training-split pairs; for ESC-50 clips/classes/folds; for AudioSet classes,
    classes the filter removes, segments and clean segments.
    """
    probes = {"esc50": _probe_esc50, "audioset": _probe_audioset}
    report: dict[str, dict[str, Any]] = {}
    for name in ALL_DATASETS:
        root = roots.get(name)
        entry: dict[str, Any] = {"found": False, "root": None if root in (None, "") else str(root)}
        if entry["root"] is None:
            entry["missing"] = f"no root given (set ${ROOT_ENV[name]} or pass roots['{name}']). {_how_to_get(name)}"
        else:
            probe = probes.get(name) or (lambda r, n=name: _probe_captions(n, r))
            try:
                entry.update(probe(Path(root)))
                entry["found"] = True
            except (FileNotFoundError, ValueError, ImportError) as e:
                entry["missing"] = str(e)
        report[name] = entry
    return report


_COUNT_LABELS = (
    ("pairs_per_split", "pairs per split"),
    ("segments_per_split", "segments per split"),
    ("n_audio_files", "audio files referenced"),
    ("n_audio_present", "audio files present"),
    ("n_missing_audio", "audio files missing"),
    ("n_pairs", "pairs"),
    ("n_clean_pairs", "clean pairs (leakage filter, 50 ESC-50 classes)"),
    ("n_removed_pairs", "pairs removed"),
    ("n_training_pairs", "training-split pairs"),
    ("n_clean_training_pairs", "clean training-split pairs"),
    ("n_classes", "classes"),
    ("n_folds", "folds"),
    ("n_ontology_classes", "ontology classes"),
    ("n_classes_removed", "classes removed by the filter"),
    ("n_segments", "segments"),
    ("n_clean_segments", "clean segments"),
)


def format_dry_run(report: Mapping[str, Mapping[str, Any]]) -> str:
    """The dry-run report as plain text, one block per data set."""
    lines = []
    for name, entry in report.items():
        status = "found" if entry.get("found") else "MISSING"
        lines.append(f"{name}: {status} ({entry.get('root') or 'no root'})")
        for key, label in _COUNT_LABELS:
            if key in entry:
                value = entry[key]
                text = ", ".join(f"{k} {v:,}" for k, v in value.items()) if isinstance(value, dict) else f"{value:,}"
                lines.append(f"  {label}: {text}")
        if entry.get("missing"):
            lines.append(f"  missing: {entry['missing']}")
    return "\n".join(lines)


def dry_run(cfg: ExperimentConfig, esc50: str | None, data_root: str | None) -> int:
    """Print, per dataset and weight file the profile needs, what was found and what is missing; exit 1 if
    anything is missing."""
    from clap_lib.models import backbones  # torch, only for this command

    roots = default_roots(data_root)
    if esc50:
        roots["esc50"] = esc50
    report = dry_run_report(roots)
    if cfg.profile != "paper":  # the ESC-50-sized profiles read ESC-50 (+ caption text) only
        report = {
            k: v for k, v in report.items() if k == "esc50" or (cfg.captions == "real" and k in ("clotho", "audiocaps"))
        }
    spec = backbones.spec(cfg.backbone)
    for level in PRETRAININGS:
        src = cfg.weights.source(level)
        if src.file is None:
            continue
        try:
            path = spec.weights_file(src.file)
            report[f"weights {level}"] = {"found": True, "path": str(path)}
        except FileNotFoundError as e:
            report[f"weights {level}"] = {"found": False, "error": str(e)}
    print(f"profile {cfg.profile}: data check (nothing is trained)")
    print(format_dry_run(report))
    return 0 if all(r.get("found") for r in report.values()) else 1
