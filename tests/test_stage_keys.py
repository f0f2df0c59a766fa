"""Each stage's cache key moves with exactly the config fields that stage reads.

The expectations below are written by hand from what each stage computes (not derived from the code under
test): a field the pretraining reads but its key leaves out (as `cnn_dropout` once was) fails here.
"""

import pytest

from clap_lib.config.profiles import make_config
from clap_lib.pipeline.cache import cache_key
from clap_lib.pipeline.keys import stage_payloads

COMBOS = [f"clap/{p}/{t}" for p in ("dirty", "clean", "none") for t in ("dirty", "clean")]
ALL_BB = ["backbone/dirty", "backbone/clean", "backbone/none"]
EVERYTHING = ["features", *ALL_BB, *COMBOS, "grid"]


def keys(cfg) -> dict[str, str]:
    return {name: cache_key(p) for name, p in stage_payloads(cfg, "data-fingerprint").items()}


def changed(profile: str, key: str, value: str) -> set[str]:
    base = make_config(profile)
    new = make_config(profile, {key: value})
    a, b = keys(base), keys(new)
    return {k for k in a.keys() & b.keys() if a[k] != b[k]}


def combos(*pretrainings: str) -> list[str]:
    return [c for c in COMBOS if c.split("/")[1] in pretrainings]


# lab: dirty = train:all, clean = train:background (depends on the class split), none = random (seeded)
LAB = [
    ("audio.hop", "160", EVERYTHING),
    ("audio.n_mels", "32", EVERYTHING),
    ("width", "0.25", [*ALL_BB, *COMBOS, "grid"]),
    ("bn_calibration_clips", "64", [*ALL_BB, *COMBOS, "grid"]),
    ("keep_published_batchnorm", "true", ["grid"]),  # the lab has no published backbone
    ("cnn_dropout", "0.1", [*ALL_BB, *COMBOS, "grid"]),  # the bug this test exists for
    ("cnn_fc_dropout", "0.3", [*ALL_BB, *COMBOS, "grid"]),
    ("seed", "1", [*ALL_BB, *COMBOS, "grid"]),
    ("pretrain.epochs", "3", ["backbone/dirty", "backbone/clean", *combos("dirty", "clean"), "grid"]),
    ("pretrain.spec_augment", "true", ["backbone/dirty", "backbone/clean", *combos("dirty", "clean"), "grid"]),
    ("weights.clean", "random", ["backbone/clean", *combos("clean"), "grid"]),
    ("weights.none", "train:all", ["backbone/none", *combos("none"), "grid"]),
    ("split_seed", "1", ["backbone/clean", *COMBOS, "grid"]),
    ("target_classes", "dog,rain", ["backbone/clean", *COMBOS, "grid"]),
    ("d_embed", "64", [*COMBOS, "grid"]),
    ("text_max_tokens", "32", [*COMBOS, "grid"]),
    ("captions_per_clip", "3", [*COMBOS, "grid"]),
    ("clap.frozen_epochs", "3", [*COMBOS, "grid"]),
    ("clap.val_fraction", "0.1", [*COMBOS, "grid"]),
    ("topo_k_max", "5", [*COMBOS, "grid"]),
    ("topo_n_perm", "50", [*COMBOS, "grid"]),
    ("n_boot", "10", ["grid"]),
    ("reference_weights", "random", ["grid"]),  # adds a stage of its own; the grid records it
    ("n_perm", "10", ["grid"]),
    ("ci_level", "0.9", ["grid"]),
    ("paper.eval_folds", "5", []),  # the lab profile has no paper settings in its results
    ("controlled.seeds", "1", ["grid"]),  # recorded in the grid's config; its runs' keys: test_controlled.py
    ("run.num_threads", "1", []),  # how, not what
    ("run.progress", "false", []),
    ("run.device", "cuda", []),
]


@pytest.mark.parametrize("key, value, expected", LAB, ids=[c[0] for c in LAB])
def test_lab_stage_keys_move_with_exactly_the_fields_they_read(key, value, expected):
    assert changed("lab", key, value) == set(expected)


def test_every_config_field_is_covered_by_an_expectation():
    import dataclasses

    from clap_lib.config.experiment import ExperimentConfig

    covered = {k.split(".")[0] for k, _, _ in LAB} | {
        "profile",
        "pretrainings",
        "trainings",
        "backbone",
        "per_category",
        "swap_split",
        "text_model",
        "expected_vocab_size",
        "captions",
        "topo_k_min",
        "clap",
        "pretrain",
        "weights",
        "audio",
        "paper",
        "run",
    }
    assert {f.name for f in dataclasses.fields(ExperimentConfig)} <= covered


GPVAD_BB = [
    "backbone/dirty",
    "backbone/clean",
    "backbone/none",
    "backbone/reference/vad_c",
    "backbone/reference/gpv_b+background",
]
STRONGER = "backbone/reference/gpv_b+background"  # GPV-B trained further here on B
GPVAD = [
    ("audio.hop", "400", ["features", *GPVAD_BB, *COMBOS, "grid"]),
    ("width", "0.25", ["grid"]),  # a CNN14 field: the CRNN does not read it
    ("seed", "1", ["backbone/none", STRONGER, *COMBOS, "grid"]),  # published weights are not seeded
    ("weights.clean", "random", ["backbone/clean", *combos("clean"), "grid"]),
    ("pretrain.epochs", "4", [STRONGER, "grid"]),  # only the stronger-clean reference trains here
    ("captions_per_clip", "2", [*COMBOS, "grid"]),
    ("split_seed", "1", [STRONGER, *COMBOS, "grid"]),  # B moves
    # one BatchNorm policy: every backbone is re-estimated on folds 1-4 (issue 20)
    ("bn_calibration_clips", "100", [*GPVAD_BB, *COMBOS, "grid"]),
    (
        "keep_published_batchnorm",
        "true",
        ["backbone/dirty", "backbone/clean", "backbone/reference/vad_c", *combos("dirty", "clean"), "grid"],
    ),
]


@pytest.mark.parametrize("key, value, expected", GPVAD, ids=[c[0] for c in GPVAD])
def test_gpvad_stage_keys(key, value, expected):
    from clap_lib.data.paths import shared_data_dir

    if shared_data_dir() is None or not (shared_data_dir() / "gpvad" / "gpv_f.pth").is_file():
        pytest.skip("the published GPVAD weights are not in the shared data folder")
    assert changed("gpvad", key, value) == set(expected)
