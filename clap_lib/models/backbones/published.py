"""Reading a published weights file before it is loaded into its network: the registered SHA-256 prefix, a readable
torch state dict, and a 2-D classifier head (whose rows give the number of labels). Every failure names the file."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch

from clap_lib.data.paths import shared_data_dir
from clap_lib.io import file_sha256


def read_published_state(path: Path, registered: Mapping[str, str], head_key: str, what: str, verify: bool) -> dict:
    """The state dict in `path`. `registered`: file name -> SHA-256 prefix of the published files; a file of a
    registered name must match it unless `verify` is False. `what` names the network in messages ("a GPVAD CRNN")."""
    prefix = registered.get(path.name)
    if verify and prefix is not None and not (digest := file_sha256(path)).startswith(prefix):
        raise ValueError(
            f"{path}: SHA-256 {digest[:8]}... is not the published {path.name} ({prefix}...): a different or damaged file"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated / not a torch file: several exception types
        raise ValueError(f"{path} is not a readable torch state dict: {type(e).__name__}: {e}") from e
    head = state.get(head_key) if isinstance(state, dict) else None
    if not isinstance(head, torch.Tensor) or head.ndim != 2:
        keys = list(state)[:5] if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"{path} is not {what} state dict (no 2-D `{head_key}`; starts with {keys})")
    return state


def weights_folder(path: str | Path | None, env: str, shared_name: str) -> tuple[Path | None, list[str]]:
    """The folder of published files: `path`, else `$env`, else `<shared data>/<shared_name>`; (None, what was
    tried) when none exists. An explicit wrong `path` is not a cue to look elsewhere."""
    tried = []
    for cand, why in (
        (path, "parameter"),
        (os.environ.get(env), f"${env}"),
        (shared_data_dir() and shared_data_dir() / shared_name, "shared data folder"),
    ):
        if cand in (None, ""):
            continue
        cand = Path(cand)
        tried.append(f"{cand} ({why})")
        if cand.is_dir():
            return cand, tried
        if why == "parameter":
            break
    return None, tried
