import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from clap_lib.config.experiment import AudioConfig
from clap_lib.data.audio import load_clips
from clap_lib.data.esc50 import (
    ESC50_CLASSES,
    EVAL_FOLD,
    data_fingerprint,
    locate_esc50,
    make_pairs,
    read_esc50_meta,
    split_by_clip,
    split_classes,
    split_validation,
    train_eval_masks,
)


def write_esc50(root, n_per_fold=2, layout="official", ext=".wav", sr=16000, targets=(0, 1, 10, 45)):
    """A tiny ESC-50 in the official layout: meta/esc50.csv + audio/{fold}-{src}-{take}-{target}.wav"""
    rows, rng = [], np.random.default_rng(0)
    audio = root / "audio"
    audio.mkdir(parents=True)
    for fold in range(1, 6):
        for t in targets:
            for j in range(n_per_fold):
                src = 1000 * fold + 10 * t + j
                name = f"{fold}-{src}-A-{t}.wav"
                rows.append((name, fold, t, ESC50_CLASSES[t], t in (0, 1, 10), src, "A"))
                freq = 200 + 40 * t
                x = 0.3 * np.sin(2 * np.pi * freq * np.arange(int(sr * 1.0)) / sr) + 0.01 * rng.standard_normal(sr)
                sf.write(audio / (name[:-4] + ext), x, sr)
    meta = pd.DataFrame(rows, columns=["filename", "fold", "target", "category", "esc10", "src_file", "take"])
    csv = root / "meta" / "esc50.csv" if layout == "official" else root / "esc50.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    meta.to_csv(csv, index=False)
    return root


def test_reader_accepts_both_layouts_and_extensions(tmp_path):
    a = read_esc50_meta(write_esc50(tmp_path / "a"))
    b = read_esc50_meta(write_esc50(tmp_path / "b", layout="shared", ext=".flac"))
    assert len(a) == len(b) == 40
    assert a["path"].str.endswith(".wav").all() and b["path"].str.endswith(".flac").all()


def test_reader_errors(tmp_path):
    root = write_esc50(tmp_path / "r")
    (root / "audio" / "1-1000-A-0.wav").unlink()
    with pytest.raises(FileNotFoundError, match="1 ESC-50 audio files .* missing"):
        read_esc50_meta(root)
    bad = tmp_path / "bad"
    (bad / "meta").mkdir(parents=True)
    (bad / "audio").mkdir()
    (bad / "meta" / "esc50.csv").write_text("filename,fold\nx.wav,1\n")
    with pytest.raises(ValueError, match="lacks the ESC-50 columns"):
        read_esc50_meta(bad)
    with pytest.raises(FileNotFoundError, match="ESC-50 not found.*parameter"):
        locate_esc50(tmp_path / "nowhere")


def test_locate_prefers_parameter_then_env(tmp_path, monkeypatch):
    a, b = write_esc50(tmp_path / "a"), write_esc50(tmp_path / "b")
    monkeypatch.setenv("CLAP_ESC50", str(b))
    assert locate_esc50(a) == a
    assert locate_esc50() == b


def test_load_clips_pads_resamples_and_skips(tmp_path):
    root = write_esc50(tmp_path / "r", sr=44100)
    meta = read_esc50_meta(root)
    meta.loc[0, "path"] = str(tmp_path / "corrupt.wav")
    (tmp_path / "corrupt.wav").write_bytes(b"garbage")
    cfg = AudioConfig()
    with pytest.warns(UserWarning, match="corrupt.wav"):
        clips = load_clips(meta, cfg, progress=False)
    assert clips.waves.shape == (40, cfg.n_samples) and not clips.ok[0] and clips.ok[1:].all()
    assert clips.skipped[0][0] == "corrupt.wav"
    w = clips.waves[1]
    # 1 s of audio zero-padded to 5 s, then the whole clip normalised: the padding is one constant value
    tail = w[16000:]
    assert np.ptp(tail) == 0 and np.ptp(w[:16000]) > 1.0
    assert abs(w.mean()) < 1e-5 and abs(w.std() - 1) < 1e-4


def test_fingerprint_changes_with_one_audio_file(tmp_path):
    root = write_esc50(tmp_path / "r")
    meta = read_esc50_meta(root)
    before = data_fingerprint(meta)
    assert before == data_fingerprint(meta)
    sf.write(meta.loc[3, "path"], np.zeros(100), 16000)
    assert data_fingerprint(meta) != before


def test_split_classes_five_per_category_and_swap():
    s = split_classes(seed=0)
    assert len(s.target) == 25 and len(s.background) == 25 and not set(s.target) & set(s.background)
    cats = [ESC50_CLASSES.index(c) // 10 for c in s.target]
    assert all(cats.count(k) == 5 for k in range(5))
    assert split_classes(seed=0) == s and split_classes(seed=1) != s
    assert split_classes(seed=0, swap=True) == s.swapped()
    assert split_classes(target_classes=("rain", "dog")).target == ("dog", "rain")
    with pytest.raises(ValueError, match="unknown ESC-50 class.*'dgo'"):
        split_classes(target_classes=("dgo",))


def test_pairs_never_contain_fold_5(tmp_path):
    meta = read_esc50_meta(write_esc50(tmp_path / "r"))
    bank = {c: (f"{c} one", f"{c} two") for c in ESC50_CLASSES}
    ok = np.ones(len(meta), bool)
    ok[1] = False
    pairs = make_pairs(meta, ok, bank)
    assert (meta.loc[pairs["clip"], "fold"] != EVAL_FOLD).all()
    assert len(pairs) == 2 * (32 - 1) and 1 not in set(pairs["clip"])
    tr, ev = train_eval_masks(meta)
    assert ev.sum() == 8 and not (tr & ev).any()


def test_split_validation_fraction_and_disjoint():
    tr, va = split_validation(100, 0.2, seed=3)
    assert len(va) == 20 and len(tr) == 80 and not set(tr) & set(va)
    with pytest.raises(ValueError, match="validation fraction"):
        split_validation(10, 1.5, 0)


def test_validation_split_by_clip_keeps_every_clip_on_one_side():
    # 10 clips x 3 captions each: a per-pair split would put some clip in both parts
    clips = np.repeat(np.arange(10), 3)
    tr, va = split_by_clip(clips, 0.3, seed=0)
    assert len(tr) + len(va) == 30 and not set(tr) & set(va)
    assert not set(clips[tr]) & set(clips[va])
    assert len(set(clips[va])) == 3  # 30 % of the 10 distinct clips
    assert np.array_equal(split_by_clip(clips, 0.3, 0)[1], va)  # seeded
    # the per-pair split of the same rows mixes clips (the bug this replaces)
    tr_p, va_p = split_validation(len(clips), 0.3, 0)
    assert set(clips[tr_p]) & set(clips[va_p])


def test_bad_metadata_is_named_before_any_work(tmp_path):
    root = write_esc50(tmp_path / "e")
    csv = root / "meta" / "esc50.csv"
    meta = pd.read_csv(csv)
    bad = meta.astype({"fold": object})
    bad.loc[0, "fold"] = "five"
    bad.to_csv(csv, index=False)
    with pytest.raises(ValueError, match="column 'fold' must hold integers; row of .* has 'five'"):
        read_esc50_meta(root)
    pd.concat([meta, meta.iloc[[0]]]).to_csv(csv, index=False)
    with pytest.raises(ValueError, match="1 file\\(s\\) listed more than once"):
        read_esc50_meta(root)


def test_too_few_evaluation_clips_per_class_stop_the_run():
    from clap_lib.data.esc50 import check_evaluation_clips

    meta = pd.DataFrame({"fold": [5, 5, 5, 1], "category": ["dog", "dog", "rain", "rain"]})
    check_evaluation_clips(meta, ("dog",))
    with pytest.raises(ValueError, match="fewer than 2 clips of 1 evaluated class\\(es\\): \\{'rain': 1\\}"):
        check_evaluation_clips(meta, ("dog", "rain"))
