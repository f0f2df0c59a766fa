"""The ladder of backbones (issue 21): is zero-shot accuracy explained by what the backbone learned, across networks
of one architecture whose label exposure is known?

* :func:`ladder_sources` -- the networks of the ladder as weight sources; :func:`exposure_of` -- the label exposure
  of a weight source (published file, random init, training here, the pretraining dose), as a category, the dose g
  and two numeric codes.
* :func:`ladder_correlation` -- accuracy against separability across networks: Pearson and Spearman r of the
  network means, with percentile intervals of a two-level bootstrap (networks drawn with replacement, then each
  drawn network's seeds drawn with replacement), since seeds of one network are not independent points.
* :func:`exposure_regression` -- mediation: OLS ``accuracy ~ separability + exposure`` (statsmodels) on the
  network means, the exposure coefficient(s) with their t intervals, and the F-test of exposure beyond
  separability (nested models).
* :func:`ranking_tau` -- the audit's blind ranking of the networks against their known exposure: Kendall's tau-b
  with a permutation p (every permutation when there are at most `n_perm` of them, else a seeded Monte-Carlo
  sample), which stays exact with the ties the exposure codes have; :func:`audit_ranking` puts the networks in the
  audit's order beside their exposure.

Every function takes a plain table, one row per (network, seed), and is pure.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from clap_lib.analysis.uncertainty import Interval
from clap_lib.config.experiment import KNOWN_WEIGHTS, parse_source
from clap_lib.config.profiles import LADDER_DOSE_STARTS, LADDER_DOSES

__all__ = [
    "EXPOSURES",
    "Exposure",
    "ExposureRegression",
    "LadderCorrelation",
    "RankingTau",
    "audit_ranking",
    "exposure_of",
    "exposure_regression",
    "hierarchical_draw",
    "kendall_tau_b",
    "ladder_correlation",
    "ladder_sources",
    "ranking_tau",
]

#: label exposure of a network's training, least first
EXPOSURES = ("none", "speech", "esc50", "audioset_527")


@dataclass(frozen=True)
class Exposure:
    """What labels a network was trained with.

    kind: ``none`` (random init), ``speech`` (speech / non-speech or speech / noise targets only), ``esc50``
    (trained here on ESC-50 folds 1-4: the background classes B plus the dose g of the T classes' clips; ``all``
    is g = 1), ``audioset_527`` (every AudioSet label, which name most ESC-50 classes).
    """

    kind: str
    g: float | None = None  # the dose of T clips (kind esc50 only)

    def __post_init__(self) -> None:
        if self.kind not in EXPOSURES:
            raise ValueError(f"unknown exposure {self.kind!r}; allowed: {', '.join(EXPOSURES)}")
        if (self.kind == "esc50") != (self.g is not None) or (self.g is not None and not 0 <= self.g <= 1):
            raise ValueError(f"the dose g is given for (and only for) exposure esc50, in [0, 1]; got {self!r}")

    @property
    def t_labels(self) -> float:
        """Share of the target classes' labels in the training: 0 (none, speech), g (the dose), 1 (AudioSet's
        527 labels name the T classes)."""
        return {"none": 0.0, "speech": 0.0, "audioset_527": 1.0}.get(self.kind, self.g)

    @property
    def rank(self) -> float:
        """The ordinal code the blind audit is ranked against: none 0 < speech 1 < ESC-50 B labels 2 (+ g for
        the T dose) ; AudioSet's 527 labels 3, tied with every ESC-50 label (g = 1)."""
        return {"none": 0.0, "speech": 1.0, "audioset_527": 3.0}.get(self.kind, 2.0 + (self.g or 0.0))

    @property
    def label(self) -> str:
        return f"ESC-50 B + {self.g:g} of T" if self.kind == "esc50" else self.kind


def exposure_of(source_text: str, published: Mapping[str, str]) -> Exposure:
    """The exposure of a weight source (config syntax: ``random``, ``file:NAME``, ``train:all``,
    ``[file:NAME+]train:background[+T:G]``). Training here dominates a published start (its labels are ESC-50's);
    a published file must be in `published` (name -> exposure kind: the backbone registry's
    ``weights_info(name)["exposure"]``); a user's path is refused, its exposure is unknown."""
    src = parse_source(source_text, "ladder source")
    if src.train == "all":
        return Exposure("esc50", 1.0)
    if src.train == "background":
        return Exposure("esc50", src.t_fraction or 0.0)
    if src.train is not None:
        raise ValueError(f"{source_text!r}: the ladder covers ESC-50-sized profiles only (train:{src.train})")
    if src.file is None:
        return Exposure("none")
    if src.file not in published:
        raise ValueError(f"{source_text!r}: no registered label exposure for {src.file!r}")
    return Exposure(published[src.file])


def ladder_sources(
    backbone: str = "crnn", doses: Sequence[float] = LADDER_DOSES, dose_starts: Sequence[str] = LADDER_DOSE_STARTS
) -> dict[str, str]:
    """Every network of the ladder of `backbone`, name -> weight source (config syntax): each of its published
    weights, the random init (one network, run at several seeds), and the pretraining dose from each start
    (``random`` or a published ``file:NAME`` the backbone knows; a start it does not know is skipped) at each g."""
    out = {name: f"file:{name}" for name in KNOWN_WEIGHTS[backbone]} | {"random": "random"}
    for start in dose_starts:
        if start != "random" and parse_source(start).file not in KNOWN_WEIGHTS[backbone]:
            continue  # a start another architecture does not have
        prefix = "" if start == "random" else f"{start}+"
        for g in doses:
            out[f"{parse_source(start).file or 'random'}+B+T{g:g}"] = f"{prefix}train:background+T:{g:g}"
    return out


# --- accuracy against separability, across networks -----------------------------------------------------------


def _groups(df: pd.DataFrame, network: str, cols: Sequence[str]) -> tuple[list[str], list[np.ndarray]]:
    missing = [c for c in (network, *cols) if c not in df.columns]
    if missing:
        raise ValueError(f"the ladder table has no column(s) {missing}; it has {list(df.columns)}")
    vals = df[list(cols)].to_numpy(float)
    if not np.isfinite(vals).all():
        bad = df.loc[~np.isfinite(vals).all(axis=1), network].unique()
        raise ValueError(f"non-finite {list(cols)} for network(s) {list(bad)[:5]}")
    names = list(pd.unique(df[network]))
    return names, [vals[(df[network] == n).to_numpy()] for n in names]


def hierarchical_draw(sizes: Sequence[int], rng: np.random.Generator) -> list[tuple[int, np.ndarray]]:
    """One two-level resample: len(sizes) networks drawn with replacement, then, for each drawn network, its
    sizes[k] rows drawn with replacement. Returns (network index, row positions) per drawn network."""
    picks = rng.integers(0, len(sizes), len(sizes))
    # sorted: one multiset of rows gives one mean to the last bit (a rank test must see the tie it is)
    return [(int(k), np.sort(rng.integers(0, sizes[k], sizes[k]))) for k in picks]


@dataclass(frozen=True)
class LadderCorrelation:
    pearson: Interval  # r of the network means, percentile interval of the two-level bootstrap
    spearman: Interval
    p_pearson: float  # scipy's p of the network means (t test / Spearman's t approximation)
    p_spearman: float
    n_networks: int
    n_rows: int
    n_boot: int  # resamples with a defined r (a draw of a single distinct network has none)


def ladder_correlation(
    df: pd.DataFrame,
    x: str = "separability",
    y: str = "accuracy",
    network: str = "network",
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> LadderCorrelation:
    """Pearson and Spearman r of `y` against `x` over the networks' means (one point per network, whatever its
    number of seeds), with two-level bootstrap intervals (:func:`hierarchical_draw`)."""
    names, groups = _groups(df, network, (x, y))
    if len(names) < 3:
        raise ValueError(f"a correlation across networks needs >= 3 networks, got {len(names)}")
    means = np.array([g.mean(axis=0) for g in groups])
    if np.ptp(means[:, 0]) == 0 or np.ptp(means[:, 1]) == 0:
        raise ValueError(f"{x if np.ptp(means[:, 0]) == 0 else y} is the same for every network: no correlation")
    pr, sr = stats.pearsonr(means[:, 0], means[:, 1]), stats.spearmanr(means[:, 0], means[:, 1])
    rng = np.random.default_rng(seed)
    sizes = [len(g) for g in groups]
    boot = []
    for _ in range(n_boot):
        m = np.array([groups[k][rows].mean(axis=0) for k, rows in hierarchical_draw(sizes, rng)])
        if np.ptp(m[:, 0]) > 0 and np.ptp(m[:, 1]) > 0:
            boot.append((np.corrcoef(m[:, 0], m[:, 1])[0, 1], stats.spearmanr(m[:, 0], m[:, 1]).statistic))
    b = np.array(boot).reshape(-1, 2)
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    lo_p, hi_p = np.percentile(b[:, 0], q) if len(b) else (np.nan, np.nan)
    lo_s, hi_s = np.percentile(b[:, 1], q) if len(b) else (np.nan, np.nan)
    return LadderCorrelation(
        Interval(float(pr.statistic), float(lo_p), float(hi_p), level),
        Interval(float(sr.statistic), float(lo_s), float(hi_s), level),
        float(pr.pvalue),
        float(sr.pvalue),
        len(names),
        len(df),
        len(b),
    )


# --- mediation: exposure beyond separability ---------------------------------------------------------------------


@dataclass(frozen=True)
class ExposureRegression:
    coefficients: pd.DataFrame  # term, coef, se, lo, hi, p (t based, statsmodels OLS)
    exposure_terms: tuple[str, ...]  # the rows of `coefficients` that are exposure
    r2_separability: float  # accuracy ~ separability
    r2_full: float  # accuracy ~ separability + exposure
    f: float  # F-test of the exposure term(s) beyond separability (nested OLS)
    p: float
    df_num: int
    n_networks: int
    level: float


def exposure_regression(
    df: pd.DataFrame,
    y: str = "accuracy",
    x: str = "separability",
    exposure: str = "exposure",
    network: str = "network",
    categorical: bool = False,
    reference: str | None = None,
    level: float = 0.95,
) -> ExposureRegression:
    """OLS of the network means: ``y ~ x + exposure``. `exposure` is numeric (e.g. :attr:`Exposure.t_labels`),
    or with `categorical` a label coded as treatment dummies against `reference` (default: the first in sorted
    order). Exposure must be constant within a network."""
    import statsmodels.formula.api as smf

    names, groups = _groups(df, network, (x, y))
    per_net = df.groupby(network, sort=False)[exposure]
    varying = [n for n, k in per_net.nunique(dropna=False).items() if k != 1]
    if varying:
        raise ValueError(f"exposure varies within network(s) {varying[:5]}")
    e = per_net.first().loc[names]
    data = pd.DataFrame(
        {
            "x": [g[:, 0].mean() for g in groups],
            "y": [g[:, 1].mean() for g in groups],
            "e": e.astype(str).to_numpy() if categorical else e.to_numpy(float),
        }
    )
    if categorical:
        ref = reference if reference is not None else min(data["e"].unique())
        if ref not in set(data["e"]):
            raise ValueError(f"reference exposure {ref!r} is not among {sorted(data['e'].unique())}")
        term = f"C(e, Treatment(reference={ref!r}))"
    else:
        term = "e"
    full = smf.ols(f"y ~ x + {term}", data).fit()
    if full.df_resid < 1:
        raise ValueError(
            f"{len(data)} networks leave no residual degree of freedom for {len(full.params)} coefficients"
        )
    reduced = smf.ols("y ~ x", data).fit()
    f, p, df_num = full.compare_f_test(reduced)
    ci = full.conf_int(1 - level)
    coefs = pd.DataFrame(
        {
            "term": full.params.index,
            "coef": full.params.to_numpy(),
            "se": full.bse.to_numpy(),
            "lo": ci[0].to_numpy(),
            "hi": ci[1].to_numpy(),
            "p": full.pvalues.to_numpy(),
        }
    )
    coefs["term"] = [x if t == "x" else exposure + t[len(term) :] if t.startswith(term) else t for t in coefs["term"]]
    return ExposureRegression(
        coefs,
        tuple(t for t in coefs["term"] if t.startswith(exposure)),
        float(reduced.rsquared),
        float(full.rsquared),
        float(f),
        float(p),
        int(df_num),
        len(data),
        level,
    )


# --- the audit's blind ranking against the known exposure ------------------------------------------------------


def _pair_signs(v: np.ndarray) -> np.ndarray:
    i, j = np.triu_indices(v.shape[-1], 1)
    return np.sign(v[..., i] - v[..., j])


def kendall_tau_b(a, b) -> float:
    """Kendall's tau-b, (concordant - discordant) / sqrt((n0 - ties_a)(n0 - ties_b)) over pairs."""
    sa, sb = _pair_signs(np.asarray(a, float)), _pair_signs(np.asarray(b, float))
    den = math.sqrt(np.count_nonzero(sa) * np.count_nonzero(sb))
    return float(sa @ sb / den) if den else float("nan")


@dataclass(frozen=True)
class RankingTau:
    tau: float  # Kendall tau-b of (score, exposure rank)
    p: float  # permutation p, two-sided: share of permutations with |tau| >= |observed|
    exact: bool  # every permutation enumerated
    n_permutations: int
    n: int


def ranking_tau(score, exposure_rank, n_perm: int = 10000, seed: int = 0) -> RankingTau:
    """Kendall tau-b between the audit's score of each network and its known exposure rank, with a permutation p
    (scores shuffled over networks: the null that the score says nothing about exposure). All n! permutations are
    scored when n! <= `n_perm`; else `n_perm` seeded ones, p = (hits + 1) / (n_perm + 1)."""
    s, r = np.asarray(score, float), np.asarray(exposure_rank, float)
    if s.shape != r.shape or s.ndim != 1 or len(s) < 3:
        raise ValueError(f"score and exposure_rank must be 1-D of one length >= 3, got {s.shape} and {r.shape}")
    if not (np.isfinite(s).all() and np.isfinite(r).all()):
        raise ValueError("score and exposure_rank must be finite")
    if np.ptp(s) == 0 or np.ptp(r) == 0:
        raise ValueError("a constant score or exposure rank has no ranking")
    sr = _pair_signs(r)
    den = math.sqrt(np.count_nonzero(_pair_signs(s)) * np.count_nonzero(sr))  # permuting s keeps its ties
    tau = float(_pair_signs(s) @ sr / den)
    exact = math.factorial(len(s)) <= n_perm
    rng = np.random.default_rng(seed)
    hits = total = 0
    if exact:
        perms = itertools.permutations(range(len(s)))
        chunks = iter(lambda: list(itertools.islice(perms, 5000)), [])
    else:
        chunks = (np.argsort(rng.random((min(5000, n_perm - k), len(s))), axis=1) for k in range(0, n_perm, 5000))
    for perm in chunks:
        t = _pair_signs(s[np.asarray(perm)]) @ sr / den
        hits += int(np.count_nonzero(np.abs(t) >= abs(tau) - 1e-12))
        total += len(t)
    p = hits / total if exact else (hits + 1) / (total + 1)
    return RankingTau(tau, float(p), exact, total, len(s))


def audit_ranking(
    scores: Mapping[str, float], exposures: Mapping[str, Exposure], n_perm: int = 10000, seed: int = 0
) -> tuple[pd.DataFrame, RankingTau]:
    """The networks ranked by the audit's blind score (e.g. the silhouette of x_a, clap_lib.analysis.audit), beside their
    known exposure, and :func:`ranking_tau` of the two."""
    missing = sorted(set(scores) ^ set(exposures))
    if missing:
        raise ValueError(f"scores and exposures must name the same networks; only in one of them: {missing[:5]}")
    names = list(scores)
    table = pd.DataFrame(
        {
            "network": names,
            "audit score": [float(scores[n]) for n in names],
            "exposure": [exposures[n].label for n in names],
            "exposure rank": [exposures[n].rank for n in names],
        }
    )
    table = table.sort_values("audit score", ascending=False, ignore_index=True)
    table.insert(1, "audit rank", np.arange(1, len(table) + 1))
    return table, ranking_tau(table["audit score"], table["exposure rank"], n_perm, seed)
