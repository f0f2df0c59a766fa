"""Reliability, round three (issue 24): each case was a silent mistake or a traceback before."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from clap_lib.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, *sets: str, extra: tuple[str, ...] = ()) -> list[str]:
    return [
        "run",
        "--profile",
        "lab",
        "--artifacts",
        str(tmp_path / "a"),
        *extra,
        *[x for s in sets for x in ("--set", s)],
    ]


def test_clap_batch_of_one_is_refused_before_work(tmp_path, capsys):
    # the contrastive loss of one pair is identically 0 (softmax over one candidate): nothing would learn
    import torch

    from clap_lib.models.loss import clip_loss

    e = torch.nn.functional.normalize(torch.randn(1, 8), dim=-1)
    assert clip_loss(e, torch.nn.functional.normalize(torch.randn(1, 8), dim=-1), torch.tensor(2.0)).item() == 0.0
    assert main(_run(tmp_path, "clap.batch_size=1")) == 2
    assert "clap.batch_size must be >= 2" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


def test_truncated_esc50_csv_is_refused_naming_the_counts(tmp_path, capsys):
    import pandas as pd
    from fixtures import write_tiny_esc50

    from clap_lib.data.esc50 import read_esc50_meta

    root = write_tiny_esc50(tmp_path / "esc50", per_fold=1, seconds=0.1)
    csv = root / "meta" / "esc50.csv"
    meta = pd.read_csv(csv)
    assert len(read_esc50_meta(root)) == 250
    meta.iloc[:-9].to_csv(csv, index=False)  # still parses, 9 clips short
    with pytest.raises(ValueError, match=r"lists 241 clips but .*audio holds 250 audio files: 9 are not in the csv"):
        read_esc50_meta(root)
    assert main(["dry-run", "--profile", "lab", "--esc50", str(root), "--set", "captions=bank"]) == 1
    out = capsys.readouterr().out
    assert "lists 241 clips but" in out and "250 audio files" in out


def test_default_data_folders_come_from_the_project_not_the_working_directory(tmp_path, monkeypatch, capsys):
    from fixtures import write_tiny_esc50

    from clap_lib.data import paths
    from clap_lib.data.esc50 import locate_esc50

    monkeypatch.delenv("CLAP_DATA", raising=False)
    monkeypatch.delenv("CLAP_ESC50", raising=False)
    project = tmp_path / "home" / "project"  # its data: tmp/home/shared/data
    (project / "clap_lib").mkdir(parents=True)
    ours = write_tiny_esc50(tmp_path / "home" / "shared" / "data" / "esc50", per_fold=1, seconds=0.1)
    decoy_cwd = tmp_path / "elsewhere" / "work"  # a decoy ../shared/data/esc50 relative to the working directory
    decoy_cwd.mkdir(parents=True)
    write_tiny_esc50(tmp_path / "elsewhere" / "shared" / "data" / "esc50", per_fold=1, seconds=0.1)
    monkeypatch.chdir(decoy_cwd)
    assert paths.shared_data_dir(project) == ours.parent.resolve()
    # the package's own default: this checkout's folder, wherever the process starts
    real = paths.shared_data_dir()
    assert real is None or "elsewhere" not in str(real)
    monkeypatch.setattr(paths, "PROJECT_ROOT", project)
    monkeypatch.setattr(paths.shared_data_dir, "__defaults__", (project,))
    assert locate_esc50() == ours.resolve()
    # every run says which data it reads before any work
    assert main(_run(tmp_path, "seed=abc")) == 2  # a bad value: nothing printed, nothing run
    main(
        _run(
            tmp_path,
            "captions=bank",
            "pretrainings=none",
            "trainings=dirty",
            extra=("--quiet", "--esc50", str(tmp_path / "nowhere")),
        )
    )
    out = capsys.readouterr()
    assert f"data folders: ESC-50 not found ({tmp_path / 'nowhere'}); shared data {ours.parent.resolve()}" in out.out


def test_no_silent_precedence(tmp_path, capsys):
    from clap_lib.config.parse import parse_seeds, parse_sets
    from clap_lib.config.profiles import config_from_params

    # a papermill -p width and `overrides` naming another width: an error naming both
    with pytest.raises(ValueError, match=r"width is given twice: width=0.5 and overrides width='0.25'"):
        config_from_params(profile="lab", width=0.5, overrides="width=0.25; d_embed=64")
    with pytest.raises(ValueError, match=r"seed is given twice: seed=2 and overrides seed='1'"):
        config_from_params(profile="lab", seed=2, overrides="seed=1")
    assert config_from_params(profile="lab", width=0.25, overrides="width=0.25").width == 0.25  # the same value
    assert config_from_params(profile="lab", overrides="seed=3").seed == 3  # seed left at its default: honoured
    # a repeated --set key
    with pytest.raises(ValueError, match=r"clap.batch_size is set twice, to '64' and to '32'"):
        parse_sets(["clap.batch_size=64", "clap.batch_size=32"])
    assert main(_run(tmp_path, "seed=1", "seed=2")) == 2
    assert "seed is set twice, to '1' and to '2'" in capsys.readouterr().err
    # empty lists are errors, not "not given"
    assert main(_run(tmp_path, extra=("--trainings", ""))) == 2
    assert "trainings is empty" in capsys.readouterr().err
    assert main(_run(tmp_path, "trainings=clean", extra=("--trainings", "dirty"))) == 2
    assert "trainings is given twice: --trainings 'dirty' and --set trainings='clean'" in capsys.readouterr().err
    for seeds in (",", "0,,1"):
        with pytest.raises(ValueError, match="empty entry"):
            parse_seeds(seeds)
        assert main(_run(tmp_path, extra=("--seeds", seeds))) == 2
        assert "--seeds expects comma-separated integers" in capsys.readouterr().err
    assert main(_run(tmp_path, extra=("--seeds", ""))) == 2
    assert "--seeds is empty" in capsys.readouterr().err
    # run.device in an ESC-50 profile is refused, naming the setting and the profile (config.profiles.UNREAD)
    assert main(_run(tmp_path, "run.device=cuda")) == 2
    assert "run.device: the lab profile does not read this setting" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


def _numeric_fields(obj, prefix=""):
    import dataclasses
    import typing

    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if dataclasses.is_dataclass(v):
            yield from _numeric_fields(v, f"{prefix}{f.name}.")
            continue
        hint = typing.get_type_hints(type(obj))[f.name]
        if typing.get_origin(hint) is tuple:  # lists of values (paper.eval_folds) are checked entry by entry
            continue
        args = set(typing.get_args(hint)) or {hint}
        if args & {int, float} and bool not in args:
            yield prefix + f.name


def test_every_numeric_setting_has_a_range():
    from clap_lib.config.profiles import make_config
    from clap_lib.config.ranges import RANGES

    for profile in ("lab", "gpvad", "paper"):
        names = set(_numeric_fields(make_config(profile)))
        assert names == set(RANGES), names ^ set(RANGES)


@pytest.mark.parametrize(
    "setting, message",
    [
        ("d_embed=100000000", "d_embed must be in [1, 8192], got 100000000"),
        ("audio.clip_seconds=1e9", "audio.clip_seconds must be in [0.01, 600], got 1000000000.0"),
        ("clap.frozen_epochs=1000000000", "clap.frozen_epochs must be in [0, 10000], got 1000000000"),
        ("n_boot=1000000000000", "n_boot must be in [1, 1e+06], got 1000000000000"),
        ("pretrain.lr=1e300", "pretrain.lr must be in [1e-10, 10], got 1e+300"),
        ("topo_k_min=1000", "topo_k_min must be in 2..25 (the number of target labels), got 1000"),
    ],
)
def test_absurd_numbers_stop_before_any_work(setting, message, tmp_path, capsys):
    assert main(_run(tmp_path, setting)) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


# a stand-in for `jupyter-book build BOOK ... --path-output OUT`: writes the pages listed in BOOK/pages.txt, each
# saying which run it shows, one by one (slowly when BOOK/slow exists), index.html last
FAKE_JUPYTER_BOOK = r"""
import sys, time
from pathlib import Path
args = sys.argv[1:]
book, out = Path(args[1]), Path(args[args.index("--path-output") + 1])
html = out / "_build" / "html"
html.mkdir(parents=True)
run = (book / "run.txt").read_text()
for i, page in enumerate((book / "pages.txt").read_text().split()):
    (html / f"{page}.html").write_text(run)
    if i == 0:
        (book / "started").touch()
    if (book / "slow").exists():
        time.sleep(1)
(html / "index.html").write_text(run)
"""


def _pages(html: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in html.glob("*.html")}


def test_interrupted_book_build_keeps_the_previous_book_whole(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from clap_lib.report import book as book_mod

    fake = tmp_path / "fake_jupyter_book.py"
    fake.write_text(FAKE_JUPYTER_BOOK)
    src = tmp_path / "book"
    src.mkdir()
    html = src / "_build" / "html"
    cmd = [sys.executable, str(fake)]

    # run 0: three pages, one of which the next configuration no longer links
    (src / "pages.txt").write_text("summary s3_1 none_strict")
    (src / "run.txt").write_text("seed 0")
    assert book_mod.build_html(src, command=cmd, log=lambda m: None) == html
    assert _pages(html) == {f"{p}.html": "seed 0" for p in ("summary", "s3_1", "none_strict", "index")}

    # run 1, interrupted by a real SIGINT (Ctrl-C reaches the whole process group) while pages are written
    (src / "pages.txt").write_text("summary s3_1 s3_2 s3_3")
    (src / "run.txt").write_text("seed 1")
    (src / "slow").touch()
    (src / "started").unlink()
    driver = (
        f"import sys\nfrom pathlib import Path\nfrom clap_lib.report import book\ntry:\n"
        f"    book.build_html(Path({str(src)!r}), command={cmd!r}, log=lambda m: None)\n"
        f"except KeyboardInterrupt:\n    print('interrupted', file=sys.stderr)\n    sys.exit(130)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", driver],
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while not (src / "started").exists() and time.time() < deadline:
        time.sleep(0.02)
    assert (src / "started").exists() and proc.poll() is None
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip() == "interrupted", err
    # the book is the whole previous run: no page of run 1 mixed in, no temporary folder left
    assert _pages(html) == {f"{p}.html": "seed 0" for p in ("summary", "s3_1", "none_strict", "index")}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    # run 1 completed: its pages only; the unlinked page of run 0 is gone
    (src / "slow").unlink()
    book_mod.build_html(src, command=cmd, log=lambda m: None)
    assert _pages(html) == {f"{p}.html": "seed 1" for p in ("summary", "s3_1", "s3_2", "s3_3", "index")}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def _prepare_cli(esc50: Path, artifacts: Path, *sets: str) -> list[str]:
    from fixtures import TINY_SETS

    s = TINY_SETS | {"pretrainings": "none", "trainings": "dirty"} | dict(x.split("=", 1) for x in sets)
    return [
        "run",
        "--profile",
        "lab",
        "--quiet",
        "--step",
        "prepare",
        "--esc50",
        str(esc50),
        "--artifacts",
        str(artifacts),
        *[x for k, v in s.items() for x in ("--set", f"{k}={v}")],
    ]


@contextlib.contextmanager
def _read_only_copy(art: Path, where: Path):
    """`art` copied into a folder this process cannot write: permissions for a normal user, a read-only tmpfs
    for root (which ignores permissions)."""
    import os
    import shutil
    import subprocess

    if os.geteuid() != 0:
        ro = shutil.copytree(art, where / "artifacts")
        for d, _, _ in os.walk(ro):
            os.chmod(d, 0o555)
        try:
            yield ro
        finally:
            for d, _, _ in os.walk(ro):
                os.chmod(d, 0o755)
        return
    where.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(where)]).returncode:
        pytest.skip("root without permission to mount a read-only tmpfs")
    try:
        ro = shutil.copytree(art, where / "artifacts")
        subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)
        yield ro
    finally:
        subprocess.run(["umount", str(where)], check=True)


def test_read_only_or_full_artifacts_folder_gives_one_line(tmp_path, capsys):
    from fixtures import write_tiny_esc50

    esc50 = write_tiny_esc50(tmp_path / "esc50", per_fold=2, seconds=0.2)
    art = tmp_path / "artifacts"
    assert main(_prepare_cli(esc50, art)) == 0  # features + the random backbone, cached
    capsys.readouterr()

    # a full disk under run.log (/dev/full: every write fails with ENOSPC): the cached run still succeeds
    (art / "run.log").unlink()
    (art / "run.log").symlink_to("/dev/full")
    assert main(_prepare_cli(esc50, art)) == 0
    assert capsys.readouterr().err.strip().splitlines() == [
        f"warning: cannot write {art / 'run.log'} (No space left on device); the run goes on without its log"
    ]
    (art / "run.log").unlink()

    # a read-only artifacts folder: the cached run succeeds, a run that must write stops with one line
    with _read_only_copy(art, tmp_path / "ro") as ro:
        assert main(_prepare_cli(esc50, ro)) == 0
        (warning,) = capsys.readouterr().err.strip().splitlines()
        assert warning.startswith(f"warning: cannot write {ro / 'run.log'} (")
        assert main(_prepare_cli(esc50, ro, "seed=1")) == 1  # a new random backbone to write
        warning, error = capsys.readouterr().err.strip().splitlines()  # run.log, then the stage it cannot write
        assert warning.startswith(f"warning: cannot write {ro / 'run.log'} (")
        assert error.startswith(f"error: cannot write in the artifacts folder {ro}: "), error


def _crafted_npz(path: Path, shape: tuple[int, ...]) -> Path:
    """A small .npz whose 'audio' header declares `shape` (float64) over 80 bytes of data."""
    import io
    import zipfile

    import numpy as np

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": shape})
    buf.write(np.zeros(10).tobytes())
    names = io.BytesIO()
    np.save(names, np.array(["1-100000-A-0.wav"] * 2))
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("audio.npy", buf.getvalue())
        z.writestr("files.npy", names.getvalue())
    return path


def test_audit_refuses_a_huge_declared_array_before_loading(tmp_path, capsys):
    import numpy as np

    npz = _crafted_npz(tmp_path / "huge.npz", (1_000_000, 1_000_000))
    assert main(["audit", str(npz), "--out", str(tmp_path / "out")]) == 2
    (err,) = capsys.readouterr().err.strip().splitlines()
    assert err == (
        f"error: {npz} (audio.npy): its header declares an array of shape (1000000, 1000000) "
        "(8,000,000,000,000 bytes) but the file holds 208 bytes; not loaded"
    )
    npy = tmp_path / "huge.npy"  # the same for a bare .npy
    with open(npy, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (10**9, 512)})
    (tmp_path / "files.txt").write_text("1-100000-A-0.wav\n")
    assert main(["audit", str(npy), "--files", str(tmp_path / "files.txt"), "--out", str(tmp_path / "o")]) == 2
    assert "declares an array of shape (1000000000, 512)" in capsys.readouterr().err


def test_audit_seed_and_names_in_messages(tmp_path, capsys):
    import numpy as np

    from clap_lib.analysis.audit_inputs import esc50_targets

    with pytest.raises(SystemExit) as e:
        main(["audit", str(tmp_path / "x.npz"), "--seed", "-1"])
    assert e.value.code == 2
    assert "argument --seed: expected an integer in 0..2**32-1, got -1" in capsys.readouterr().err
    with pytest.raises(ValueError) as e:
        esc50_targets(np.array(["abc.wav"]))
    assert "'abc.wav'" in str(e.value) and "np.str_" not in str(e.value)
    with pytest.raises(KeyError) as e:
        esc50_targets(
            np.array(["1-100000-A-0.wav", "9-9-Z-9.wav"]),
            __import__("pandas").DataFrame({"filename": ["1-100000-A-0.wav"], "fold": [1], "target": [0]}),
        )
    assert "['9-9-Z-9.wav']" in str(e.value) and "np.str_" not in str(e.value)


SLEEPY_NOTEBOOK = """# %% tags=["parameters"]
marker = ""

# %%
import pathlib
import time

pathlib.Path(marker).touch()
time.sleep(30)
"""


@pytest.mark.slow
def test_ctrl_c_during_a_notebook_prints_one_line(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    (tmp_path / "sleepy.py").write_text(SLEEPY_NOTEBOOK)
    marker = tmp_path / "cell-running"
    driver = (
        f"import sys\nfrom pathlib import Path\nfrom clap_lib.report import book\n"
        f"job = book.NotebookJob(Path({str(tmp_path / 'sleepy.py')!r}), Path({str(tmp_path / 'out.ipynb')!r}), "
        f"{{'marker': {str(marker)!r}}})\ntry:\n    book.execute(job, 'key', log=lambda m: None)\n"
        f"except KeyboardInterrupt:\n"
        f"    print('interrupted; rerun the same command to resume', file=sys.stderr)\n    sys.exit(130)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", driver],
        cwd=ROOT,
        start_new_session=True,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    deadline = time.time() + 120
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert marker.exists(), proc.stderr.read() if proc.poll() is not None else "the cell never ran"
    t0 = time.time()
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the terminal's process group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and time.time() - t0 < 10, err  # at once, not when the cell ends
    lines = [ln for ln in err.splitlines() if ln.strip() and "Kernel is running over TCP" not in ln]
    assert lines == ["interrupted; rerun the same command to resume"], err
    assert not (tmp_path / "out.ipynb").exists()


def test_an_empty_numbered_table_says_what_it_cannot_show():
    import pandas as pd

    from clap_lib.report.numbered import list_table
    from clap_lib.report.tables import correlation_table

    text = list_table(correlation_table({}), "Correlations.", "tbl-x", "a correlation needs at least 3 combinations")
    assert text.splitlines() == [
        "```{list-table} Correlations.",
        ":name: tbl-x",
        ":header-rows: 1",
        "",
        "* - not shown",
        "* - A correlation needs at least 3 combinations",
        "```",
    ]
    assert "* - Nothing to show for this run" in list_table(pd.DataFrame(), "C.", "tbl-y")


@pytest.fixture(scope="module")
def small_esc50(tmp_path_factory):
    from fixtures import write_tiny_esc50

    return write_tiny_esc50(tmp_path_factory.mktemp("esc50"), per_fold=2, seconds=0.2)


def test_missing_weights_are_named_by_their_own_setting(small_esc50, tmp_path, capsys):
    for setting, named in (
        ("weights.none=file:/nope/none.pth", "weights.none='file:/nope/none.pth'"),
        ("reference_weights=file:/nope/ref.pth", "reference_weights entry='file:/nope/ref.pth'"),
    ):
        assert main(_run(tmp_path, "captions=bank", setting, extra=("--esc50", str(small_esc50)))) == 2
        err = capsys.readouterr().err.strip()
        assert err == f"error: {named}: weights file not found: {setting.split(':', 1)[1]}", err
    # a run failing its input checks leaves nothing behind: no artifacts folder, no run.log
    assert not (tmp_path / "a").exists()
    assert main(_run(tmp_path, extra=("--esc50", str(tmp_path / "nowhere")))) == 2
    assert "ESC-50 not found" in capsys.readouterr().err and not (tmp_path / "a").exists()


def test_latest_json_malformed_or_leading_out_of_the_artifacts_folder(tmp_path, capsys):
    from clap_lib.pipeline.results import stored_path

    art = tmp_path / "a"
    art.mkdir()
    (art / "latest.json").write_text('{"grid": ')
    assert main(["show", "--artifacts", str(art)]) == 2
    assert f"error: {art / 'latest.json'} is malformed (JSONDecodeError" in capsys.readouterr().err
    (tmp_path / "other" / "grid" / "k").mkdir(parents=True)  # another folder's grid
    for stored in ("../other/grid/k", str(tmp_path / "other" / "grid" / "k")):
        (art / "latest.json").write_text(json.dumps({"grid": stored}))
        assert main(["show", "--artifacts", str(art)]) == 2
        assert f"stored path {stored!r} leads out of the artifacts folder {art}; refused" in capsys.readouterr().err
    assert stored_path(art, "grid/k") == art / "grid" / "k"
    assert stored_path(art, art / "grid" / "k") == art / "grid" / "k"  # absolute inside (grids of older versions)


@pytest.mark.slow
def test_show_checks_the_features_stage_and_quiet_prints_no_progress_bar(small_esc50, tmp_path, capsys):
    import os
    import subprocess
    import sys

    from fixtures import TINY_SETS

    sets = TINY_SETS | {"pretrainings": "none", "trainings": "dirty", "n_boot": "20", "n_perm": "50"}
    args = [
        "run",
        "--profile",
        "lab",
        "--quiet",
        "--esc50",
        str(small_esc50),
        "--artifacts",
        str(tmp_path / "a"),
        *[x for k, v in sets.items() for x in ("--set", f"{k}={v}")],
    ]
    r = subprocess.run(
        [sys.executable, "-m", "clap_lib", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "\r" not in r.stderr and "it/s" not in r.stderr, r.stderr[-2000:]  # no tqdm bar, ours or a library's
    assert main(["show", "--artifacts", str(tmp_path / "a")]) == 0
    capsys.readouterr()
    (features,) = [d for d in (tmp_path / "a" / "features").iterdir() if (d / "manifest.json").is_file()]
    with open(features / "ok.npy", "r+b") as f:  # one flipped byte in the features stage
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 1]))
    assert main(["show", "--artifacts", str(tmp_path / "a")]) == 2
    assert f"invalid stage {features}: corrupt file {features / 'ok.npy'}" in capsys.readouterr().err


def test_machine_path_scan_finds_absolute_paths_of_this_machine(tmp_path):
    from clap_lib.report.book_html import ROOT as BOOK_ROOT
    from clap_lib.report.book_html import machine_paths, machine_prefixes

    assert "/" + BOOK_ROOT.parts[1] in machine_prefixes()
    (tmp_path / "a.html").write_text(f'<p>artifacts = "{BOOK_ROOT}/artifacts"</p> <a href="https://x.org/tmp/y">')
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.ipynb").write_text(json.dumps({"output_path": f"{tmp_path}/.x.tmp-123.ipynb"}))
    (tmp_path / "c.json").write_text('{"grid": "grid/abc", "rel": "../shared/data/esc50"}')  # relative: fine
    assert machine_paths(tmp_path) == [
        ("a.html", f"{BOOK_ROOT}/artifacts"),
        ("sub/b.ipynb", f"{tmp_path}/.x.tmp-123.ipynb"),
    ]
    assert main(["book", "scan", str(tmp_path)]) == 1  # what the main job runs over the built book
    assert main(["book", "scan", str(tmp_path / "sub" / "none")]) == 0


def test_run_log_and_skipped_clips_hold_no_machine_path(tmp_path):
    import pandas as pd

    from clap_lib.config.experiment import AudioConfig
    from clap_lib.data.audio import load_clips
    from clap_lib.pipeline.results import RunLog
    from clap_lib.report.book_html import machine_paths

    art = tmp_path / "artifacts"
    log = RunLog(art / "run.log", quiet=True)
    log(f"[cache] clap/abc: resuming from checkpoint {art / 'clap' / 'abc.work' / 'resume.pt'}")
    assert (art / "run.log").read_text().split(" ", 1)[
        1
    ] == "[cache] clap/abc: resuming from checkpoint clap/abc.work/resume.pt\n"
    bad = tmp_path / "audio" / "1-100000-A-0.wav"
    bad.parent.mkdir()
    bad.write_bytes(b"not audio at all")
    with pytest.warns(UserWarning, match="skipping 1-100000-A-0.wav"):
        clips = load_clips(pd.DataFrame({"path": [str(bad)]}), AudioConfig(), progress=False)
    ((name, why),) = clips.skipped
    assert name == "1-100000-A-0.wav" and "cannot read audio file 1-100000-A-0.wav" in why and str(tmp_path) not in why
    assert machine_paths(art) == []


@pytest.mark.slow
def test_executed_notebook_hides_and_holds_no_machine_path(tmp_path):
    import nbformat

    from clap_lib.report import book as book_mod

    params = book_mod.BookParams(
        profile="lab", artifacts=str(tmp_path / "art"), grid=str(tmp_path / "art" / "grid" / "k")
    )
    (job,) = [j for j in book_mod.jobs(params) if j.output.name == "summary.ipynb"]
    assert not Path(job.parameters["artifacts"]).is_absolute() and not Path(job.parameters["grid"]).is_absolute()
    assert (book_mod.ROOT / job.parameters["artifacts"]).resolve() == (tmp_path / "art").resolve()
    src = tmp_path / "nb.py"
    src.write_text(
        '# %% tags=["parameters"]\nartifacts = "artifacts"\n\n# %%\nimport pathlib\nimport warnings\n\n'
        "import clap_lib\n\nwhere = str(pathlib.Path(clap_lib.__file__).resolve().parent / 'x.py')\n"
        'warnings.warn_explicit("careful", UserWarning, where, 7)\nprint(artifacts)\n'
    )
    job = book_mod.NotebookJob(src, tmp_path / "out" / "nb.ipynb", {"artifacts": job.parameters["artifacts"]})
    book_mod.execute(job, "key", log=lambda m: None)
    nb = nbformat.read(job.output, as_version=4)
    (injected,) = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert "remove-cell" in injected.metadata.tags  # not shown on the page
    stderr = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.get("name") == "stderr")
    assert "clap_lib/x.py:7: UserWarning: careful" in stderr
    assert nb.metadata.papermill.output_path == "nb.ipynb"
    assert book_mod.machine_paths(tmp_path / "out") == []


COUNTING_JUPYTER_BOOK = """
import sys
from pathlib import Path
args = sys.argv[1:]
book, out = Path(args[1]), Path(args[args.index("--path-output") + 1])
html = out / "_build" / "html"
html.mkdir(parents=True)
(html / "index.html").write_text((book / "page.md").read_text())
with open(book.parent / "builds.txt", "a") as f:
    f.write("built\\n")
"""


def test_an_unchanged_book_is_not_rebuilt_and_any_changed_source_or_force_rebuilds_it(tmp_path):
    import sys

    from clap_lib.report import book_html

    fake = tmp_path / "fake_jupyter_book.py"
    fake.write_text(COUNTING_JUPYTER_BOOK)
    src = tmp_path / "book"
    (src / "generated").mkdir(parents=True)
    (src / "page.md").write_text("v1")
    (src / "generated" / "s3_1.ipynb").write_text("{}")
    config, toc = tmp_path / "_config.yml", tmp_path / "_toc.yml"
    config.write_text("title: t")
    toc.write_text("root: page")
    cmd = [sys.executable, str(fake)]

    def build(force=False):
        html = book_html.build_html(src, config, toc, log=lambda m: None, command=cmd, force=force)
        return (html / "index.html").read_text(), (tmp_path / "builds.txt").read_text().count("built")

    assert build() == ("v1", 1)
    assert build() == ("v1", 1)  # nothing changed: the HTML is kept, jupyter-book does not run
    (src / "generated" / "s3_1.ipynb").write_text('{"cells": []}')  # a notebook re-executed with new output
    assert build() == ("v1", 2)
    config.write_text("title: u")
    assert build() == ("v1", 3)
    (src / "page.md").write_text("v2")
    assert build() == ("v2", 4)
    assert build(force=True) == ("v2", 5)
    (src / "_build" / "html" / "index.html").unlink()  # a damaged book is built again
    assert build() == ("v2", 6)
