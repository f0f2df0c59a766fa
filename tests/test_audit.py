"""The leakage audit (clap_lib/analysis/audit.py, audit_inputs.py; report/audit.py): loading embeddings, the audit numbers, the HTML/JSON report and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clap_lib.analysis import metrics
from clap_lib.analysis.audit import audit, reference_positions
from clap_lib.analysis.audit_inputs import (
    class_names,
    esc50_targets,
    load_embeddings,
    parse_esc50_name,
    read_references,
)
from clap_lib.data.esc50 import ESC50_CLASSES
from clap_lib.report.audit import main, write_report

ROOT = Path(__file__).resolve().parents[1]
TARGETS = (0, 3, 10, 14, 20, 25, 31, 37, 41, 47)  # 10 ESC-50 classes


def esc50_like(per=6, noise=0.1, seed=0, fold=5, shuffle=False):
    """Clips of TARGETS named like ESC-50 files; audio = class centre + noise; text = the 50 class centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(50, 16))
    targets = np.repeat(TARGETS, per)
    audio = centres[targets] + noise * rng.normal(size=(len(targets), 16))
    files = np.array([f"{fold}-{100000 + i}-A-{t}.wav" for i, t in enumerate(targets)])
    if shuffle:
        audio = audio[rng.permutation(len(audio))]
    return audio, files, targets, centres


def references() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "pretraining": ["dirty", "dirty", "clean", "clean", "none", "none"],
            "training": ["dirty", "clean"] * 3,
            "accuracy": [0.84, 0.64, 0.44, 0.24, 0.04, 0.04],
            "random_guess": 0.04,
            "sil_x_a": [0.5, 0.5, 0.3, 0.3, 0.1, 0.1],
            "sil_E_a": [0.4, 0.2, 0.2, 0.1, 0.0, 0.0],
            "topo_Ea_Et": [0.8, 0.7, 0.7, 0.6, 0.55, 0.5],
        }
    )


# ----------------------------------------------------------------------------- names and targets


def test_parse_esc50_name():
    assert parse_esc50_name("1-100032-A-0.wav") == (1, 0)
    assert parse_esc50_name("/data/audio/5-9032-B-49.flac") == (5, 49)
    with pytest.raises(ValueError, match="dog_bark.wav"):
        parse_esc50_name("dog_bark.wav")
    with pytest.raises(ValueError, match="out of range"):
        parse_esc50_name("1-100-A-50.wav")


def test_esc50_targets_from_names_and_meta(tmp_path):
    files = ["1-100032-A-0.wav", "5-200-B-7.flac"]
    t, f = esc50_targets(files)
    assert list(t) == [0, 7] and list(f) == [1, 5]
    meta = pd.DataFrame({"filename": ["1-100032-A-0.wav", "5-200-B-7.wav"], "fold": [1, 5], "target": [3, 9]})
    meta.to_csv(tmp_path / "esc50.csv", index=False)
    t, f = esc50_targets(files, tmp_path / "esc50.csv")  # the meta wins over the name; .flac matches .wav
    assert list(t) == [3, 9] and list(f) == [1, 5]
    with pytest.raises(KeyError, match="not in the ESC-50 meta"):
        esc50_targets(files + ["2-1-A-1.wav"], meta)
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        esc50_targets(files, tmp_path / "nope.csv")


def test_class_names():
    assert list(class_names([0, 14])) == ["dog", "chirping_birds"]
    assert list(class_names(["Chirping birds", "dog"])) == ["chirping_birds", "dog"]


# ----------------------------------------------------------------------------- loading


def test_load_npz_csv_parquet_npy_round_trip(tmp_path):
    audio, files, _, centres = esc50_like()
    np.savez(tmp_path / "e.npz", audio=audio, files=files, text=centres, labels=np.array(ESC50_CLASSES))
    e = load_embeddings(tmp_path / "e.npz")
    assert np.allclose(e.audio, audio) and list(e.files) == list(files) and e.text.shape == (50, 16)
    assert e.label_names[0] == "dog"

    # the key 'file' is accepted too (np.savez cannot write it: 'file' is its own first parameter)
    with zipfile.ZipFile(tmp_path / "nolabels.npz", "w") as z:
        for key, arr in {"audio": audio, "text": centres, "file": np.array([f"/x/{f}" for f in files])}.items():
            with z.open(f"{key}.npy", "w") as fh:
                np.lib.format.write_array(fh, arr)
    e = load_embeddings(tmp_path / "nolabels.npz")  # 50 text rows without labels: ESC-50 order; dirs dropped
    assert list(e.label_names) == list(ESC50_CLASSES) and e.files[0] == files[0]

    df = pd.DataFrame(audio, columns=[f"e{i}" for i in range(16)]).assign(file=files, target=0)
    df.to_csv(tmp_path / "e.csv", index=False)
    df.to_parquet(tmp_path / "e.parquet")
    for name in ("e.csv", "e.parquet"):
        e = load_embeddings(tmp_path / name)
        assert e.audio.shape == (60, 16) and np.allclose(e.audio, audio) and e.text is None

    np.save(tmp_path / "e.npy", audio)
    (tmp_path / "files.txt").write_text("\n".join(files) + "\n")
    e = load_embeddings(tmp_path / "e.npy", files=tmp_path / "files.txt")
    assert np.allclose(e.audio, audio) and list(e.files) == list(files)


def test_load_errors_name_the_path_and_the_problem(tmp_path):
    audio, files, _, centres = esc50_like()
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_embeddings(tmp_path / "missing.npz")
    np.savez(tmp_path / "nofile.npz", audio=audio)
    with pytest.raises(KeyError, match=r"nofile\.npz.*missing array\(s\) \['files'\]"):
        load_embeddings(tmp_path / "nofile.npz")
    np.savez(tmp_path / "short.npz", audio=audio, files=files[:-1])
    with pytest.raises(ValueError, match=r"short\.npz: 60 audio rows but 59 file names"):
        load_embeddings(tmp_path / "short.npz")
    np.savez(tmp_path / "text.npz", audio=audio, files=files, text=centres[:10])
    with pytest.raises(KeyError, match="no 'labels'"):
        load_embeddings(tmp_path / "text.npz")
    np.savez(tmp_path / "nan.npz", audio=np.full((2, 3), np.nan), files=files[:2])
    with pytest.raises(ValueError, match="NaN"):
        load_embeddings(tmp_path / "nan.npz")
    np.save(tmp_path / "e.npy", audio)
    with pytest.raises(ValueError, match="--files"):
        load_embeddings(tmp_path / "e.npy")
    pd.DataFrame({"file": files, "e0": audio[:, 0], "note": "x"}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match=r"bad\.csv: non-numeric embedding column\(s\) \['note'\]"):
        load_embeddings(tmp_path / "bad.csv")
    pd.DataFrame({"e0": audio[:, 0]}).to_csv(tmp_path / "nofile.csv", index=False)
    with pytest.raises(KeyError, match="no 'file' column"):
        load_embeddings(tmp_path / "nofile.csv")
    (tmp_path / "e.txt").write_text("x")
    with pytest.raises(ValueError, match="unsupported extension"):
        load_embeddings(tmp_path / "e.txt")


# ----------------------------------------------------------------------------- the audit


def test_separated_clusters_audit_by_hand():
    audio, _, targets, centres = esc50_like()
    r = audit(audio, targets, text=centres, seed=0, tsne=False)
    assert r.n_clips == 60 and r.n_classes == 10 and r.dim == 16
    assert r.silhouette == metrics.silhouette(audio, class_names(targets)) and r.silhouette > 0.8
    assert set(r.per_class_silhouette) == {ESC50_CLASSES[t] for t in TARGETS}
    assert r.accuracy == 1.0 and r.n_candidates == 50 and r.random_guess == pytest.approx(1 / 50)
    assert r.n_zero_shot_clips == 60
    # audio means ~ text rows of the same classes -> identical neighbourhoods
    assert r.topo_S == pytest.approx(1.0) and r.n_topo_labels == 10 and r.topo_p < 0.05
    # chance of S = max_k S_k is the permutation null of that max (means in sorted class-name order)
    means, uniq = metrics.label_means(audio, class_names(targets))
    Q = centres[[ESC50_CLASSES.index(u) for u in uniq]]
    null = metrics.permutation_null_S(means, Q, n_perm=200, seed=0)
    assert r.topo_chance == pytest.approx(np.mean(null)) and r.topo_null_q95 == pytest.approx(np.quantile(null, 0.95))
    # ... which lies above E[S_k] at k*, the chance reported before
    assert r.topo_chance > metrics.chance_knn_overlap(10)[r.topo_k - 1] + 0.02


def test_shuffled_audit_is_near_chance():
    audio, _, targets, centres = esc50_like(shuffle=True)
    r = audit(audio, targets, text=centres, tsne=False)
    assert r.silhouette < 0.05 and r.accuracy < 0.3


def test_classes_restrict_clips_and_candidates():
    audio, _, targets, centres = esc50_like()
    r = audit(audio, targets, text=centres, classes=["dog", "cow", "rain", "wind"], tsne=False)
    assert r.n_clips == 18 and r.n_candidates == 4 and r.random_guess == 0.25  # wind has no clips
    assert any("wind" in n for n in r.notes)


def test_text_without_joint_space_or_labels():
    audio, _, targets, centres = esc50_like()
    r = audit(audio, targets, text=np.random.default_rng(0).normal(size=(50, 5)), tsne=False)
    assert r.accuracy is None and any("not in the text's joint space" in n for n in r.notes)
    assert r.topo_S is not None  # topology needs no shared space
    with pytest.raises(ValueError, match="label_names"):
        audit(audio, targets, text=centres[:10])


def test_reference_positions_by_hand():
    pos = reference_positions({"silhouette": 0.3, "accuracy_over_chance": 0.5, "topo_Ea_Et": 0.6}, references())
    by = pos.set_index("metric")
    # sil_x_a: dirty 0.5, none 0.1 -> (0.3 - 0.1) / 0.4 = 0.5
    assert by.loc["silhouette vs sil_x_a", "position"] == pytest.approx(0.5)
    # sil_E_a: dirty mean 0.3, none 0 -> 1.0
    assert by.loc["silhouette vs sil_E_a", "position"] == pytest.approx(1.0)
    # accuracy over chance: dirty mean (0.8 + 0.6)/2/0.96, none 0 -> 0.5 / 0.729...
    assert by.loc["accuracy_over_chance", "position"] == pytest.approx(0.5 / (0.7 / 0.96))
    assert by.loc["topo_Ea_Et", "clean"] == pytest.approx(0.65)
    # topo: dirty 0.75, none 0.525 -> (0.6 - 0.525) / 0.225
    assert by.loc["topo_Ea_Et", "position"] == pytest.approx(0.075 / 0.225)


def test_reference_positions_need_references_that_differ():
    ref = references().assign(topo_Ea_Et=[0.62, 0.61, 0.6, 0.6, 0.6, 0.6])  # dirty - none = 0.015
    by = reference_positions({"silhouette": 0.3, "topo_Ea_Et": 0.5}, ref).set_index("metric")
    assert np.isnan(by.loc["topo_Ea_Et", "position"])  # not (0.5 - 0.6) / 0.015 = -6.7
    assert by.loc["silhouette vs sil_x_a", "position"] == pytest.approx(0.5)
    by = reference_positions({"topo_Ea_Et": 0.5}, ref, min_span=0.01).set_index("metric")
    assert by.loc["topo_Ea_Et", "position"] == pytest.approx(-0.1 / 0.015)


def test_report_contains_the_numbers(tmp_path):
    audio, _, targets, centres = esc50_like(noise=0.8)
    r = audit(audio, targets, text=centres, references=references(), seed=1)
    assert r.tsne is not None and r.tsne.shape == (60, 2)
    path = write_report(r, tmp_path / "out")
    assert path == tmp_path / "out" / "audit.html" and path.is_file()
    page = path.read_text()
    assert f"{r.silhouette:.4f}" in page and f"{r.accuracy:.4f}" in page and f"{r.topo_S:.4f}" in page
    assert "data:image/png;base64," in page and "<script" not in page and "http" not in page
    assert "Position between the reference backbones" in page
    nums = json.loads((tmp_path / "out" / "audit.json").read_text())
    assert nums["silhouette"] == pytest.approx(r.silhouette) and nums["accuracy"] == pytest.approx(r.accuracy)
    assert nums["per_class_silhouette"]["dog"] == pytest.approx(r.per_class_silhouette["dog"])
    assert {p["metric"] for p in nums["positions"]} >= {"silhouette vs sil_x_a", "accuracy_over_chance"}


# ----------------------------------------------------------------------------- CLI


def grid_dir(tmp_path: Path) -> Path:
    g = tmp_path / "grid"
    g.mkdir()
    references().to_csv(g / "results.csv", index=False)
    (g / "config.json").write_text(json.dumps({"target_classes": ["dog", "cow", "rain", "chirping_birds"]}))
    return g


def test_cli_main(tmp_path, capsys):
    audio, files, _, centres = esc50_like()
    a4, f4, _, _ = esc50_like(fold=4, seed=1)
    np.savez(tmp_path / "e.npz", audio=np.r_[audio, a4], files=np.r_[files, f4], text=centres)
    g = grid_dir(tmp_path)
    assert read_references(g)[1] == ["dog", "cow", "rain", "chirping_birds"]
    rc = main(
        [
            str(tmp_path / "e.npz"),
            "--references",
            str(g),
            "--classes",
            "references",
            "--fold",
            "5",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert rc == 0
    nums = json.loads((tmp_path / "out" / "audit.json").read_text())
    assert nums["n_clips"] == 24 and nums["n_candidates"] == 4 and nums["accuracy"] == 1.0
    assert "report:" in capsys.readouterr().out

    assert main([str(tmp_path / "absent.npz")]) == 2
    assert "absent.npz" in capsys.readouterr().err
    assert main([str(tmp_path / "e.npz"), "--classes", "references"]) == 2
    assert "--references" in capsys.readouterr().err


def test_python_dash_m(tmp_path):
    audio, files, _, _ = esc50_like(per=3)
    np.savez(tmp_path / "e.npz", audio=audio, files=files)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "clap_lib", "audit", str(tmp_path / "e.npz"), "--out", str(tmp_path / "out")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "audit.html").is_file() and "zero-shot accuracy n/a" in proc.stdout


# ----------------------------------------------------------------------------- inputs that would skew the audit


def test_unknown_names_are_refused_naming_them():
    audio, _, targets, centres = esc50_like()
    with pytest.raises(ValueError, match=r"unknown class\(es\) requested \['unicorn'\].*dog, rooster"):
        audit(audio, targets, classes=["dog", "unicorn"], tsne=False)
    labels = list(ESC50_CLASSES)
    labels[3] = "dog_bark"  # a typo would add a distractor that no clip belongs to
    with pytest.raises(ValueError, match=r"unknown text label\(s\) \['dog_bark'\]"):
        audit(audio, targets, text=centres, label_names=labels, tsne=False)
    labels[3] = "dog"
    with pytest.raises(ValueError, match=r"more than once: \['dog'\]"):
        audit(audio, targets, text=centres, label_names=labels, tsne=False)
    with pytest.raises(ValueError, match=r"class name\(s\) in the targets \['unicorn'\]"):
        audit(audio[:2], ["dog", "unicorn"], tsne=False)


def test_one_class_left_is_an_error_not_a_silhouette_crash():
    audio, _, targets, _ = esc50_like()
    with pytest.raises(ValueError, match="at least 2 classes.*dog.*without clips: wind"):
        audit(audio, targets, classes=["dog", "wind"], tsne=False)


def test_all_zero_audio_rows_are_dropped_with_a_note():
    audio, _, targets, centres = esc50_like(shuffle=True)
    clean = audit(audio, targets, text=centres, tsne=False, n_perm=20)
    zeroed = audio.copy()
    # zero out 10 clips of classes other than dog: cosine 0 to every label -> argmax label 0 (dog)
    idx = np.flatnonzero(targets != 0)[:10]
    zeroed[idx] = 0
    r = audit(np.r_[zeroed, np.zeros((5, 16))], np.r_[targets, [0] * 5], text=centres, tsne=False, n_perm=20)
    assert r.n_clips == 50 and r.n_zero_shot_clips == 50
    assert any("15 all-zero audio row(s) dropped" in n for n in r.notes)
    keep = np.setdiff1d(np.arange(60), idx)
    expect = audit(audio[keep], targets[keep], text=centres, tsne=False, n_perm=20)
    assert r.accuracy == expect.accuracy and r.silhouette == expect.silhouette
    # without the drop, the 5 zero dog rows would score as correct
    y = np.r_[targets[keep], [0] * 5]
    X = np.r_[audio[keep], np.zeros((5, 16))]
    assert metrics.zero_shot_accuracy(X, centres, y) > expect.accuracy
    assert clean.n_clips == 60


def test_all_zero_text_rows_are_refused():
    audio, _, targets, centres = esc50_like()
    text = centres.copy()
    text[7] = 0
    with pytest.raises(ValueError, match=rf"all-zero text embedding\(s\) for label\(s\) \['{ESC50_CLASSES[7]}'\]"):
        audit(audio, targets, text=text, tsne=False)


def test_duplicate_files_dropped_when_identical_refused_when_not(tmp_path):
    audio, files, _, _ = esc50_like()
    copies = [f"/other/{f}" for f in files[:3]]  # the same clips, from another folder
    np.savez(tmp_path / "dup.npz", audio=np.r_[audio, audio[:3]], files=np.r_[files, copies])
    e = load_embeddings(tmp_path / "dup.npz")
    assert np.array_equal(e.audio, audio) and list(e.files) == list(files)
    assert len(e.notes) == 1 and "3 duplicate row(s) of 3 file(s) dropped" in e.notes[0]
    r = audit(e.audio, esc50_targets(e.files)[0], tsne=False, notes=e.notes)
    assert r.notes[0] == e.notes[0] and r.n_clips == 60
    np.savez(tmp_path / "clash.npz", audio=np.r_[audio, audio[:1] + 1], files=np.r_[files, files[:1]])
    with pytest.raises(ValueError, match=rf"clash\.npz: 1 file\(s\) listed more than once with different.*{files[0]}"):
        load_embeddings(tmp_path / "clash.npz")


def test_empty_reference_table_is_refused(tmp_path):
    audio, _, targets, _ = esc50_like()
    with pytest.raises(ValueError, match="no rows"):
        audit(audio, targets, references=references().iloc[:0], tsne=False)
    references().iloc[:0].to_csv(tmp_path / "results.csv", index=False)
    with pytest.raises(ValueError, match=r"results\.csv: the reference results table has no rows"):
        read_references(tmp_path)


def test_non_zip_or_pickled_inputs_say_what_is_accepted(tmp_path):
    audio, files, _, _ = esc50_like()
    (tmp_path / "text.npz").write_text("audio,files\n1,2\n")
    with pytest.raises(ValueError, match=r"text\.npz: not an \.npz archive.*accepted formats: \.npz"):
        load_embeddings(tmp_path / "text.npz")
    np.savez(tmp_path / "obj.npz", audio=audio, files=np.array(list(files), dtype=object))
    with pytest.raises(ValueError, match=r"obj\.npz: holds object \(pickled\) arrays"):
        load_embeddings(tmp_path / "obj.npz")
    (tmp_path / "e.npy").write_bytes(b"not numpy")
    (tmp_path / "f.txt").write_text(files[0])
    with pytest.raises(ValueError, match=r"e\.npy: not a numeric \.npy.*no \.npy header.*accepted formats") as e:
        load_embeddings(tmp_path / "e.npy", files=tmp_path / "f.txt")
    assert "pickle" not in str(e.value).split(": ", 1)[1]  # (the tmp path holds this test's name)


def test_cli_bad_input_is_one_line_exit_2(tmp_path, capsys):
    audio, files, _, centres = esc50_like()
    np.savez(tmp_path / "e.npz", audio=audio, files=files, text=centres)
    assert main([str(tmp_path / "e.npz"), "--classes", "dog,unicorn", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown class(es) requested ['unicorn']") and err.count("\n") == 1
    (tmp_path / "bad.npz").write_bytes(b"\x80\x04garbage")
    assert main([str(tmp_path / "bad.npz")]) == 2
    err = capsys.readouterr().err
    assert "not an .npz archive" in err and err.count("\n") == 1
    (tmp_path / "adir.npz").mkdir()
    assert main([str(tmp_path / "adir.npz")]) == 2  # an OSError-type problem is still one line
    assert capsys.readouterr().err.count("\n") == 1


def test_cli_notes_go_to_stderr(tmp_path, capsys):
    audio, files, _, _ = esc50_like()
    audio[0] = 0
    np.savez(tmp_path / "e.npz", audio=audio, files=files)
    assert main([str(tmp_path / "e.npz"), "--out", str(tmp_path / "o")]) == 0
    assert "note: 1 all-zero audio row(s) dropped" in capsys.readouterr().err
    assert "1 all-zero audio row(s) dropped" in json.loads((tmp_path / "o" / "audit.json").read_text())["notes"][0]


def test_cli_ctrl_c_is_130_one_line(tmp_path, capsys, monkeypatch):
    import clap_lib.report.audit as audit_mod  # the command reads its embeddings there

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(audit_mod, "load_embeddings", interrupted)
    assert main([str(tmp_path / "e.npz")]) == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_python_dash_m_bad_input_has_no_traceback(tmp_path):
    (tmp_path / "e.npz").write_bytes(b"\x80\x04garbage")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "clap_lib", "audit", str(tmp_path / "e.npz")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and "accepted formats" in proc.stderr
