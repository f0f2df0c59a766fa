"""Command line: `python -m clap_lib run|show|config ...`."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import replace
from typing import Any

from .experiment import TABLE_METRICS, ExperimentConfig, config_payload, latest_grid, make_config, run_grid


def _coerce(field_type: Any, current: Any, text: str, name: str) -> Any:
    """Turn the text of `name=text` into the type of the field it sets."""
    if text.lower() in ("none", "null") and (current is None or "None" in str(field_type)):
        return None  # only where the field admits None: "none" is also a pretraining (pretrainings=none)
    if isinstance(current, tuple) or "tuple" in str(field_type):
        return tuple(s.strip() for s in text.split(",") if s.strip())
    if isinstance(current, bool) or field_type in (bool, "bool"):
        if text.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"{name} must be true or false, got {text!r}")
        return text.lower() in ("true", "1")
    if isinstance(current, int) or field_type in (int, "int"):
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{name} must be an integer, got {text!r}") from None
    if isinstance(current, float) or "float" in str(field_type):
        try:
            return float(eval(text, {"__builtins__": {}}, {})) if "/" in text else float(text)
        except Exception:
            raise ValueError(f"{name} must be a number, got {text!r}") from None
    return text


def apply_overrides(cfg: ExperimentConfig, overrides: dict[str, str]) -> ExperimentConfig:
    """Set fields by name, e.g. {'width': '0.25', 'clap.frozen_epochs': '10', 'target_classes': 'dog,rain'}."""
    for key, text in overrides.items():
        parts = key.split(".")
        if len(parts) > 2:
            raise ValueError(f"unknown parameter {key!r}")
        obj = cfg if len(parts) == 1 else getattr(cfg, parts[0], None)
        fields = {f.name: f for f in dataclasses.fields(obj)} if dataclasses.is_dataclass(obj) else {}
        if parts[-1] not in fields or (len(parts) == 2 and not dataclasses.is_dataclass(obj)):
            scope = parts[0] if len(parts) == 2 else None
            allowed = sorted(fields) if fields else [f.name for f in dataclasses.fields(cfg)]
            raise ValueError(f"unknown parameter {key!r}; allowed{' in ' + scope if scope else ''}: {', '.join(allowed)}")
        f = fields[parts[-1]]
        value = _coerce(f.type, getattr(obj, f.name), text, key)
        if len(parts) == 1:
            cfg = replace(cfg, **{f.name: value})
        else:
            cfg = replace(cfg, **{parts[0]: replace(obj, **{f.name: value})})
    cfg.validate()
    return cfg


def config_from_params(profile: str = "lab", seed: int = 0, split_seed: int = 0, target_classes: str = "",
                       swap_split: bool = False, width: float | None = None, overrides: str = "") -> ExperimentConfig:
    """The config a notebook's papermill parameters describe; bad values raise before any work.

    `target_classes` is comma-separated ("" = the seeded split); `overrides` is "key=value; key=value" in
    the `--set` syntax (e.g. "clap.frozen_epochs=10; pretrain.epochs=4").
    """
    sets: dict[str, str] = {"seed": str(seed), "split_seed": str(split_seed), "swap_split": str(bool(swap_split))}
    if target_classes:
        sets["target_classes"] = target_classes
    if width is not None:
        sets["width"] = str(width)
    sets.update(_parse_sets([s for s in overrides.replace("\n", ";").split(";") if s.strip()]))
    return apply_overrides(make_config(profile), sets)


def dry_run(cfg: ExperimentConfig, esc50: str | None, data_root: str | None) -> int:
    """Print, per dataset the profile needs, what was found and what is missing; exit 1 if anything is missing."""
    from .datasets import default_roots, dry_run_report, format_dry_run

    roots = default_roots(data_root)
    if esc50:
        roots["esc50"] = esc50
    report = dry_run_report(roots)
    if cfg.profile == "lab":  # the lab profile reads ESC-50 only
        report = {"esc50": report["esc50"]}
    print(f"profile {cfg.profile}: data check (nothing is trained)")
    print(format_dry_run(report))
    return 0 if all(r.get("found") for r in report.values()) else 1


def _parse_sets(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set expects key=value, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m clap_lib", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name, help_ in (("run", "run the 2 x 3 grid (cached stages are reused)"),
                        ("config", "print the resolved configuration and exit")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--profile", default="lab", help="lab (default, CPU scale) or paper")
        p.add_argument("--esc50", default=None, help="ESC-50 root (default: $CLAP_ESC50, then ../shared/data/esc50)")
        p.add_argument("--artifacts", default="artifacts", help="cache/output folder (default: artifacts)")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a parameter, e.g. --set width=0.25 --set clap.frozen_epochs=10")
        p.add_argument("--quiet", action="store_true")
        p.add_argument("--seeds", default=None, metavar="S1,S2,...",
                       help="repeat the grid over these training seeds and report mean / spread per combination")
        p.add_argument("--dry-run", action="store_true",
                       help="validate the data roots and print what was found / is missing; train nothing")
        p.add_argument("--data-root", default=None,
                       help="folder holding clotho/, audiocaps/, fsd50k/, macs/, audioset/ (default: $CLAP_<NAME>, "
                            "then ../shared/data)")
    sh = sub.add_parser("show", help="print the results table of the latest grid")
    sh.add_argument("--artifacts", default="artifacts")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "show":
            g = latest_grid(args.artifacts)
            print(g.results.to_string(index=False)); print(json.dumps(g.correlations, indent=2))
            return 0
        cfg = apply_overrides(make_config(args.profile), _parse_sets(args.set))
        if args.dry_run:
            return dry_run(cfg, args.esc50, args.data_root)
        if args.cmd == "config":
            print(json.dumps(config_payload(cfg), indent=2, default=str)); return 0
        if args.seeds:
            from .experiment import run_seeds
            from .uncertainty import seed_summary

            seeds = tuple(int(x) for x in args.seeds.split(",") if x.strip())
            per_seed = run_seeds(cfg, seeds, args.esc50, args.artifacts, not args.quiet, args.quiet)
            print(seed_summary(per_seed, metric_cols=list(TABLE_METRICS)).round(3).to_string(index=False))
            return 0
        g = run_grid(cfg, args.esc50, args.artifacts, progress=not args.quiet, quiet=args.quiet)
        cols = ["pretraining", "training", "accuracy", "sil_x_a", "sil_E_a", "topo_xa_Ea", "topo_xt_Et", "topo_Ea_Et"]
        print(g.results[cols].round(3).to_string(index=False))
        print(json.dumps(g.correlations, indent=2))
        return 0
    except (ValueError, FileNotFoundError, NotImplementedError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
