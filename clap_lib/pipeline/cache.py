"""Stage cache: each stage's outputs live in `<root>/<stage>/<key>/`, where key = hash of everything that
made them (the stage's full config, upstream keys, the recipe version, the input data's fingerprint).

A stage directory is valid only if its `manifest.json` exists and every file it lists has the recorded
size and SHA-256. The directory is built under a temporary name and renamed when complete, so an
interrupted or half-written stage is never read as valid; an invalid one is recomputed.

Several processes may share one artifacts folder: a stage is computed under a per-stage file lock
(`<stage>/.<key>.lock`), so a second run of the same stage waits and then reuses the first one's result, and
only the lock holder touches the stage's temporary folder and its resumable work dir (`<key>.work`).
Temporary folders are named `.<key>.tmp-<host>-<pid>`; those left by dead processes of this host are removed.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from filelock import FileLock, Timeout

from clap_lib.io import _jsonable, atomic_json, file_sha256

__all__ = ["RECIPE_VERSION", "cache_key", "Stage", "stage_at", "check_stage_dir", "clean_orphans", "run_stage"]

# Bump when a change to the code changes what a stage computes (part of every cache key).
# 2026-12-01.2: one pipeline (backbone stages, one trainer, clip-level validation split, S with chance);
# 2026-12-02.1: CLAP projectors seeded by cfg.seed in every profile (CNN14's random init reseeded them with 0)
RECIPE_VERSION = "2026-12-02.1"


def cache_key(payload: Any) -> str:
    blob = json.dumps({"recipe": RECIPE_VERSION, "payload": payload}, sort_keys=True, default=_jsonable)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _sha256(path: Path) -> str:
    return file_sha256(path)


def _manifest_problem(d: Path) -> str | None:
    """What makes stage folder `d` invalid (naming the bad file), or None when it is complete and intact."""
    manifest = d / "manifest.json"
    if not manifest.is_file():
        return f"no manifest ({manifest})"
    try:
        files = json.loads(manifest.read_text())["files"]
        items = [(rel, int(meta["size"]), str(meta["sha256"])) for rel, meta in files.items()]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as e:
        return f"unreadable manifest {manifest} ({type(e).__name__}: {e})"
    for rel, size, digest in items:
        p = d / rel
        if not p.is_file():
            return f"missing file {p} (listed in {manifest})"
        if p.stat().st_size != size:
            return f"corrupt file {p}: {p.stat().st_size} bytes, manifest says {size}"
        if _sha256(p) != digest:
            return f"corrupt file {p}: SHA-256 differs from the manifest"
    return None


@dataclass(frozen=True)
class Stage:
    root: Path
    name: str
    key: str

    @property
    def dir(self) -> Path:
        return self.root / self.name / self.key

    @property
    def rel(self) -> str:
        """The stage folder relative to the artifacts root (`name/key`): store this, not `dir`, so that a copied
        or moved artifacts folder still resolves (:func:`stage_at`)."""
        return f"{self.name}/{self.key}"

    @property
    def work_dir(self) -> Path:
        """Scratch space kept across interruptions (resumable checkpoints live here); only the holder of the
        stage's lock uses it."""
        return self.root / self.name / f"{self.key}.work"

    @property
    def lock_path(self) -> Path:
        return self.root / self.name / f".{self.key}.lock"

    def is_valid(self) -> bool:
        return _manifest_problem(self.dir) is None

    def manifest(self) -> dict:
        return json.loads((self.dir / "manifest.json").read_text())


_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def stage_at(root: str | Path, rel: str | Path) -> Stage:
    """The Stage at `rel` (as given by `Stage.rel`, `name/key`) under the artifacts folder `root`."""
    parts = PurePosixPath(str(rel).replace("\\", "/")).parts
    if len(parts) != 2 or not all(_PART.fullmatch(p) and p not in (".", "..") for p in parts):
        raise ValueError(
            f"not a stage path relative to the artifacts root: {str(rel)!r}; expected "
            f"'<stage>/<key>' as given by Stage.rel, e.g. 'grid/0123abcd4567ef89'"
        )
    return Stage(Path(root), parts[0], parts[1])


def check_stage_dir(path: str | Path) -> Stage:
    """The Stage of the folder `<root>/<name>/<key>` if it is complete and intact (what `run_stage` requires
    before reusing it); else ValueError naming the missing or corrupt file. For readers such as `show`."""
    d = Path(path)
    if not d.is_dir():
        raise ValueError(f"stage folder not found: {d}")
    problem = _manifest_problem(d)
    if problem is not None:
        raise ValueError(f"invalid stage {d}: {problem}; rerun `python -m clap_lib run` to recompute it")
    man = json.loads((d / "manifest.json").read_text())
    if (man.get("stage"), man.get("key")) != (d.parent.name, d.name):
        raise ValueError(
            f"invalid stage {d}: its manifest {d / 'manifest.json'} describes "
            f"{man.get('stage')}/{man.get('key')}, not {d.parent.name}/{d.name}"
        )
    return Stage(d.parent.parent, d.parent.name, d.name)


_TMP = re.compile(r"\.(?P<key>[^.]+)\.tmp-(?:(?P<host>.+)-)?(?P<pid>\d+)")


def _tmp_name(key: str) -> str:
    return f".{key}.tmp-{socket.gethostname()}-{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def clean_orphans(folder: str | Path, log: Callable[[str], None] = print) -> list[Path]:
    """Remove the temporary stage folders `.<key>.tmp-<host>-<pid>` in `folder` (one stage name's folder, e.g.
    `artifacts/clap`) whose process is dead on this host; a folder of a live pid or another host is kept (names
    without a host, from older versions, count as this host's). Returns the removed paths."""
    folder, host, removed = Path(folder), socket.gethostname(), []
    if not folder.is_dir():
        return removed
    for p in sorted(folder.iterdir()):
        m = _TMP.fullmatch(p.name)
        if not m or not p.is_dir() or (m["host"] is not None and m["host"] != host) or _pid_alive(int(m["pid"])):
            continue
        shutil.rmtree(p, ignore_errors=True)  # another process may be removing the same orphan
        log(f"[cache] removed {p}, left by dead process {m['pid']}")
        removed.append(p)
    return removed


def _acquire(lock: FileLock, stage: Stage, log: Callable[[str], None]) -> None:
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log(f"[cache] {stage.rel}: another process is computing it, waiting for {stage.lock_path}")
        lock.acquire()


def run_stage(
    root: Path, name: str, payload: Any, compute: Callable[[Path, Path], dict], log: Callable[[str], None] = print
) -> tuple[Stage, bool]:
    """Return (stage, was_cached). `compute(out_dir, work_dir)` writes files into out_dir and returns info
    (timings, counts) for the manifest. Safe to call from several processes on one root: compute runs in at
    most one of them at a time, and the others reuse its result."""
    stage = Stage(Path(root), name, cache_key(payload))
    if stage.is_valid():
        log(f"[cache] {name}/{stage.key}: reusing")
        return stage, True
    (stage.root / name).mkdir(parents=True, exist_ok=True)
    clean_orphans(stage.root / name, log)
    lock = FileLock(stage.lock_path)
    _acquire(lock, stage, log)
    try:
        if stage.is_valid():  # computed by the process we waited for
            log(f"[cache] {name}/{stage.key}: reusing (computed by another process)")
            return stage, True
        return stage, _compute_locked(stage, payload, compute, log)
    finally:
        lock.release()


def _compute_locked(
    stage: Stage, payload: Any, compute: Callable[[Path, Path], dict], log: Callable[[str], None]
) -> bool:
    """Build the stage (caller holds its lock); returns was_cached: True only when a writer outside the lock
    completed it meanwhile."""
    name = stage.name
    if stage.dir.exists():
        log(f"[cache] {name}/{stage.key}: incomplete or corrupt ({_manifest_problem(stage.dir)}), recomputing")
        shutil.rmtree(stage.dir)
    tmp = stage.root / name / _tmp_name(stage.key)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    stage.work_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    try:
        info = compute(tmp, stage.work_dir)
        files = {
            str(p.relative_to(tmp)): {"size": p.stat().st_size, "sha256": _sha256(p)}
            for p in sorted(tmp.rglob("*"))
            if p.is_file()
        }
        atomic_json(
            {
                "stage": name,
                "key": stage.key,
                "recipe": RECIPE_VERSION,
                "payload": payload,
                "info": info,
                "seconds": time.time() - t0,
                "files": files,
            },
            tmp / "manifest.json",
        )
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # resumable progress lives in work_dir, not here
        raise
    try:
        os.replace(tmp, stage.dir)
    except OSError as e:
        # a writer outside the lock (another host without working locks, an older version) got there first
        if e.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not stage.is_valid():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(stage.work_dir, ignore_errors=True)
        log(f"[cache] {name}/{stage.key}: completed meanwhile by another process, using that one")
        return True
    shutil.rmtree(stage.work_dir, ignore_errors=True)
    log(f"[cache] {name}/{stage.key}: computed in {time.time() - t0:.1f} s")
    return False
