"""The shortcut at paper strength (clap_lib.pipeline.paper_strength) on a small synthetic ESC-50 with a random mn04:
shapes, the shortcut equal to a direct computation, the cache, and the skipped path when the weights are missing."""

import json

import numpy as np
import pytest
import torch

from clap_lib.analysis.backbone_analysis import shortcut_result
from clap_lib.config.profiles import config_from_sets, make_config
from clap_lib.data.esc50 import ESC50_CLASSES, EVAL_FOLD, data_fingerprint, read_esc50_meta
from clap_lib.data.ontology import esc50_audioset_names
from clap_lib.models.backbones.mn04 import random_mn04
from clap_lib.pipeline import paper_strength as ps


@pytest.fixture(scope="module")
def small(tiny_esc50, tmp_path_factory):
    """The tiny ESC-50 (500 clips of 1 s), a random mn04 whose head names every mapped AudioSet class."""
    d = tmp_path_factory.mktemp("ps")
    meta = read_esc50_meta(tiny_esc50)
    labels = tuple(sorted({n for names in esc50_audioset_names().values() for n in names})) + ("Speech",)
    torch.save(random_mn04(0, n_labels=len(labels)).state_dict(), d / "random_mn04.pt")
    cfg = make_config("gpvad", {"run.paper_strength": str(d / "random_mn04.pt")})
    return d, meta, labels, cfg


def test_stage_outputs_shortcut_and_cache(small):
    d, meta, labels, cfg = small
    lines: list[str] = []
    st = ps.paper_strength_stage(d / "a", cfg, meta, data_fingerprint(meta), lines.append, labels=labels)
    x_a, probs = np.load(st.dir / "x_a.npy"), np.load(st.dir / "clip_probs.npy")
    ok = np.load(st.dir / "ok.npy")
    assert x_a.shape == (500, 512) and x_a.dtype == np.float32 and probs.shape == (500, len(labels)) and ok.all()
    sc = json.loads((st.dir / "shortcut.json").read_text())
    direct = shortcut_result(probs, labels, meta, ok, ESC50_CLASSES, esc50_audioset_names(), (1, 2, 3, 4, 5))
    assert sc["all_50"]["accuracy"] == pytest.approx(direct["accuracy"])
    assert sc["all_50"]["n_clips"] == direct["n_clips"] < 500 == sc["all_50"]["every_clip"]["n_clips"]
    k = sc["all_50"]["correct"]
    assert sc["all_50"]["every_clip"]["accuracy"] == pytest.approx(k / 500)
    assert sc["all_50"]["every_clip"]["lo"] <= k / 500 <= sc["all_50"]["every_clip"]["hi"]
    t = shortcut_result(probs, labels, meta, ok, cfg.split.target, esc50_audioset_names(), (EVAL_FOLD,))
    assert sc["T_fold5"]["accuracy"] == pytest.approx(t["accuracy"]) and sc["T_fold5"]["every_clip"]["n_clips"] == 50
    sep = (st.dir / "separability.csv").read_text()
    assert "probe" in sep and "nn1" in sep and "silhouette" in sep
    # the second call reuses the cached stage
    again = ps.paper_strength_stage(d / "a", cfg, meta, data_fingerprint(meta), lines.append, labels=labels)
    assert again == st and any("reusing" in x for x in lines)
    # the book's table, found through the grid's pointer
    from types import SimpleNamespace

    from clap_lib import report
    from clap_lib.io import atomic_json

    atomic_json({"stage": st.rel, "weights": "random"}, d / "a" / ps.POINTERS / "gk.json")
    t = report.paper_strength_table(SimpleNamespace(dir=d / "a" / "grid" / "gk"))
    assert len(t) == 3 and t.index[-1].startswith("the paper") and "0.73" in t.iloc[-1].iloc[2]
    assert report.paper_strength_paper_dd() == pytest.approx(0.73)


def test_step_writes_a_pointer_and_skips_missing_weights(small, tmp_path):
    d, meta, labels, _ = small
    cfg = make_config("gpvad", {"run.paper_strength": str(tmp_path / "absent.pt")})
    lines: list[str] = []
    assert ps.paper_strength_step(tmp_path, cfg, meta, "fp", "gridkey", lines.append) is None
    assert sum("paper strength: skipped" in x for x in lines) == 1
    found = ps.paper_strength_for(tmp_path / "grid" / "gridkey")
    assert "absent.pt" in found["skipped"] and str(tmp_path) not in found["skipped"]
    assert ps.paper_strength_for(tmp_path / "grid" / "other") is None  # no stage in that run
    # off in the lab and paper profiles, and an error to switch on there
    assert make_config("lab").run.paper_strength is None is make_config("paper").run.paper_strength
    with pytest.raises(ValueError, match="run.paper_strength"):
        config_from_sets("lab", {"run.paper_strength": "mn04_as"})


def test_an_explicit_missing_weights_file_fails_before_any_work(tmp_path, monkeypatch, capsys):
    from clap_lib.cli import main
    from clap_lib.pipeline.esc50_inputs import check_paper_strength

    monkeypatch.chdir(tmp_path)  # "nope.pt" is relative to the working folder
    for value, extra in (("nope.pt", ""), ("mn05_as", " (not a path, nor a registered name: mn04_as)")):
        assert main(["run", "--artifacts", str(tmp_path / "a"), "--set", f"run.paper_strength={value}"]) == 2
        err = capsys.readouterr().err.strip()
        assert err == f"error: run.paper_strength={value!r}: weights file not found: {value}{extra}", err
    assert not (tmp_path / "a").exists()  # nothing written: no artifacts folder, no run.log
    # the registered default is never an error here, even where its shared file is absent (skipped after the grid)
    monkeypatch.setenv("CLAP_EFFICIENTAT", str(tmp_path / "no_such_folder"))
    assert check_paper_strength(make_config("gpvad")) is None
    (tmp_path / "mine.pt").write_bytes(b"")  # an explicit file that exists passes (it is read by the stage)
    assert check_paper_strength(make_config("gpvad", {"run.paper_strength": "mine.pt"})) is None
