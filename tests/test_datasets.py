"""Readers of the official data set layouts, the paper training set, cleaning, dry run and downloads.

Each fixture writes a tiny data set in the exact official layout (file names, columns, folders,
1-second wav files); the real caption files of the shared data folder are read when present.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from clap_lib.data.esc50 import ESC50_CLASSES
from clap_lib.data.filtering import leakage_filter
from clap_lib.data.paths import shared_data_dir
from clap_lib.paper import datasets as D
from clap_lib.paper.dry_run import dry_run_report, format_dry_run

SR = 16000


def _wav(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(SR) / SR
    sf.write(path, (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), SR)


def _csv(path: Path, rows: list[tuple], columns: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)


# --- fixtures in the official layouts ------------------------------------------------------------

CLOTHO_COLUMNS = ["file_name", *(f"caption_{i}" for i in range(1, 6))]
CLOTHO_DEV = [
    (
        "a.wav",
        "A dog barks twice.",
        "Someone walks on gravel.",
        "Rain falls on a roof.",
        "A man speaks quietly.",
        "Wind blows through trees.",
    ),
    (
        "b b, c.wav",
        "Birds chirp at dawn.",
        "A car passes by.",
        "People chat in a cafe.",
        "A door creaks open.",
        "Water drips into a sink.",
    ),
]
CLOTHO_VAL = [("v.wav", "A crowd cheers.", "A bell rings.", "Footsteps echo.", "A baby cries.", "A man coughs.")]
CLOTHO_EVAL = [("e.wav", "A train passes.", "Music plays.", "A cat meows.", "Someone types.", "A clock ticks.")]


def write_clotho(root: Path) -> Path:
    """Clotho v2.1: development + evaluation CSVs in the root, validation in clotho_csv_files/; audio per split."""
    _csv(root / "clotho_captions_development.csv", CLOTHO_DEV, CLOTHO_COLUMNS)
    _csv(root / "clotho_csv_files" / "clotho_captions_validation.csv", CLOTHO_VAL, CLOTHO_COLUMNS)
    _csv(root / "clotho_captions_evaluation.csv", CLOTHO_EVAL, CLOTHO_COLUMNS)
    for split, rows in (("development", CLOTHO_DEV), ("validation", CLOTHO_VAL), ("evaluation", CLOTHO_EVAL)):
        for r in rows:
            _wav(root / split / r[0])
    return root


AUDIOCAPS_COLUMNS = ["audiocap_id", "youtube_id", "start_time", "caption"]
AUDIOCAPS_TRAIN = [
    (91139, "r1nicOVtvkQ", 130, "A woman talks nearby as water pours"),
    (58146, "-UDGBjjwyaq", 20, "Multiple clanging and clanking sounds"),
    (12345, "01234567890", 0, "NA"),  # an all-digit id with a leading zero and a caption reading "NA"
]
AUDIOCAPS_VAL = [(97151, "vfY_TJq7n_U", 130, "Ducks quack"), (97152, "vfY_TJq7n_U", 130, "A duck call is blown")]


def write_audiocaps(root: Path, csv_dir: str = "") -> Path:
    """AudioCaps CSVs (root or dataset/); audio: primary `{id}_{start}.wav` names, one fallback `Y{id}.wav`."""
    _csv(root / csv_dir / "train.csv", AUDIOCAPS_TRAIN, AUDIOCAPS_COLUMNS)
    _csv(root / csv_dir / "val.csv", AUDIOCAPS_VAL, AUDIOCAPS_COLUMNS)
    _wav(root / "audio" / "train" / "r1nicOVtvkQ_130.wav")
    _wav(root / "audio" / "train" / "Y-UDGBjjwyaq.wav")
    _wav(root / "audio" / "train" / "01234567890_0.wav")
    _wav(root / "audio" / "val" / "vfY_TJq7n_U_130.wav")
    return root


def write_fsd50k(root: Path) -> Path:
    gt, md = root / "FSD50K.ground_truth", root / "FSD50K.metadata"
    _csv(
        gt / "dev.csv",
        [
            ("64760", "Electric_guitar,Guitar,Music", "/m/02sgy,/m/0342h,/m/04rlf", "train"),
            ("16399", "Bark,Dog,Animal", "/m/05tny_,/m/0bt9lr,/m/0jbk", "val"),
        ],
        ["fname", "labels", "mids", "split"],
    )
    _csv(
        gt / "eval.csv",
        [("37199", "Male_speech_and_man_speaking,Speech", "/m/05zppz,/m/09x0r")],
        ["fname", "labels", "mids"],
    )
    md.mkdir(parents=True)
    (md / "dev_clips_info_FSD50K.json").write_text(
        json.dumps(
            {
                "64760": {
                    "title": "guitar_riff.wav",
                    "description": "A short riff on an electric guitar.",
                    "tags": ["guitar"],
                    "license": "http://creativecommons.org/publicdomain/zero/1.0/",
                    "uploader": "u",
                },
                "16399": {"title": "Dog barking", "description": "", "tags": ["dog"], "license": "", "uploader": "v"},
            }
        )
    )
    (md / "eval_clips_info_FSD50K.json").write_text(
        json.dumps(
            {
                "37199": {
                    "title": "man talking",
                    "description": "A man speaks slowly.",
                    "tags": [],
                    "license": "",
                    "uploader": "w",
                }
            }
        )
    )
    for split, fnames in (("dev", ("64760", "16399")), ("eval", ("37199",))):
        for f in fnames:
            _wav(root / f"FSD50K.{split}_audio" / f"{f}.wav")
    return root


MACS_FILES = ["airport-lisbon-1000-40000-a.wav", "street_traffic-helsinki-161-4901-a.wav"]


def write_macs(root: Path) -> Path:
    doc = {
        "files": [
            {
                "filename": MACS_FILES[0],
                "annotations": [
                    {
                        "annotator_id": 123,
                        "sentence": "adults talking and footsteps",
                        "tags": ["adults talking", "footsteps"],
                    },
                    {"annotator_id": 45, "sentence": "a dog barks in a busy hall", "tags": ["dog"]},
                    {"annotator_id": 7, "sentence": "people speaking in a large hall", "tags": ["adults talking"]},
                ],
            },
            {
                "filename": MACS_FILES[1],
                "annotations": [
                    {"annotator_id": 123, "sentence": "traffic noise and a siren", "tags": ["traffic noise", "siren"]},
                    {"annotator_id": 9, "sentence": "vehicles pass on a busy road", "tags": ["traffic noise"]},
                ],
            },
        ]
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "MACS.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    for f in MACS_FILES:
        _wav(root / "TAU-urban-acoustic-scenes-2019-development" / "audio" / f)
    return root


SEGMENT_HEADER = (
    "# Segments csv created Sun Mar  5 10:54:31 2017\n"
    "# num_ytids=5, num_segs=5, num_unique_labels=6, num_positive_labels=8\n"
    "# YTID, start_seconds, end_seconds, positive_labels\n"
)
CLASS_LABELS = [
    (0, "/m/09x0r", "Speech"),
    (1, "/m/0bt9lr", "Dog"),
    (2, "/m/09b5t", "Chicken, rooster"),
    (3, "/m/04rlf", "Music"),
    (4, "/m/07jdr", "Train"),
    (5, "/m/06d_3", "Rail transport"),
]


def write_audioset(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "balanced_train_segments.csv").write_text(
        SEGMENT_HEADER
        + (
            '--PJHxphWEs, 30.000, 40.000, "/m/09x0r"\n'
            '--ZhevVpy1s, 50.000, 60.000, "/m/09x0r,/m/0bt9lr"\n'
            '--aE2O5G5WE, 0.000, 10.000, "/m/04rlf"\n'
            '--aO5cdqSAg, 30.000, 40.000, "/m/09b5t,/m/04rlf"\n'
        )
    )
    (root / "eval_segments.csv").write_text(SEGMENT_HEADER + '-0RWZT-miFs, 420.000, 430.000, "/m/06d_3"\n')
    _csv(root / "class_labels_indices.csv", CLASS_LABELS, ["index", "mid", "display_name"])
    (root / "ontology.json").write_text(
        json.dumps(
            [
                {
                    "id": m,
                    "name": n,
                    "description": "",
                    "citation_uri": "",
                    "positive_examples": [],
                    "child_ids": [],
                    "restrictions": [],
                }
                for _, m, n in CLASS_LABELS
            ]
        )
    )
    _wav(root / "audio" / "balanced_train" / "Y--PJHxphWEs.wav")
    _wav(root / "audio" / "balanced_train" / "--ZhevVpy1s.wav")  # the fallback name
    return root


def write_esc50_mini(root: Path) -> Path:
    rows = [
        ("1-100032-A-0.wav", 1, 0, "dog", True, 100032, "A"),
        ("5-9032-A-0.wav", 5, 0, "dog", True, 9032, "A"),
        ("1-17367-A-10.wav", 1, 10, "rain", True, 17367, "A"),
    ]
    _csv(root / "meta" / "esc50.csv", rows, ["filename", "fold", "target", "category", "esc10", "src_file", "take"])
    for r in rows:
        _wav(root / "audio" / r[0])
    return root


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """One folder holding all four caption data sets, as `<base>/<name>`."""
    b = tmp_path_factory.mktemp("datasets")
    write_clotho(b / "clotho")
    write_audiocaps(b / "audiocaps")
    write_fsd50k(b / "fsd50k")
    write_macs(b / "macs")
    return b


# --- Clotho --------------------------------------------------------------------------------------


def test_clotho_reads_all_splits_in_file_major_order(base):
    df = D.read_clotho(base / "clotho")
    assert list(df.columns[:6]) == list(D.PAIR_COLUMNS)
    assert df.groupby("split", sort=False).size().to_dict() == {"development": 10, "validation": 5, "evaluation": 5}
    dev = df[df["split"] == "development"]
    assert list(dev["caption"][:5]) == list(CLOTHO_DEV[0][1:])
    assert list(dev["caption_n"][:5]) == [1, 2, 3, 4, 5]
    assert dev["audio_id"].iloc[5] == "b b, c.wav"
    assert dev["audio_path"].iloc[5] == str(base / "clotho" / "development" / "b b, c.wav")
    assert df["audio_exists"].all() and (df["dataset"] == "clotho").all()
    assert len(D.read_clotho(base / "clotho", splits=["validation"])) == 5  # found in clotho_csv_files/


def test_clotho_errors(tmp_path):
    root = write_clotho(tmp_path / "c")
    (root / "clotho_csv_files" / "clotho_captions_validation.csv").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"clotho_captions_validation\.csv not found.*zenodo\.org/record/4783391"
    ):
        D.read_clotho(root, splits=["validation"])
    assert set(D.read_clotho(root)["split"]) == {"development", "evaluation"}  # v1-like: present splits only
    with pytest.raises(ValueError, match="unknown clotho split"):
        D.read_clotho(root, splits=["train"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no clotho caption"):
        D.read_clotho(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        D.read_clotho(tmp_path / "nowhere")

    _csv(root / "clotho_captions_evaluation.csv", [r[:5] for r in CLOTHO_EVAL], CLOTHO_COLUMNS[:5])
    with pytest.raises(ValueError, match=r"lacks the clotho columns \['caption_5'\]"):
        D.read_clotho(root, splits=["evaluation"])

    (root / "development" / "a.wav").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"1 of 2 clotho audio files are missing.*'a\.wav'.*require_audio=False"
    ):
        D.read_clotho(root, splits=["development"])
    df = D.read_clotho(root, splits=["development"], require_audio=False)
    assert len(df) == 10 and list(df["audio_exists"]) == [False] * 5 + [True] * 5


# --- AudioCaps -----------------------------------------------------------------------------------


@pytest.mark.parametrize("csv_dir", ["", "dataset"])
def test_audiocaps_primary_and_fallback_audio(tmp_path, csv_dir):
    root = write_audiocaps(tmp_path / "ac", csv_dir)
    df = D.read_audiocaps(root)
    assert df.groupby("split", sort=False).size().to_dict() == {"train": 3, "val": 2}
    tr = df[df["split"] == "train"]
    assert list(tr["audio_id"]) == ["r1nicOVtvkQ_130", "-UDGBjjwyaq_20", "01234567890_0"]
    assert list(tr["audio_path"]) == [
        str(root / "audio" / "train" / n) for n in ("r1nicOVtvkQ_130.wav", "Y-UDGBjjwyaq.wav", "01234567890_0.wav")
    ]
    assert list(tr["caption"]) == [r[3] for r in AUDIOCAPS_TRAIN]  # "NA" stays a caption
    assert list(tr["audiocap_id"]) == ["91139", "58146", "12345"] and list(tr["start_time"]) == [130, 20, 0]
    assert df["audio_exists"].all()
    assert df[df["split"] == "val"]["audio_id"].nunique() == 1


def test_audiocaps_errors(tmp_path):
    root = write_audiocaps(tmp_path / "ac")
    (root / "audio" / "train" / "r1nicOVtvkQ_130.wav").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 of 3 audiocaps audio files are missing.*r1nicOVtvkQ_130\.wav"):
        D.read_audiocaps(root, splits=["train"])
    df = D.read_audiocaps(root, splits=["train"], require_audio=False)
    assert list(df["audio_exists"]) == [False, True, True]
    assert df["audio_path"].iloc[0] == str(root / "audio" / "train" / "r1nicOVtvkQ_130.wav")  # primary name
    with pytest.raises(FileNotFoundError, match=r"test\.csv not found.*github\.com/cdjkim/audiocaps"):
        D.read_audiocaps(root, splits=["test"])
    _csv(root / "val.csv", [r[:3] for r in AUDIOCAPS_VAL], AUDIOCAPS_COLUMNS[:3])
    with pytest.raises(ValueError, match=r"lacks the audiocaps columns \['caption'\]"):
        D.read_audiocaps(root, splits=["val"])
    _csv(root / "val.csv", [(1, "x", "ten", "a caption")], AUDIOCAPS_COLUMNS)
    with pytest.raises(ValueError, match="start_time must be a whole number.*'ten'"):
        D.read_audiocaps(root, splits=["val"], require_audio=False)


# --- FSD50K --------------------------------------------------------------------------------------


def test_fsd50k_title_and_description_pairs(base):
    df = D.read_fsd50k(base / "fsd50k")
    assert len(df) == 5  # 64760: title + description; 16399: title only (empty description); 37199: both
    assert list(df["caption"]) == [
        "guitar_riff.wav",
        "A short riff on an electric guitar.",
        "Dog barking",
        "man talking",
        "A man speaks slowly.",
    ]
    assert list(df["caption_field"]) == ["title", "description", "title", "title", "description"]
    assert list(df["split"]) == ["dev"] * 3 + ["eval"] * 2
    assert list(df["fsd_split"]) == ["train", "train", "val", "eval", "eval"]
    assert df["labels"].iloc[2] == ("Bark", "Dog", "Animal")
    assert df["audio_path"].iloc[3] == str(base / "fsd50k" / "FSD50K.eval_audio" / "37199.wav")
    assert df["audio_exists"].all()
    assert len(D.read_fsd50k(base / "fsd50k", fields=("title",))) == 3


def test_fsd50k_errors(tmp_path):
    root = write_fsd50k(tmp_path / "f")
    info = root / "FSD50K.metadata" / "dev_clips_info_FSD50K.json"
    meta = json.loads(info.read_text())
    del meta["16399"]
    info.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"no entry for 1 clips.*\['16399'\]"):
        D.read_fsd50k(root, splits=["dev"])
    info.unlink()
    with pytest.raises(FileNotFoundError, match=r"dev_clips_info_FSD50K\.json not found.*zenodo\.org/record/4060432"):
        D.read_fsd50k(root, splits=["dev"])
    _csv(root / "FSD50K.ground_truth" / "eval.csv", [("37199", "Speech")], ["fname", "labels"])
    with pytest.raises(ValueError, match=r"lacks the fsd50k columns \['mids'\]"):
        D.read_fsd50k(root, splits=["eval"])
    root2 = write_fsd50k(tmp_path / "g")
    (root2 / "FSD50K.eval_audio" / "37199.wav").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 of 1 fsd50k audio files are missing.*37199\.wav"):
        D.read_fsd50k(root2, splits=["eval"])


# --- MACS ----------------------------------------------------------------------------------------


def test_macs_one_pair_per_annotation(base):
    df = D.read_macs(base / "macs")
    assert len(df) == 5 and (df["split"] == "development").all()
    assert list(df["audio_id"]) == [MACS_FILES[0]] * 3 + [MACS_FILES[1]] * 2
    assert df["caption"].iloc[1] == "a dog barks in a busy hall"
    assert list(df["annotator_id"]) == [123, 45, 7, 123, 9]
    assert df["audio_path"].iloc[0] == str(
        base / "macs" / "TAU-urban-acoustic-scenes-2019-development" / "audio" / MACS_FILES[0]
    )


def test_macs_errors(tmp_path):
    root = write_macs(tmp_path / "m")
    (root / "TAU-urban-acoustic-scenes-2019-development" / "audio" / MACS_FILES[1]).unlink()
    with pytest.raises(FileNotFoundError, match=r"1 of 2 macs audio files are missing.*street_traffic"):
        D.read_macs(root)
    assert int(D.read_macs(root, require_audio=False)["audio_exists"].sum()) == 3
    (root / "MACS.yaml").write_text(yaml.safe_dump({"clips": []}))
    with pytest.raises(ValueError, match="top-level key `files:`"):
        D.read_macs(root)
    (root / "MACS.yaml").unlink()
    with pytest.raises(FileNotFoundError, match=r"MACS\.yaml not found.*zenodo\.org/record/5114771"):
        D.read_macs(root)


# --- AudioSet ------------------------------------------------------------------------------------


def test_audioset_segments_and_cleaning(tmp_path):
    root = write_audioset(tmp_path / "as")
    seg = D.read_audioset_segments(root, require_audio=False)
    assert seg.groupby("split", sort=False).size().to_dict() == {"balanced_train": 4, "eval": 1}
    assert seg["labels"].iloc[1] == ("/m/09x0r", "/m/0bt9lr")
    assert list(seg["start_seconds"][:2]) == [30.0, 50.0] and seg["end_seconds"].iloc[4] == 430.0
    assert seg["audio_path"].iloc[0] == str(root / "audio" / "balanced_train" / "Y--PJHxphWEs.wav")
    assert seg["audio_path"].iloc[1] == str(root / "audio" / "balanced_train" / "--ZhevVpy1s.wav")
    assert list(seg["audio_exists"]) == [True, True, False, False, False]
    with pytest.raises(FileNotFoundError, match=r"2 of 4 audioset audio files are missing.*Y--aE2O5G5WE\.wav"):
        D.read_audioset_segments(root, splits=["balanced_train"])

    labels = D.read_audioset_class_labels(root)
    assert labels["display_name"].iloc[2] == "Chicken, rooster" and labels["index"].iloc[5] == 5
    names_only = D.audioset_classes_removed(labels, expand=False)
    assert list(names_only["name"]) == ["Dog", "Chicken, rooster", "Train"]  # the literal rule keeps "Rail transport"
    assert list(names_only["matched_words"]) == [("dog",), ("rooster",), ("train",)]
    removed = D.audioset_classes_removed(labels, ontology=root)
    assert list(removed["name"]) == ["Dog", "Chicken, rooster", "Train", "Rail transport"]
    assert list(removed["reason"]) == [
        "name match: dog",
        "name match: rooster",
        "name match: train",
        "mapped to ESC-50 train",
    ]
    assert list(removed["esc50_classes"]) == [("dog",), ("rooster",), ("train",), ("train",)]
    assert list(D.audioset_classes_removed(D.read_ontology(root))["mid"]) == list(removed["mid"])
    clean = D.clean_audioset_segments(seg, removed["mid"])
    assert list(clean["audio_id"]) == ["--PJHxphWEs", "--aE2O5G5WE"]


def test_audioset_errors(tmp_path):
    root = write_audioset(tmp_path / "as")
    (root / "eval_segments.csv").write_text(SEGMENT_HEADER + "abc, x, 10.0\n")
    with pytest.raises(ValueError, match=r"eval_segments\.csv: 1 rows are not"):
        D.read_audioset_segments(root, splits=["eval"], require_audio=False)
    with pytest.raises(FileNotFoundError, match=r"unbalanced_train_segments\.csv not found"):
        D.read_audioset_segments(root, splits=["unbalanced_train"])
    (root / "ontology.json").write_text(json.dumps([{"name": "Dog"}]))
    with pytest.raises(ValueError, match="at least `id` and `name`"):
        D.read_ontology(root)
    with pytest.raises(ValueError, match=r"\(mid, display_name\) or \(id, name\)"):
        D.audioset_classes_removed(pd.DataFrame({"label": ["Dog"]}))


# --- training set, validation split, cleaning ----------------------------------------------------


def test_paper_training_set_is_the_union_of_training_splits(base):
    roots = {name: base / name for name in D.CAPTION_DATASETS}
    df = D.paper_training_set(roots)
    assert list(df.columns) == [*D.PAIR_COLUMNS, "freesound_id"]
    fsd = df["dataset"] == "fsd50k"  # an FSD50K fname is its Freesound ID; no Clotho metadata file here: no ID
    assert (df.loc[fsd, "freesound_id"] == df.loc[fsd, "audio_id"]).all() and (df.loc[~fsd, "freesound_id"] == "").all()
    # clotho development + validation, audiocaps train + val, fsd50k dev, macs (evaluation/test splits left out)
    assert df.groupby("dataset", sort=False).size().to_dict() == {"clotho": 15, "audiocaps": 5, "fsd50k": 3, "macs": 5}
    assert not df["split"].isin(["evaluation", "test", "eval"]).any()
    with pytest.raises(FileNotFoundError, match=r"no root given for \['macs'\]"):
        D.paper_training_set({**roots, "macs": None})


def test_clean_pairs_removes_class_words_only():
    pairs = pd.DataFrame(
        {
            "dataset": "x",
            "split": "train",
            "audio_id": list("abcde"),
            "audio_path": "",
            "audio_exists": False,
            "caption": [
                "a dog barks",
                "a man speaks",
                "dogs barking loudly",
                "a hotdog vendor shouts",
                "the engineer is training",
            ],
        }
    )
    assert list(D.clean_pairs(pairs)["caption"]) == [
        "a man speaks",
        "a hotdog vendor shouts",
        "the engineer is training",
    ]
    res = D.filter_pairs(pairs)
    assert res.removed_per_word["dog"] == 2 and res.n_removed == 2
    assert list(D.clean_pairs(pairs, ["man"])["audio_id"]) == ["a", "c", "d", "e"]


def test_clean_pairs_on_fixture_captions(base):
    kept = D.clean_pairs(D.read_macs(base / "macs"))
    # "a dog barks..." (dog), "footsteps" (footsteps), "siren" (siren) go; two captions stay
    assert list(kept["caption"]) == ["people speaking in a large hall", "vehicles pass on a busy road"]


def test_split_pairs_validation_groups_by_audio():
    pairs = pd.DataFrame(
        {
            "dataset": "clotho",
            "audio_id": np.repeat([f"f{i}" for i in range(10)], 5),
            "caption": [f"c{i}" for i in range(50)],
        }
    )
    train, val = D.split_pairs_validation(pairs, 0.2, seed=3)
    assert len(train) == 40 and len(val) == 10
    assert val["audio_id"].nunique() == 2 and not set(train["audio_id"]) & set(val["audio_id"])
    again = D.split_pairs_validation(pairs, 0.2, seed=3)[1]
    assert list(again["caption"]) == list(val["caption"])
    with pytest.raises(ValueError, match="fraction"):
        D.split_pairs_validation(pairs, 1.5)


# --- roots, dry run, downloads -------------------------------------------------------------------


@pytest.fixture
def no_root_env(monkeypatch):
    for var in D.ROOT_ENV.values():
        monkeypatch.delenv(var, raising=False)


def test_default_roots(tmp_path, monkeypatch, no_root_env):
    (tmp_path / "captions" / "clotho").mkdir(parents=True)
    (tmp_path / "macs").mkdir()
    monkeypatch.setenv("CLAP_AUDIOCAPS", str(tmp_path / "elsewhere"))
    roots = D.default_roots(tmp_path)
    assert roots["clotho"] == tmp_path / "captions" / "clotho"  # the shared-data layout
    assert roots["macs"] == tmp_path / "macs"
    assert roots["audiocaps"] == tmp_path / "elsewhere"
    assert roots["fsd50k"] == tmp_path / "fsd50k"  # absent: still says where it looked
    assert set(roots) == set(D.ALL_DATASETS)


def test_dry_run_report_present_and_absent(tmp_path, no_root_env):
    write_clotho(tmp_path / "clotho")
    write_macs(tmp_path / "captions" / "macs")
    (tmp_path / "clotho" / "evaluation" / "e.wav").unlink()
    write_esc50_mini(tmp_path / "esc50")
    report = dry_run_report({**D.default_roots(tmp_path), "audiocaps": None})
    assert {k: v["found"] for k, v in report.items()} == {
        "clotho": True,
        "audiocaps": False,
        "fsd50k": False,
        "macs": True,
        "esc50": True,
        "audioset": False,
    }
    c = report["clotho"]
    assert c["pairs_per_split"] == {"development": 10, "validation": 5, "evaluation": 5}
    assert (c["n_pairs"], c["n_audio_files"], c["n_audio_present"], c["n_missing_audio"]) == (20, 4, 3, 1)
    assert c["n_pairs_missing_audio"] == 5 and c["n_training_pairs"] == 15
    # kept: gravel, "a man speaks", "people chat", "a crowd cheers" (training splits) + "music plays";
    # the other 15 name a class word (dog, rain, wind, birds, car, door, water, bell, footsteps, ...)
    assert c["n_clean_pairs"] == 5 and c["n_clean_training_pairs"] == 4
    assert report["macs"]["n_pairs"] == 5 and report["macs"]["n_clean_pairs"] == 2
    assert report["esc50"]["n_audio_files"] == 3 and report["esc50"]["n_classes"] == 2
    assert "no root given" in report["audiocaps"]["missing"]
    assert str(tmp_path / "fsd50k") in report["fsd50k"]["missing"]
    text = format_dry_run(report)
    assert "clotho: found" in text and "fsd50k: MISSING" in text
    assert "pairs per split: development 10, validation 5, evaluation 5" in text


def test_download_unknown_name_and_offline(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown download 'clothoo'; allowed: clotho, audiocaps, fsd50k, macs"):
        D.download("clothoo", tmp_path)
    assert D.DOWNLOADS["panns"] == {
        "Cnn14_mAP=0.431.pth": "https://zenodo.org/record/3987831/files/Cnn14_mAP%3D0.431.pth"
    }

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)  # what datasets.download fetches through
    with pytest.raises(ConnectionError, match=r"cannot download https://zenodo\.org/record/3987831.*internet"):
        D.download("panns", tmp_path / "ckpt")
    assert list((tmp_path / "ckpt").iterdir()) == []  # no partial file left behind


# --- the real caption files of the shared data folder --------------------------------------------

SHARED = shared_data_dir()


def _shared(sub: str) -> Path:
    path = SHARED / sub if SHARED else None
    if path is None or not path.is_dir():
        pytest.skip(f"shared data folder {sub} not available (set CLAP_DATA)")
    return path


def test_real_audiocaps_captions_parse():
    df = D.read_audiocaps(_shared("captions/audiocaps"), require_audio=False)
    assert df.groupby("split", sort=False).size().to_dict() == {"train": 49838, "val": 2475, "test": 4875}
    assert df.groupby("split")["audio_id"].nunique().to_dict() == {"train": 49838, "val": 495, "test": 975}
    assert df.iloc[0]["caption"] == "A woman talks nearby as water pours"
    assert df.iloc[0]["audio_id"] == "r1nicOVtvkQ_130"


def test_real_clotho_captions_parse():
    df = D.read_clotho(_shared("captions/clotho"), require_audio=False)
    # Clotho v1 here: no validation split
    assert df.groupby("split", sort=False).size().to_dict() == {"development": 14465, "evaluation": 5225}
    assert df.groupby("split")["audio_id"].nunique().to_dict() == {"development": 2893, "evaluation": 1045}
    assert df.iloc[0]["audio_id"] == "Distorted AM Radio noise.wav"
    assert df.iloc[0]["caption"] == "A muddled noise of broken channel of the TV"


def test_real_ontology_classes_removed():
    onto = D.read_ontology(_shared("audioset"))
    literal = D.audioset_classes_removed(onto, ESC50_CLASSES, expand=False)
    assert len(onto) == 632 and len(literal) == 114
    assert {"Dog", "Chicken, rooster", "Rain", "Vacuum cleaner", "Church bell"} <= set(literal["name"])
    assert not {"Bark", "Speech", "Raindrop", "Meow", "Laughter"} & set(literal["name"])  # names only
    assert {"Belly laugh", "Baby laughter"} <= set(literal["name"])  # ... so Laughter stays, its children go
    removed = D.audioset_classes_removed(onto, ESC50_CLASSES)
    assert set(literal["mid"]) < set(removed["mid"]) and len(removed) == 190
    assert removed["reason"].str.split(":| of | to ").str[0].value_counts().to_dict() == {
        "name match": 114,
        "mapped": 65,
        "descendant": 11,
    }
    why = dict(zip(removed["name"], removed["reason"]))
    # the sounds the names-only rule left as "clean" targets now go
    now_gone = [
        "Bark",
        "Howl",
        "Meow",
        "Purr",
        "Oink",
        "Moo",
        "Croak",
        "Crowing, cock-a-doodle-doo",
        "Cluck",
        "Bleat",
        "Caw",
        "Applause",
        "Laughter",
        "Thunder",
        "Raindrop",
        "Drip",
        "Toothbrush",
        "Shatter",
        "Aircraft",
        "Firecracker",
        "Typewriter",
        "Squeak",
        "Chime",
        "Bee, wasp, etc.",
        "Mosquito",
        "Fly, housefly",
    ]
    assert [n for n in now_gone if not why.get(n, "").startswith("mapped to ESC-50 ")] == []
    assert why["Laughter"] == "mapped to ESC-50 laughing" and why["Bleat"] == "mapped to ESC-50 sheep"
    assert why["Cowbell"] == "descendant of Cattle, bovinae" and why["Chink, clink"] == "descendant of Glass"
    assert why["Belly laugh"] == "name match: laughing"
    assert "Speech" not in why and "Piano" not in why  # name matches are not expanded (Keyboard (musical))
    # the released label table (no children) gets the same answer from the ontology on disk
    labels = pd.DataFrame({"mid": onto["id"], "display_name": onto["name"]})
    assert list(D.audioset_classes_removed(labels, ontology=_shared("audioset"))["mid"]) == list(removed["mid"])


def test_audioset_cleaning_without_an_ontology_warns_and_uses_the_mapping(tmp_path, monkeypatch):
    monkeypatch.setenv("CLAP_DATA", str(tmp_path / "no_shared"))
    monkeypatch.delenv("CLAP_ONTOLOGY", raising=False)
    labels = pd.DataFrame({"mid": ["/m/a", "/m/b", "/m/c"], "display_name": ["Dog", "Bark", "Speech"]})
    with pytest.warns(UserWarning, match="no ontology descendants"):
        removed = D.audioset_classes_removed(labels)
    assert list(removed["reason"]) == ["name match: dog", "mapped to ESC-50 dog"]
    with pytest.raises(FileNotFoundError, match="nope"):
        D.audioset_classes_removed(labels, ontology=tmp_path / "nope.json")
    with pytest.raises(TypeError, match="string"):
        D.audioset_classes_removed(labels, "dog")


def test_real_dry_run(no_root_env):
    base = _shared("captions").parent
    report = dry_run_report(D.default_roots(base))
    ac, cl = report["audiocaps"], report["clotho"]
    assert ac["found"] and cl["found"] and not report["fsd50k"]["found"] and not report["macs"]["found"]
    assert (ac["n_pairs"], ac["n_audio_files"], ac["n_audio_present"]) == (57188, 51308, 0)
    assert (cl["n_pairs"], cl["n_audio_files"], cl["n_audio_present"]) == (19690, 3938, 0)
    # the clean counts are the leakage filter with all 50 ESC-50 class names applied to the files read here
    for name, r in (("audiocaps", ac), ("clotho", cl)):
        df = D.read_caption_dataset(name, base / "captions" / name, require_audio=False)
        train = df[df["split"].isin(D.TRAINING_SPLITS[name])]
        assert r["n_clean_pairs"] == int(leakage_filter(list(df["caption"]), ESC50_CLASSES).keep.sum())
        assert r["n_clean_training_pairs"] == int(leakage_filter(list(train["caption"]), ESC50_CLASSES).keep.sum())
        assert 0 < r["n_clean_training_pairs"] < r["n_clean_pairs"] < r["n_pairs"]
    assert report["esc50"]["n_audio_files"] == 2000 and report["audioset"]["n_classes_removed"] == 190
