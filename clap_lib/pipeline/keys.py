"""What each stage's cache key is built from: the config fields a stage reads (`ARCH_FIELDS`, `CLAP_FIELDS`, ...) and
the payload of every stage (tests/test_stage_keys.py pins them). A field that changes a result is declared here."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from clap_lib.config.experiment import AudioConfig, ExperimentConfig, WeightSource, config_payload, parse_source
from clap_lib.io import file_sha256
from clap_lib.models import backbones
from clap_lib.pipeline.cache import cache_key
from clap_lib.pipeline.evaluation import STATS_VERSION

#: architecture fields of each backbone (what `backbones.spec(name).random_init` reads)
ARCH_FIELDS = {"cnn14": ("backbone", "width", "cnn_dropout", "cnn_fc_dropout", "audio.n_mels"), "crnn": ("backbone",)}


SPLIT_FIELDS = ("split_seed", "per_category", "target_classes", "swap_split")


CLAP_FIELDS = (
    "seed",
    "d_embed",
    "text_model",
    "text_max_tokens",
    "expected_vocab_size",
    "captions",
    "captions_per_clip",
    "clap",
    "topo_k_min",
    "topo_k_max",
    "topo_n_perm",
    *SPLIT_FIELDS,
)


TEXT_FIELDS = ("text_model", "text_max_tokens", "expected_vocab_size")


def _pick(cfg: ExperimentConfig, names) -> dict:
    out = {}
    for name in names:
        v = cfg
        for part in name.split("."):
            v = getattr(v, part)
        out[name] = asdict(v) if hasattr(v, "__dataclass_fields__") else v
    return out


def weights_fingerprint(cfg: ExperimentConfig, src: WeightSource) -> str | None:
    """Content hash of a published weights file (a changed file is a new key); None for random / training only."""
    if src.file is None:
        return None
    spec = backbones.spec(cfg.backbone)
    return file_sha256(spec.weights_file(src.file))[:16]


def level_source(cfg: ExperimentConfig, level: str) -> tuple[str, WeightSource]:
    """(source text, parsed) of a pretraining level or of an audit reference ("reference/<name>")."""
    if level.startswith("reference/"):
        text = next(r for r in cfg.reference_weights if reference_name(r) == level)
        return text, parse_source(text, "reference_weights")
    return getattr(cfg.weights, level), cfg.weights.source(level)


def reference_name(source_text: str) -> str:
    src = parse_source(source_text, "reference_weights")
    return (
        "reference/"
        + (Path(src.file).stem if src.file else "random")
        + (f"+{src.train}" if src.train else "")
        + (f"+T{src.t_fraction:g}" if src.t_fraction is not None else "")
    )


def features_payload(fingerprint: str, audio: AudioConfig) -> dict:
    return {"data": fingerprint, "audio": asdict(audio)}


def backbone_payload(cfg: ExperimentConfig, level: str, features_key: str) -> dict:
    text, src = level_source(cfg, level)
    names = [*ARCH_FIELDS[cfg.backbone], "reference_weights" if level.startswith("reference/") else f"weights.{level}"]
    if src.train is not None or src.file is None:
        names.append("seed")  # random init and training here are seeded
    if src.train is not None:
        names.append("pretrain")
        if src.train == "background":
            names += SPLIT_FIELDS
    if src.file is not None and src.train is None:
        names.append("keep_published_batchnorm")
    if not (src.file is not None and src.train is None and cfg.keep_published_batchnorm):
        names.append("bn_calibration_clips")  # the BatchNorm statistics are re-estimated on the training clips
    return {
        "level": level,
        "source": text,
        "features": features_key,
        "fields": _pick(cfg, names),
        "weights_file": weights_fingerprint(cfg, src),
    }


def clap_payload(
    cfg: ExperimentConfig, pretraining: str, training: str, features_key: str, backbone_key: str, pairs_fingerprint: str
) -> dict:
    return {
        "features": features_key,
        "backbone": backbone_key,
        "pretraining": pretraining,
        "training": training,
        "pairs": pairs_fingerprint,
        "fields": _pick(cfg, [*ARCH_FIELDS[cfg.backbone], *CLAP_FIELDS]),
    }


def grid_payload(cfg: ExperimentConfig, run_keys: dict[str, str], backbone_keys: dict[str, str]) -> dict:
    return {"config": config_payload(cfg), "runs": run_keys, "backbones": backbone_keys, "stats": STATS_VERSION}


def stage_payloads(cfg: ExperimentConfig, data_fp: str, pairs_fp: dict[str, str] | None = None) -> dict[str, dict]:
    """Every stage's payload for `cfg` (an ESC-50-sized profile) without running anything (tests check which
    fields move which keys)."""
    pairs_fp = pairs_fp or {t: f"pairs-{t}" for t in cfg.trainings}  # stands for training_pairs' fingerprint
    out = {"features": features_payload(data_fp, cfg.audio)}
    f_key = cache_key(out["features"])
    bb_keys = {}
    for p in cfg.pretrainings:
        out[f"backbone/{p}"] = backbone_payload(cfg, p, f_key)
        bb_keys[p] = cache_key(out[f"backbone/{p}"])
    for r in cfg.reference_weights:
        out[f"backbone/{reference_name(r)}"] = backbone_payload(cfg, reference_name(r), f_key)
        bb_keys[reference_name(r)] = cache_key(out[f"backbone/{reference_name(r)}"])
    runs = {}
    for p in cfg.pretrainings:
        for t in cfg.trainings:
            out[f"clap/{p}/{t}"] = clap_payload(cfg, p, t, f_key, bb_keys[p], pairs_fp[t])
            runs[f"{p}/{t}"] = cache_key(out[f"clap/{p}/{t}"])
    out["grid"] = grid_payload(cfg, runs, bb_keys)
    return out
