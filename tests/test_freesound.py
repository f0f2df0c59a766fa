"""ESC-50's source recordings inside FSD50K / Clotho (clap_lib.data.freesound, freesound_overlap), the `overlap` command and the paper
profile's dedup level: hand-made fixtures, and the real counts where the shared ID lists are present."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from fixtures import write_paper_datasets, write_paper_fsd50k

from clap_lib.config.experiment import PaperSettings
from clap_lib.config.profiles import make_config
from clap_lib.data import freesound as fs
from clap_lib.data import freesound_overlap as fo
from clap_lib.data.esc50 import ESC50_CLASSES, locate_esc50, read_esc50_meta
from clap_lib.data.filtering import leakage_filter
from clap_lib.data.paths import shared_data_dir

SHARED = shared_data_dir()
SHARED_IDS = SHARED / "freesound" if SHARED is not None else None
needs_shared = pytest.mark.skipif(
    SHARED_IDS is None or not (SHARED_IDS / fs.FSD50K_CLIPS).is_file(),
    reason="the shared Freesound ID lists (<data root>/freesound/) are not here",
)


def _meta(rows) -> pd.DataFrame:
    """ESC-50 metadata rows (filename, fold, category, src_file): the columns the join reads."""
    df = pd.DataFrame(rows, columns=["filename", "fold", "category", "src_file"])
    return df.assign(target=df["category"].map(ESC50_CLASSES.index))


# Four ESC-50 clips: two takes of one dog recording (11), a rain clip (22), a cow clip (33).
META = _meta(
    [
        ("1-11-A-0.wav", 1, "dog", 11),
        ("2-11-B-0.wav", 2, "dog", 11),
        ("3-22-A-10.wav", 3, "rain", 22),
        ("5-33-A-3.wav", 5, "cow", 33),
    ]
)
RAIN_CAPTIONS = [
    "rain falls on a roof",
    "heavy rain outside",
    "a steady patter on a tin roof",
    "raindrops patter steadily",
    "it is raining hard",
]


def _write_shared(root: Path) -> Path:
    """A data root with freesound/ and captions/clotho/ in the shared layout."""
    d = root / "freesound"
    d.mkdir(parents=True)
    (d / fs.FSD50K_CLIPS).write_text(
        'freesound_id,split,mids\n11,train,"/m/dog,/m/animal"\n22,eval,/m/liquid\n'
        '33,val,"/m/livestock,/m/animal"\n44,train,/m/animal\n'
    )
    (d / fs.FSD50K_VOCABULARY).write_text(
        "index,mid,display_name\n0,/m/dog,Dog\n1,/m/animal,Animal\n"
        "2,/m/liquid,Liquid\n3,/m/livestock,Livestock_and_farm_animals\n"
    )
    (d / fs.CLOTHO_CLIPS).write_text(
        "file_name,split,freesound_id\nx.wav,development,22\nz.wav,development,\ny.wav,validation,11\n"
    )
    c = root / "captions" / "clotho"
    c.mkdir(parents=True)
    pd.DataFrame(
        [("x.wav", *RAIN_CAPTIONS), ("z.wav", *["a car passes"] * 5)],
        columns=["file_name", *(f"caption_{i}" for i in range(1, 6))],
    ).to_csv(c / "clotho_captions_development.csv", index=False)
    return root


def test_overlap_found_on_a_fixture(tmp_path):
    o = fo.shared_overlap(META, _write_shared(tmp_path), tmp_path / "captions" / "clotho")
    c = o.clips
    # FSD50K: both dog takes in dev (train), rain in eval, cow in dev (val); Clotho: rain in development, dog in
    # validation (no caption file here)
    assert list(c["in fsd50k dev"]) == [True, True, False, True] and list(c["in fsd50k eval"]) == [
        False,
        False,
        True,
        False,
    ]
    assert list(c["in clotho development"]) == [False, False, True, False]
    assert list(c["in clotho validation"]) == [True, True, False, False]
    # clean rule: "Dog, Animal" removed; "Livestock and farm animals, Animal" and "Liquid" kept (no class word);
    # rain's captions: 2 of 5 kept
    assert list(c["clean fsd50k dev"]) == [False, False, False, True]
    assert list(c["clean fsd50k eval"]) == [False, False, True, False]
    assert list(c["no text clotho validation"]) == [True, True, False, False]
    assert list(c["clean clotho development"]) == [False, False, True, False]
    assert list(c["clean training"]) == [False, False, True, True]  # fsd50k eval is no training part
    kept = leakage_filter(RAIN_CAPTIONS, ESC50_CLASSES).keep
    assert list(kept) == [False, False, True, True, False]  # "raining" stems to "rain"; "raindrops" is one token
    assert o.numbers == {
        "n_clips": 4,
        "fsd50k": 4,
        "fsd50k_classes": 3,
        "fsd50k_dev": 3,
        "fsd50k_eval": 1,
        "clotho": 3,
        "clotho_classes": 2,
        "clotho_development": 1,
        "clotho_validation": 2,
        "clotho_evaluation": 0,
        "either": 4,
        "training": 4,
        "clean_training": 2,
        "clean_training_classes": 2,
        "no_text_training": 2,
    }  # the dog takes: Clotho validation
    s = o.survivors.set_index(["data set", "part"])
    assert s.loc[("fsd50k", "dev")].tolist() == [True, 2, 2, 1, 2, 1]
    assert s.loc[("clotho", "development")].tolist() == [True, 1, 1, 1, 5, 2]
    assert s.loc[("clotho", "validation")].tolist() == [True, 1, 0, 0, 0, 0]
    assert not s.loc[("fsd50k", "eval"), "in the training set"]
    assert s.loc[("clotho", "evaluation")].tolist() == [False, 0, 0, 0, 0, 0]  # every part listed, also empty ones
    texts = fo.surviving_texts(o.texts, o.matches)  # training parts only: "Liquid" (FSD50K eval) is not there
    assert texts.to_dict("list") == {
        "dataset": ["clotho", "clotho", "fsd50k"],
        "text": ["a steady patter on a tin roof", "raindrops patter steadily", "Livestock and farm animals, Animal"],
        "examples": [1, 1, 1],
        "ESC-50 classes": ["rain", "rain", "cow"],
    }
    assert o.captions.to_dict("index") == {
        "development": {"files": 2, "with_captions": 2},
        "validation": {"files": 1, "with_captions": 0},
        "all": {"files": 3, "with_captions": 2},
    }
    share = fo.share_table(c, "category", ["in fsd50k dev", "clean training"])
    assert share.loc["dog"].tolist() == [2, 1.0, 0.0] and share.loc["all clips"].tolist() == [4, 0.75, 0.5]


def test_no_overlap_on_a_fixture(tmp_path):
    ids = pd.DataFrame({"freesound_id": pd.array([7, 8], dtype="Int64"), "split": "all"})
    examples = fs.id_examples(ids, "mine")
    m = fs.match_esc50(META, examples)
    assert m.empty
    clips = fo.clip_table(
        META, m, fo.clean_survival(fo.clean_texts(fo.example_texts(m, None, None, None))), [("mine", "all")]
    )
    assert not clips[["in mine all", "clean mine all", "in mine"]].to_numpy().any()
    empty = fo.shared_overlap(META.assign(src_file=[1, 2, 3, 4]), _write_shared(tmp_path))  # the shared layout
    assert empty.numbers["either"] == 0 and empty.survivors["overlapping examples"].sum() == 0
    assert len(empty.survivors) == len(fs.PARTS) and fo.surviving_texts(empty.texts, empty.matches).empty
    rep = fo.overlap_report(META, examples, "mine.csv")
    assert (rep["n_ids"], rep["n_esc50_sources_present"], rep["n_esc50_clips"], rep["clips"]) == (2, 0, 0, [])
    assert fo.overlap_class_table(m).empty


def test_label_text_and_unknown_labels():
    names = {"/m/a": "Dog_bark", "/m/b": "Animal"}
    assert fo.label_text(("/m/a", "/m/b"), names) == "Dog bark, Animal"
    with pytest.raises(ValueError, match=r"\['/m/z'\] are not in the vocabulary"):
        fo.label_text(("/m/a", "/m/z"), names)


BAD_INPUTS = [  # (file content or None for no file, message)
    (None, r"ID file .*missing\.csv not found"),
    ("", r"is empty: no header, no Freesound IDs"),
    ("freesound_id\n", r"has a header but no rows"),
    ("sound,split\n12,train\n", r"has no column 'freesound_id' \(columns: sound, split\); name the ID column"),
    ("freesound_id\n12\nabc\n3.5\n", r"'abc' on line 3 is not a Freesound ID \(a whole number\); 2 such"),
    ("freesound_id,split\n,train\n ,val\n", r"every value is empty"),
]


@pytest.mark.parametrize("content,message", BAD_INPUTS)
def test_bad_id_files_name_the_problem(tmp_path, content, message):
    path = tmp_path / "missing.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        fs.read_id_csv(path)


@pytest.mark.parametrize("content,message", BAD_INPUTS)
def test_bad_id_files_stop_the_command_with_one_line(tmp_path, capsys, content, message):
    from clap_lib.cli import main

    path = tmp_path / "missing.csv"
    if content is not None:
        path.write_text(content)
    # an ESC-50 root that does not exist: the input is refused before ESC-50 is ever looked for
    rc = main(["overlap", "--ids", str(path), "--esc50", str(tmp_path / "no-esc50"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith("error: ")
    assert re.search(message, err) and not (tmp_path / "o").exists()


def test_id_column_blanks_and_split(tmp_path):
    (tmp_path / "ids.csv").write_text("name,sid,split\na,101000,train\nb,,train\nc,5,val\n")
    got = fs.read_id_csv(tmp_path / "ids.csv", id_column="sid")
    assert got.n_blank == 1 and got.ids["freesound_id"].tolist() == [101000, 5]
    assert got.ids["split"].tolist() == ["train", "val"]


def test_official_readers(tmp_path):
    gt = fs.read_fsd50k_ground_truth(write_paper_fsd50k(tmp_path / "fsd"))
    assert gt["freesound_id"].tolist() == [64760, 16399, 11111, 22222, 33333, 101000, 99999]
    assert gt["split"].tolist() == ["train"] * 6 + ["eval"] and gt["labels"].iloc[0] == ("Sound",)
    (tmp_path / "fsd" / "FSD50K.ground_truth" / "eval.csv").unlink()  # the dev set alone
    assert fs.read_fsd50k_ground_truth(tmp_path / "fsd" / "FSD50K.ground_truth")["split"].tolist() == ["train"] * 6
    with pytest.raises(FileNotFoundError, match=r"no FSD50K ground truth: neither .*dev\.csv nor .*eval\.csv"):
        fs.read_fsd50k_ground_truth(tmp_path)
    root = tmp_path / "clotho" / "clotho_csv_files"
    root.mkdir(parents=True)
    # Clotho v2's metadata files are ISO-8859-1
    (root / "clotho_metadata_validation.csv").write_bytes(
        "file_name,keywords,sound_id,sound_link,start_end_samples,manufacturer,license\n"
        'caf\u00e9.wav,street,4242,https://freesound.org/s/4242,"[0, 1]",m\u00fcller,cc0\nb.wav,x,,,,,\n'.encode(
            "ISO-8859-1"
        )
    )
    meta = fs.read_clotho_metadata(tmp_path / "clotho")
    assert meta["file_name"].tolist() == ["caf\u00e9.wav", "b.wav"] and meta["split"].tolist() == ["validation"] * 2
    assert meta["freesound_id"].tolist()[0] == 4242 and pd.isna(meta["freesound_id"].iloc[1])
    with pytest.raises(FileNotFoundError, match=r"clotho_metadata_development\.csv not found"):
        fs.read_clotho_metadata(tmp_path / "clotho", ["development"])
    (root / "clotho_metadata_evaluation.csv").write_text("file_name,keywords\na.wav,x\n")
    with pytest.raises(ValueError, match=r"lacks the Clotho metadata columns \['sound_id'\]"):
        fs.read_clotho_metadata(tmp_path / "clotho")
    with pytest.raises(FileNotFoundError, match=r"no Clotho metadata file"):
        fs.read_clotho_metadata(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"freesound is not a folder"):
        fs.freesound_dir(tmp_path)


def test_command_on_a_fixture(tmp_path, tiny_esc50, capsys):
    from clap_lib.cli import main

    # FSD50K fixture: "101000" is the source of the tiny ESC-50's fold-1 dog clip (write_tiny_esc50)
    root = write_paper_fsd50k(tmp_path / "fsd")
    assert main(["overlap", "--fsd50k-root", str(root), "--esc50", str(tiny_esc50), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "1 are ESC-50 source recordings: 1 of 500 ESC-50 clips, 1 of 50 classes" in out and "dog" in out
    rep = json.loads((tmp_path / "overlap.json").read_text())
    assert rep["clips"] == [
        {"filename": "1-101000-A-0.wav", "fold": 1, "category": "dog", "src_file": 101000, "splits": ["train"]}
    ]
    assert rep["per_split"] == {"eval": {"ids": 1, "esc50_clips": 0}, "train": {"ids": 6, "esc50_clips": 1}}
    assert pd.read_csv(tmp_path / "overlap_clips.csv")["splits"].tolist() == ["train"]
    (tmp_path / "none.csv").write_text("freesound_id\n1\n2\n")
    assert main(["overlap", "--ids", str(tmp_path / "none.csv"), "--esc50", str(tiny_esc50), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_esc50_clips"] == 0


@needs_shared
def test_real_counts_from_the_shared_id_lists():
    o = fo.shared_overlap(read_esc50_meta(locate_esc50()))
    n = o.numbers
    assert (n["fsd50k"], n["fsd50k_classes"], n["fsd50k_dev"], n["clotho"], n["clotho_development"]) == (
        630,
        47,
        459,
        155,
        94,
    )
    assert n["n_clips"] == 2000 and n["fsd50k_dev"] + n["fsd50k_eval"] >= n["fsd50k"]
    # the Clotho v1 caption files cover exactly v2's v1 files: all of evaluation, 2,893 of development's 3,839
    assert o.captions.to_dict("index")["development"] == {"files": 3839, "with_captions": 2893}
    assert o.captions.to_dict("index")["evaluation"] == {"files": 1045, "with_captions": 1045}
    assert o.captions.to_dict("index")["validation"] == {"files": 1045, "with_captions": 0}
    # survivors: exactly the overlapping FSD50K dev clips whose label text the filter keeps, recomputed here
    folder = fs.freesound_dir()
    fsd = fs.read_fsd50k_clips(folder / fs.FSD50K_CLIPS)
    names = dict(zip(*fs.read_fsd50k_vocabulary(folder / fs.FSD50K_VOCABULARY)[["mid", "display_name"]].to_numpy().T))
    dev = fsd[fsd["split"].isin(["train", "val"]) & fsd["freesound_id"].isin(o.clips["src_file"])]
    kept = leakage_filter([fo.label_text(m, names) for m in dev["mids"]], ESC50_CLASSES).keep
    s = o.survivors.set_index(["data set", "part"])
    assert s.loc[("fsd50k", "dev"), "overlapping examples"] == len(dev)
    assert s.loc[("fsd50k", "dev"), "surviving clean"] == int(kept.sum()) > 0


@needs_shared
def test_command_on_the_shared_csvs(tmp_path, capsys):
    from clap_lib.cli import main

    assert main(["overlap", "--ids", str(SHARED_IDS / fs.FSD50K_CLIPS), "--out", str(tmp_path)]) == 0
    assert "630 of 2000 ESC-50 clips, 47 of 50 classes" in capsys.readouterr().out
    rep = json.loads((tmp_path / "overlap.json").read_text())
    assert rep["n_esc50_clips"] == 630 and sum(rep["clips_per_class"].values()) == 630
    dev = sum(1 for c in rep["clips"] if set(c["splits"]) & {"train", "val"})
    assert dev == 459
    assert main(["overlap", "--ids", str(SHARED_IDS / fs.CLOTHO_CLIPS), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert (rep["n_esc50_clips"], rep["n_empty_ids_left_out"]) == (155, 19)
    assert rep["per_split"]["development"]["esc50_clips"] == 94


# --- the paper profile's dedup level ------------------------------------------------------------------------


def test_dedup_drops_every_esc50_source_recording(tmp_path):
    from clap_lib.paper import inputs as paper
    from clap_lib.pipeline.esc50_inputs import Esc50Inputs

    roots = write_paper_datasets(tmp_path)
    # "clip 1.wav" of Clotho development is cut from a recording an ESC-50 clip comes from too
    (roots["clotho"] / "clotho_metadata_development.csv").write_text(
        "file_name,keywords,sound_id,sound_link,start_end_samples,manufacturer,license\n"
        + "".join(f"clip {k}.wav,x,{102051 if k == 1 else 900 + k},,,,\n" for k in range(6))
    )
    (roots["clotho"] / "clotho_metadata_validation.csv").write_text(
        "file_name,sound_id\n" + "".join(f"clip {100 + k}.wav,{950 + k}\n" for k in range(2))
    )
    sources = {"101000", "102051"}
    pairs = paper.read_pairs(roots, PaperSettings(), 0, 0.2)
    both = pd.concat([pairs.train, pairs.val])
    assert set(both.loc[both["dataset"] == "clotho", "freesound_id"]) == {
        "900",
        "102051",
        "902",
        "903",
        "904",
        "905",
        "950",
        "951",
    }
    ct, cv, ci = paper.pairs_for_training(pairs, "clean", sources)
    dt, dv, di = paper.pairs_for_training(pairs, "dedup", sources)
    clean, dedup = pd.concat([ct, cv]), pd.concat([dt, dv])
    assert ci["n_target_clip_pairs"] > 0 and di["n_target_clip_pairs"] == 0
    assert not dedup["audio_id"].isin(["101000", "clip 1.wav"]).any()
    assert len(dedup) == len(clean) - ci["n_target_clip_pairs"] == di["n_pairs"]
    assert di["n_pairs_esc50_source_dropped"] == ci["n_target_clip_pairs"] and di["n_pairs_no_freesound_id"] == 0
    # without Clotho's metadata dedup cannot see Clotho's IDs: refused, not silently partial
    for f in roots["clotho"].glob("clotho_metadata_*.csv"):
        f.unlink()
    with pytest.raises(ValueError, match=r"'dedup' needs the Freesound ID of each clotho file"):
        paper.pairs_for_training(paper.read_pairs(roots, PaperSettings(), 0, 0.2), "dedup", sources)
    # selectable like strict: the paper profile takes it, the ESC-50-sized profiles refuse it before any work
    paper.PaperInputs.check(make_config("paper", {"trainings": "dirty,clean,dedup"}))
    with pytest.raises(ValueError, match=r"trainings \['dedup'\] are defined for the paper profile only"):
        Esc50Inputs.check(make_config("lab", {"trainings": "clean,dedup"}))
    with pytest.raises(ValueError, match=r"trainings \['strict'\] are not defined for the paper profile"):
        paper.PaperInputs.check(make_config("paper", {"trainings": "strict"}))
