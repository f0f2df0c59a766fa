import json

import numpy as np
import pytest

from clap_lib.cache import RECIPE_VERSION, Stage, cache_key, run_stage
from clap_lib.io import atomic_json, atomic_npy, atomic_write


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
    data = bytearray((s.dir / "a.npy").read_bytes()); data[-1] ^= 0xFF
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
