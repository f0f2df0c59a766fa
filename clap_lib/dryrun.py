"""`python -m clap_lib dry-run`: what a profile needs, found or missing, without training anything."""
from __future__ import annotations

from .config import ExperimentConfig
from .levels import PRETRAININGS


def dry_run(cfg: ExperimentConfig, esc50: str | None, data_root: str | None) -> int:
    """Print, per dataset and weight file the profile needs, what was found and what is missing; exit 1 if
    anything is missing."""
    from . import backbones
    from .datasets import default_roots, dry_run_report, format_dry_run

    roots = default_roots(data_root)
    if esc50:
        roots["esc50"] = esc50
    report = dry_run_report(roots)
    if cfg.profile != "paper":  # the ESC-50-sized profiles read ESC-50 (+ caption text) only
        report = {k: v for k, v in report.items() if k == "esc50" or (cfg.captions == "real" and k in
                                                                    ("clotho", "audiocaps"))}
    spec = backbones.spec(cfg.backbone)
    for level in PRETRAININGS:
        src = cfg.weights.source(level)
        if src.file is None:
            continue
        try:
            path = spec.resolve(src.file)
            report[f"weights {level}"] = {"found": True, "path": str(path)}
        except FileNotFoundError as e:
            report[f"weights {level}"] = {"found": False, "error": str(e)}
    print(f"profile {cfg.profile}: data check (nothing is trained)")
    print(format_dry_run(report))
    return 0 if all(r.get("found") for r in report.values()) else 1
