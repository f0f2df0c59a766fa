"""The one parser of `key=value` settings (`--set`, papermill parameters, `--seeds`): text to a field's declared
type (no eval), dotted names into the frozen sections, and back (`format_value`)."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import replace
from fractions import Fraction
from typing import Any

from clap_lib.config.experiment import PROFILES, ExperimentConfig

TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes"), ("false", "0", "no")


def parse_bool(text: Any, name: str) -> bool:
    """Exactly true/false/1/0/yes/no in any case (papermill's `-p x false` arrives as the string "false")."""
    if isinstance(text, bool):
        return text
    t = str(text).strip().lower()
    if t in TRUE_WORDS:
        return True
    if t in FALSE_WORDS:
        return False
    raise ValueError(f"{name} must be one of true/false/1/0/yes/no, got {text!r}")


def parse_value(hint: Any, text: Any, name: str) -> Any:
    """Turn the text of `name=text` into a value of the field's declared type (no eval)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", typing.Union)):
        inner = [a for a in args if a is not type(None)]
        if type(None) in args and (text is None or str(text).strip().lower() in ("none", "null", "")):
            return None
        return parse_value(inner[0], text, name)
    if origin is tuple:
        item = args[0] if args else str
        items = text if isinstance(text, (list, tuple)) else [s.strip() for s in str(text).split(",") if s.strip()]
        return tuple(parse_value(item, s, name) for s in items)
    if hint is bool:
        return parse_bool(text, name)
    if hint is int:
        if isinstance(text, bool):
            raise ValueError(f"{name} must be an integer, got {text!r}")
        if isinstance(text, int):
            return text
        try:
            return int(str(text).strip())
        except ValueError:
            raise ValueError(f"{name} must be an integer, got {text!r}") from None
    if hint is float:
        if isinstance(text, (int, float)) and not isinstance(text, bool):
            return float(text)
        try:
            return float(Fraction(str(text).strip())) if "/" in str(text) else float(str(text).strip())
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"{name} must be a number (e.g. 0.25 or 1/6), got {text!r}") from None
    if hint is str:
        return str(text).strip()
    raise ValueError(f"{name}: cannot set a field of type {hint!r} from text")


def _hints(obj) -> dict[str, Any]:
    return typing.get_type_hints(type(obj))


def apply_overrides(cfg: ExperimentConfig, overrides: dict[str, Any]) -> ExperimentConfig:
    """Set fields by dotted name, e.g. {'width': '0.25', 'clap.frozen_epochs': '10', 'weights.clean': 'random'};
    the result is validated, so a bad value stops before any work."""
    for key, text in overrides.items():
        if key.strip() == "profile":
            if str(text).strip() == cfg.profile:
                continue
            raise ValueError(
                f"unknown parameter 'profile' for --set: a profile sets many fields at once; choose it "
                f"with --profile (allowed: {', '.join(PROFILES)}), got profile={text!r}"
            )
        parts = key.strip().split(".")
        obj, chain = cfg, []
        for depth, part in enumerate(parts):
            fields = {f.name for f in dataclasses.fields(obj)}
            if part not in fields:
                scope = ".".join(parts[:depth])
                raise ValueError(
                    f"unknown parameter {key!r}; allowed{' in ' + scope if scope else ''}: {', '.join(sorted(fields))}"
                )
            chain.append((obj, part))
            value = getattr(obj, part)
            if depth < len(parts) - 1:
                if not dataclasses.is_dataclass(value):
                    raise ValueError(f"unknown parameter {key!r}: {'.'.join(parts[: depth + 1])} has no fields")
                obj = value
        owner, last = chain[-1]
        if dataclasses.is_dataclass(getattr(owner, last)):
            raise ValueError(
                f"{key} is a section; set one of its fields, e.g. {key}."
                f"{dataclasses.fields(getattr(owner, last))[0].name}=..."
            )
        new = parse_value(_hints(owner)[last], text, key)
        for owner, part in reversed(chain):
            new = replace(owner, **{part: new})
        cfg = new
    cfg.validate()
    return cfg


def parse_sets(items: list[str]) -> dict[str, str]:
    """{key: value} of `key=value` items; a key given twice with different values is an error naming both."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set expects key=value, got {item!r}")
        k, v = item.split("=", 1)
        k, v = k.strip(), v.strip()
        if k in out and out[k] != v:
            raise ValueError(f"{k} is set twice, to {out[k]!r} and to {v!r}; give it once")
        out[k] = v
    return out


def parse_seeds(text: str | None) -> tuple[int, ...]:
    """'0,1,2' -> (0, 1, 2); a bad entry is named."""
    if text is None or not str(text).strip():
        return ()
    out = []
    for s in str(text).split(","):
        s = s.strip()
        if not s:  # "," or "0,,1": an empty entry is a typo, not "no seeds"
            raise ValueError(f"--seeds expects comma-separated integers, e.g. 0,1,2; got an empty entry in {text!r}")
        try:
            v = int(s)
        except ValueError:
            raise ValueError(f"--seeds expects comma-separated integers, e.g. 0,1,2; got {s!r} in {text!r}") from None
        if not 0 <= v < 2**32:
            raise ValueError(f"--seeds: seed {v} outside 0..2**32-1")
        out.append(v)
    if len(set(out)) != len(out):
        raise ValueError(f"--seeds lists a seed twice: {text!r}")
    return tuple(out)
