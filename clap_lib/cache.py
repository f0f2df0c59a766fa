"""Stage cache: each stage's outputs live in `<root>/<stage>/<key>/`, where key = hash of everything that
made them (the stage's full config, upstream keys, the recipe version, the input data's fingerprint).

A stage directory is valid only if its `manifest.json` exists and every file it lists has the recorded
size and SHA-256. The directory is built under a temporary name and renamed when complete, so an
interrupted or half-written stage is never read as valid; an invalid one is recomputed.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .io import _jsonable, atomic_json

# Bump when a change to the code changes what a stage computes (part of every cache key).
RECIPE_VERSION = "2026-11-25.2"  # .2: BatchNorm calibration before CLAP training


def cache_key(payload: Any) -> str:
    blob = json.dumps({"recipe": RECIPE_VERSION, "payload": payload}, sort_keys=True, default=_jsonable)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Stage:
    root: Path
    name: str
    key: str

    @property
    def dir(self) -> Path:
        return self.root / self.name / self.key

    @property
    def work_dir(self) -> Path:
        """Scratch space kept across interruptions (resumable checkpoints live here)."""
        return self.root / self.name / f"{self.key}.work"

    def is_valid(self) -> bool:
        manifest = self.dir / "manifest.json"
        if not manifest.is_file():
            return False
        try:
            files = json.loads(manifest.read_text())["files"]
        except (json.JSONDecodeError, KeyError):
            return False
        for rel, meta in files.items():
            p = self.dir / rel
            if not p.is_file() or p.stat().st_size != meta["size"] or _sha256(p) != meta["sha256"]:
                return False
        return True

    def manifest(self) -> dict:
        return json.loads((self.dir / "manifest.json").read_text())


def run_stage(root: Path, name: str, payload: Any, compute: Callable[[Path, Path], dict],
              log: Callable[[str], None] = print) -> tuple[Stage, bool]:
    """Return (stage, was_cached). `compute(out_dir, work_dir)` writes files into out_dir and returns info
    (timings, counts) for the manifest."""
    stage = Stage(Path(root), name, cache_key(payload))
    if stage.is_valid():
        log(f"[cache] {name}/{stage.key}: reusing")
        return stage, True
    if stage.dir.exists():
        log(f"[cache] {name}/{stage.key}: incomplete or corrupt, recomputing")
        shutil.rmtree(stage.dir)
    tmp = stage.root / name / f".{stage.key}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    stage.work_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    info = compute(tmp, stage.work_dir)
    files = {str(p.relative_to(tmp)): {"size": p.stat().st_size, "sha256": _sha256(p)}
             for p in sorted(tmp.rglob("*")) if p.is_file()}
    atomic_json({"stage": name, "key": stage.key, "recipe": RECIPE_VERSION, "payload": payload,
                 "info": info, "seconds": time.time() - t0, "files": files}, tmp / "manifest.json")
    os.replace(tmp, stage.dir)
    shutil.rmtree(stage.work_dir, ignore_errors=True)
    log(f"[cache] {name}/{stage.key}: computed in {time.time() - t0:.1f} s")
    return stage, False
