import json
import os
import shutil
import stat

import numpy as np
import pytest

from clap_lib.io import atomic_json, atomic_npy, atomic_torch_save, atomic_write, current_umask
from clap_lib.pipeline.cache import RECIPE_VERSION, Stage, cache_key, check_stage_dir, run_stage, stage_at


def test_cache_key_is_order_independent_and_sensitive():
    a = cache_key({"x": 1, "y": [1, 2], "z": {"b": 2, "a": 1}})
    assert a == cache_key({"z": {"a": 1, "b": 2}, "y": [1, 2], "x": 1})
    assert a != cache_key({"x": 1, "y": [1, 2], "z": {"b": 2, "a": 2}})
    assert a != cache_key({"x": 1.0000001, "y": [1, 2], "z": {"b": 2, "a": 1}})


def _writer(calls):
    def compute(out, work):
        calls.append(1)
        atomic_npy(out / "a.npy", np.arange(5))
        atomic_json({"v": 1}, out / "m.json")
        return {"n": 5}

    return compute


def test_run_stage_computes_once_then_reuses(tmp_path):
    calls = []
    s1, cached1 = run_stage(tmp_path, "s", {"p": 1}, _writer(calls), log=lambda m: None)
    s2, cached2 = run_stage(tmp_path, "s", {"p": 1}, _writer(calls), log=lambda m: None)
    assert (cached1, cached2) == (False, True) and len(calls) == 1 and s1 == s2
    man = s1.manifest()
    assert man["recipe"] == RECIPE_VERSION and man["info"] == {"n": 5} and set(man["files"]) == {"a.npy", "m.json"}
    run_stage(tmp_path, "s", {"p": 2}, _writer(calls), log=lambda m: None)  # changed parameter -> new key
    assert len(calls) == 2


def test_corrupt_or_partial_stage_is_recomputed(tmp_path):
    calls = []
    s, _ = run_stage(tmp_path, "s", {"p": 1}, _writer(calls), log=lambda m: None)
    # flip one byte of an artifact: same size, different content
    data = bytearray((s.dir / "a.npy").read_bytes())
    data[-1] ^= 0xFF
    (s.dir / "a.npy").write_bytes(bytes(data))
    assert not s.is_valid()
    run_stage(tmp_path, "s", {"p": 1}, _writer(calls), log=lambda m: None)
    assert len(calls) == 2 and s.is_valid()
    # a stage directory without its manifest (interrupted before completion) is not valid
    (s.dir / "manifest.json").unlink()
    assert not s.is_valid()
    # truncated manifest
    (s.dir / "manifest.json").write_text("{")
    assert not Stage(tmp_path, "s", s.key).is_valid()


def test_interrupted_compute_leaves_no_valid_stage(tmp_path):
    def boom(out, work):
        atomic_npy(out / "a.npy", np.arange(3))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_stage(tmp_path, "s", {"p": 1}, boom, log=lambda m: None)
    assert not Stage(tmp_path, "s", cache_key({"p": 1})).is_valid()


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    p = tmp_path / "f.json"
    atomic_json({"a": 1}, p)

    def fail(tmp):
        tmp.write_text("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(p, fail)
    assert json.loads(p.read_text()) == {"a": 1}
    assert [q.name for q in tmp_path.iterdir()] == ["f.json"]  # no temp files left behind


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_files_respect_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        assert current_umask() == umask
        for i, write in enumerate(
            (
                lambda p: atomic_json({"a": 1}, p),
                lambda p: atomic_npy(p, np.arange(3)),
                lambda p: atomic_torch_save({"a": 1}, p),
            )
        ):
            p = write(tmp_path / f"f{i}")
            assert stat.S_IMODE(p.stat().st_mode) == mode, (i, oct(p.stat().st_mode))
        plain = tmp_path / "plain"
        plain.write_text("x")  # what open() gives, for comparison
        assert stat.S_IMODE(plain.stat().st_mode) == mode
    finally:
        os.umask(old)


def test_stage_paths_relative_to_the_root_survive_a_move(tmp_path):
    s, _ = run_stage(tmp_path / "a", "clap", {"p": 1}, _writer([]), log=lambda m: None)
    assert s.rel == f"clap/{s.key}"
    shutil.move(str(tmp_path / "a"), str(tmp_path / "b"))
    moved = stage_at(tmp_path / "b", s.rel)
    assert moved == Stage(tmp_path / "b", "clap", s.key) and moved.is_valid()
    assert stage_at(str(tmp_path / "b"), f"clap\\{s.key}") == moved  # written on Windows
    for bad in ("clap", f"/abs/clap/{s.key}", f"../clap/{s.key}", f"x/clap/{s.key}", ""):
        with pytest.raises(ValueError, match="relative to the artifacts root"):
            stage_at(tmp_path, bad)


def test_check_stage_dir_names_the_bad_file(tmp_path):
    s, _ = run_stage(tmp_path, "grid", {"p": 1}, _writer([]), log=lambda m: None)
    assert check_stage_dir(s.dir) == s
    data = bytearray((s.dir / "a.npy").read_bytes())
    data[-1] ^= 0xFF
    (s.dir / "a.npy").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"corrupt file .*a\.npy: SHA-256"):
        check_stage_dir(s.dir)
    (s.dir / "a.npy").write_bytes(b"short")
    with pytest.raises(ValueError, match=r"a\.npy: 5 bytes"):
        check_stage_dir(s.dir)
    (s.dir / "a.npy").unlink()
    with pytest.raises(ValueError, match=r"missing file .*a\.npy"):
        check_stage_dir(s.dir)
    (s.dir / "manifest.json").write_text("{")
    with pytest.raises(ValueError, match=r"unreadable manifest .*manifest\.json"):
        check_stage_dir(s.dir)
    (s.dir / "manifest.json").unlink()
    with pytest.raises(ValueError, match="no manifest"):
        check_stage_dir(s.dir)
    with pytest.raises(ValueError, match="stage folder not found"):
        check_stage_dir(tmp_path / "grid" / "nope")
    # a valid stage copied under another key is not that key's stage
    t, _ = run_stage(tmp_path, "grid", {"p": 2}, _writer([]), log=lambda m: None)
    shutil.copytree(t.dir, tmp_path / "grid" / "0000000000000000")
    with pytest.raises(ValueError, match="describes grid/"):
        check_stage_dir(tmp_path / "grid" / "0000000000000000")


def test_rename_onto_a_completed_stage_is_success(tmp_path):
    """A writer outside the lock (e.g. an older version) completes the stage while we compute: our rename
    fails with ENOTEMPTY, and the stage is taken as done instead of crashing."""
    other, _ = run_stage(tmp_path / "other", "s", {"p": 1}, _writer([]), log=lambda m: None)

    def compute(out, work):
        shutil.copytree(other.dir, tmp_path / "main" / "s" / other.key)
        return _writer([])(out, work)

    logs = []
    s, cached = run_stage(tmp_path / "main", "s", {"p": 1}, compute, log=logs.append)
    assert cached and s.is_valid() and "completed meanwhile" in logs[-1]
    assert sorted(p.name for p in (tmp_path / "main" / "s").iterdir()) == [f".{s.key}.lock", s.key]


def test_failed_compute_leaves_no_temporary_folder(tmp_path):
    def boom(out, work):
        (work / "resume.pt").write_bytes(b"progress")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        run_stage(tmp_path, "s", {"p": 1}, boom, log=lambda m: None)
    key = cache_key({"p": 1})
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [f".{key}.lock", f"{key}.work"]
    assert (tmp_path / "s" / f"{key}.work" / "resume.pt").read_bytes() == b"progress"  # kept for resuming
