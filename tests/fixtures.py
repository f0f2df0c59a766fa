"""Small datasets and configs, written in the official formats, shared by the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from clap_lib.config.experiment import ExperimentConfig
from clap_lib.config.profiles import make_config
from clap_lib.data.esc50 import ESC50_CLASSES

# The lab recipe shrunk to seconds: narrow CNN14, a small joint space, one or two epochs, the caption bank, clips
# read as 1 s (the length of write_tiny_esc50's clips; the zero-padding to ESC-50's 5 s is tested in test_esc50.py).
# Written as the `--set` / papermill `overrides` syntax so notebooks can rebuild exactly this config (same cache keys).
TINY_SETS = {
    "captions": "bank",
    "audio.clip_seconds": "1",
    "width": "0.0625",
    "d_embed": "32",
    "text_max_tokens": "16",
    "pretrain.epochs": "2",
    "pretrain.batch_size": "50",
    "clap.frozen_epochs": "3",
    "clap.max_unfrozen_epochs": "1",
    "clap.early_stop_patience": "1",
    "clap.batch_size": "64",
    "clap.unfrozen_pair_fraction": "0.2",
    "clap.max_val_pairs": "64",
    "controlled.enabled": "false",  # its own tiny test: tests/test_controlled.py
}
TINY_OVERRIDES = "; ".join(f"{k}={v}" for k, v in TINY_SETS.items())


def tiny_config(profile: str = "lab", **sets: str) -> ExperimentConfig:
    return make_config(profile, TINY_SETS | sets)


def write_tiny_esc50(root: Path, per_fold: int = 2, seconds: float = 1.0, sr: int = 16000, seed: int = 0) -> Path:
    """All 50 classes x 5 folds x `per_fold` clips in the official layout (meta/esc50.csv + audio/*.wav).

    Each class is a chord of two tones at class-specific pitches plus noise, so a backbone can learn to
    separate them in a handful of steps.
    """
    rng = np.random.default_rng(seed)
    audio = root / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    rows, t = [], np.arange(int(sr * seconds)) / sr
    for fold in range(1, 6):
        for target, category in enumerate(ESC50_CLASSES):
            for j in range(per_fold):
                src = 100000 + 1000 * fold + 10 * target + j
                name = f"{fold}-{src}-A-{target}.wav"
                f1, f2 = 110 * 2 ** (target / 12), 3000 + 80 * target
                x = 0.3 * np.sin(2 * np.pi * f1 * t) + 0.2 * np.sin(2 * np.pi * f2 * t)
                x += 0.05 * rng.standard_normal(len(t))
                sf.write(audio / name, x.astype(np.float32), sr)
                rows.append((name, fold, target, category, target in (0, 1, 10), src, "A"))
    meta = pd.DataFrame(rows, columns=["filename", "fold", "target", "category", "esc10", "src_file", "take"])
    (root / "meta").mkdir(exist_ok=True)
    meta.to_csv(root / "meta" / "esc50.csv", index=False)
    return root


# --- the paper profile's data sets, tiny, in the official layouts (tests/test_paper.py, test_distributed.py) ---


def _tone_wav(path: Path, seed: int, seconds: float = 1.0, sr: int = 16000) -> None:
    """A tone at a file-specific pitch plus noise (files differ, so the contrastive task is not degenerate)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    x = 0.3 * np.sin(2 * np.pi * (150 + 37 * (seed % 60)) * t) + 0.05 * rng.standard_normal(len(t))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.astype(np.float32), sr)


def _table(path: Path, rows: list[tuple], columns: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)


# Captions alternate between ones naming an ESC-50 class word (removed by the clean filter) and neutral ones.
PAPER_CAPTIONS = [
    "a dog barks in the yard",
    "someone speaks softly",
    "rain falls on the roof",
    "a crowd murmurs",
    "a man coughs twice",
    "metal clanks in a workshop",
    "birds chirping at dawn",
    "a radio plays music",
    "a train passes by",
    "people chat in a hall",
    "wind blows hard",
    "a machine hums steadily",
]


def _caption(i: int) -> str:
    return PAPER_CAPTIONS[i % len(PAPER_CAPTIONS)]


def write_paper_clotho(root: Path, n_dev: int = 6, n_val: int = 2) -> Path:
    """Clotho v2.1 layout, five captions per file; some files 1.5 s long or at 22.05 kHz (cropping, resampling)."""
    cols = ["file_name", *(f"caption_{i}" for i in range(1, 6))]
    for split, n, off in (("development", n_dev, 0), ("validation", n_val, 100)):
        rows = [(f"clip {off + k}.wav", *(_caption(off + 5 * k + j) for j in range(5))) for k in range(n)]
        _table(root / f"clotho_captions_{split}.csv", rows, cols)
        for k, r in enumerate(rows):
            _tone_wav(root / split / r[0], off + k, seconds=1.5 if k % 2 else 1.0, sr=22050 if k % 3 == 0 else 16000)
    return root


def write_paper_audiocaps(root: Path, n_train: int = 6, n_val: int = 2) -> Path:
    cols = ["audiocap_id", "youtube_id", "start_time", "caption"]
    train = [(1000 + k, f"ytTrain{k:04d}", 10 * k, _caption(3 * k + 1)) for k in range(n_train)]
    val = [(2000 + 2 * k + j, f"ytValid{k:04d}", 30, _caption(2 * k + j + 5)) for k in range(n_val) for j in range(2)]
    _table(root / "train.csv", train, cols)
    _table(root / "val.csv", val, cols)
    for split, rows in (("train", train), ("val", val)):
        for r in rows:
            _tone_wav(root / "audio" / split / f"{r[1]}_{r[2]}.wav", 200 + r[0] % 97)
    return root


def write_paper_fsd50k(
    root: Path, fnames: tuple[str, ...] = ("64760", "16399", "11111", "22222", "33333", "101000")
) -> Path:
    """FSD50K layout; "101000" is the Freesound id of a tiny-ESC-50 source recording (write_tiny_esc50)."""
    gt, md = root / "FSD50K.ground_truth", root / "FSD50K.metadata"
    _table(gt / "dev.csv", [(f, "Sound", "/m/0", "train") for f in fnames], ["fname", "labels", "mids", "split"])
    _table(gt / "eval.csv", [("99999", "Sound", "/m/0")], ["fname", "labels", "mids"])
    md.mkdir(parents=True, exist_ok=True)
    info = {
        f: {"title": _caption(k + 2), "description": _caption(k + 7) if k % 2 else ""} for k, f in enumerate(fnames)
    }
    (md / "dev_clips_info_FSD50K.json").write_text(pd.Series(info).to_json())
    (md / "eval_clips_info_FSD50K.json").write_text(pd.Series({"99999": {"title": "x", "description": ""}}).to_json())
    for k, f in enumerate(fnames):
        _tone_wav(root / "FSD50K.dev_audio" / f"{f}.wav", 300 + k)
    _tone_wav(root / "FSD50K.eval_audio" / "99999.wav", 399)
    return root


def write_paper_macs(root: Path, n_files: int = 4) -> Path:
    import yaml

    files = [
        {
            "filename": f"street-city-{k}-a.wav",
            "annotations": [{"annotator_id": j, "sentence": _caption(4 * k + j + 3), "tags": []} for j in range(2)],
        }
        for k in range(n_files)
    ]
    root.mkdir(parents=True, exist_ok=True)
    (root / "MACS.yaml").write_text(yaml.safe_dump({"files": files}, sort_keys=False))
    for k, f in enumerate(files):
        _tone_wav(root / "TAU-urban-acoustic-scenes-2019-development" / "audio" / f["filename"], 400 + k)
    return root


#: AudioSet classes of the tiny AudioSet: Dog, Train, "Chicken, rooster" name ESC-50 class words (removed).
PAPER_AUDIOSET_CLASSES = [
    (0, "/m/09x0r", "Speech"),
    (1, "/m/0bt9lr", "Dog"),
    (2, "/m/04rlf", "Music"),
    (3, "/m/07jdr", "Train"),
    (4, "/m/09b5t", "Chicken, rooster"),
    (5, "/m/0342h", "Guitar"),
    (6, "/m/07yv9", "Vehicle"),
    (7, "/m/028v0c", "Silence"),
]
PAPER_AUDIOSET_SEGMENTS = [
    ("seg%02d" % k, labels)
    for k, labels in enumerate(
        [
            "/m/09x0r",
            "/m/09x0r,/m/0bt9lr",
            "/m/04rlf",
            "/m/04rlf,/m/0342h",
            "/m/07jdr",
            "/m/07yv9",
            "/m/07yv9,/m/07jdr",
            "/m/028v0c",
            "/m/09b5t",
            "/m/0342h",
            "/m/09x0r,/m/04rlf",
            "/m/07yv9",
            "/m/028v0c,/m/09x0r",
            "/m/0342h,/m/04rlf",
        ]
    )
]


def write_paper_audioset(root: Path) -> Path:
    """AudioSet layout (segment list + class_labels_indices.csv + audio/{split}/Y{id}.wav), 2 s segments."""
    root.mkdir(parents=True, exist_ok=True)
    header = "# Segments csv\n# num_ytids=14\n# YTID, start_seconds, end_seconds, positive_labels\n"
    (root / "balanced_train_segments.csv").write_text(
        header + "".join(f'{y}, 0.000, 10.000, "{labels}"\n' for y, labels in PAPER_AUDIOSET_SEGMENTS)
    )
    (root / "eval_segments.csv").write_text(header + 'evalseg, 0.000, 10.000, "/m/0bt9lr"\n')
    _table(root / "class_labels_indices.csv", PAPER_AUDIOSET_CLASSES, ["index", "mid", "display_name"])
    for k, (y, _) in enumerate(PAPER_AUDIOSET_SEGMENTS):
        _tone_wav(root / "audio" / "balanced_train" / f"Y{y}.wav", 500 + k, seconds=2.0)
    return root


def write_fake_panns(path: Path, width: float, n_mels: int, seed: int = 0) -> Path:
    """A checkpoint in the official PANNs layout ({'model': state_dict} incl. the STFT/log-mel buffers) of a
    randomly initialised CNN14 of `width` (the real one is full width)."""
    import torch

    from clap_lib.models.backbones.cnn14 import Cnn14

    torch.manual_seed(seed)
    state = dict(Cnn14(n_mels, width, n_classes=527).state_dict())
    state["spectrogram_extractor.stft.conv_real.weight"] = torch.zeros(513, 1, 1024)
    state["logmel_extractor.melW"] = torch.zeros(513, n_mels)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"iteration": 0, "model": state}, path)
    return path


def write_paper_datasets(base: Path) -> dict[str, Path]:
    """The four caption data sets and AudioSet under `base`; returns the roots (add "esc50" yourself)."""
    return {
        "clotho": write_paper_clotho(base / "clotho"),
        "audiocaps": write_paper_audiocaps(base / "audiocaps"),
        "fsd50k": write_paper_fsd50k(base / "fsd50k"),
        "macs": write_paper_macs(base / "macs"),
        "audioset": write_paper_audioset(base / "audioset"),
    }
