"""Before/after (or mode against mode) on the same measures, with the statistics to trust it.

Each measure is taken per case in both logs, then compared:

- a **duration** (case duration, handoff latency, waiting) is compared with the Mann-Whitney U
  test (no assumption of normality: process times are skewed); the effect size is Cliff's
  delta (from -1: every B case lower, to +1: every B case higher) and the difference of
  medians gets a 95% bootstrap confidence interval;
- a **rate** (cases with rework, with duplicated work) is compared with Fisher's exact test;
  the effect is the difference of proportions, with a 95% Newcombe (Wilson) interval;
- p-values are adjusted for the number of comparisons (Holm), and a difference is called
  significant when its adjusted p-value is below 0.05.

For every measure here lower is better, so ``better`` names the log that is significantly
lower, or is null.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
from scipy import stats  # type: ignore[import-untyped]

from accord.analytics import discovery, findings
from accord.analytics.frame import EventLog

ALPHA = 0.05
BOOT = 2000
MAX_BOOT_N = 20_000  # bootstrap on at most this many cases a side: the CI barely narrows past it


def per_case(log: EventLog) -> pl.DataFrame:
    """One row per case: duration_s, events, handoffs, handoff_latency_s, wait_s (mean),
    rework (0/1), duplication (0/1)."""
    cases = discovery.cases(log).select("case", "duration_s", "events")
    items = findings.work_items(log)
    hand = findings.handoffs(items)
    agg = items.group_by("case").agg(
        pl.col("wait_s").mean().alias("wait_s"),
        (pl.col("visit").max() > 1).cast(pl.Int8).alias("rework"),
    )
    dup = (
        items.filter(pl.col("who").is_not_null())
        .group_by("case", "activity")
        .agg(pl.col("who").n_unique().alias("n"))
        .group_by("case")
        .agg((pl.col("n").max() > 1).cast(pl.Int8).alias("duplication"))
    )
    h = hand.group_by("case").agg(
        pl.len().alias("handoffs"), pl.col("latency_s").mean().alias("handoff_latency_s")
    )
    return (
        cases.join(agg, on="case", how="left")
        .join(dup, on="case", how="left")
        .join(h, on="case", how="left")
        .with_columns(pl.col("duplication").fill_null(0), pl.col("handoffs").fill_null(0))
    )


MEASURES: tuple[tuple[str, str, str], ...] = (
    ("duration_s", "continuous", "case duration"),
    ("wait_s", "continuous", "mean wait per case"),
    ("handoff_latency_s", "continuous", "mean handoff latency per case"),
    ("handoffs", "continuous", "handoffs per case"),
    ("events", "continuous", "events per case"),
    ("rework", "rate", "cases with rework"),
    ("duplication", "rate", "cases with duplicated work"),
)


def compare(a: EventLog, b: EventLog, seed: int = 0) -> dict[str, Any]:
    """Compare log ``b`` against log ``a`` on every measure (see the module docstring)."""
    ca, cb = per_case(a), per_case(b)
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for column, kind, label in MEASURES:
        x = ca[column].drop_nulls().cast(pl.Float64).to_numpy()
        y = cb[column].drop_nulls().cast(pl.Float64).to_numpy()
        if len(x) < 2 or len(y) < 2:
            continue
        row = _continuous(x, y, rng) if kind == "continuous" else _rate(x, y)
        rows.append({"metric": column, "label": label, "kind": kind, **row})
    _holm(rows)
    for r in rows:
        r["significant"] = r["p_adjusted"] is not None and r["p_adjusted"] < ALPHA
        r["better"] = (("b" if r["difference"] < 0 else "a") if r["significant"] and
                       r["difference"] != 0 else None)  # fmt: skip
    return {
        "a": {"source": a.source, "cases": ca.height, "events": a.events},
        "b": {"source": b.source, "cases": cb.height, "events": b.events},
        "alpha": ALPHA,
        "metrics": rows,
        "significant": [r["metric"] for r in rows if r["significant"]],
    }


def _continuous(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
    u = stats.mannwhitneyu(y, x, alternative="two-sided")
    n = len(x) * len(y)
    delta = 2.0 * float(u.statistic) / n - 1.0  # Cliff's delta of B against A
    lo, hi = _boot_median_diff(x, y, rng)
    return {
        "a": {"n": len(x), "median": float(np.median(x)), "mean": float(np.mean(x))},
        "b": {"n": len(y), "median": float(np.median(y)), "mean": float(np.mean(y))},
        "difference": float(np.median(y) - np.median(x)),
        "difference_of": "medians (B - A)",
        "ci95": [lo, hi],
        "effect_size": delta,
        "effect": "Cliff's delta",
        "magnitude": _magnitude(abs(delta)),
        "test": "Mann-Whitney U",
        "p_value": float(u.pvalue),
    }


def _boot_median_diff(
    x: np.ndarray, y: np.ndarray, rng: np.random.Generator
) -> tuple[float, float]:
    x = x if len(x) <= MAX_BOOT_N else rng.choice(x, MAX_BOOT_N, replace=False)
    y = y if len(y) <= MAX_BOOT_N else rng.choice(y, MAX_BOOT_N, replace=False)
    bx = np.median(rng.choice(x, (BOOT, len(x))), axis=1)
    by = np.median(rng.choice(y, (BOOT, len(y))), axis=1)
    lo, hi = np.percentile(by - bx, [2.5, 97.5])
    return float(lo), float(hi)


def _rate(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    ka, na, kb, nb = int(x.sum()), len(x), int(y.sum()), len(y)
    p = stats.fisher_exact([[kb, nb - kb], [ka, na - ka]]).pvalue
    pa, pb = ka / na, kb / nb
    lo, hi = _newcombe(ka, na, kb, nb)
    return {
        "a": {"n": na, "rate": pa, "cases": ka},
        "b": {"n": nb, "rate": pb, "cases": kb},
        "difference": pb - pa,
        "difference_of": "proportions (B - A)",
        "ci95": [lo, hi],
        "effect_size": pb - pa,
        "effect": "risk difference",
        "magnitude": _magnitude(abs(pb - pa) * 2),
        "test": "Fisher's exact",
        "p_value": float(p),
    }


def _wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def _newcombe(ka: int, na: int, kb: int, nb: int) -> tuple[float, float]:
    """95% interval of pb - pa by Newcombe's hybrid score method (Wilson intervals)."""
    pa, pb = ka / na, kb / nb
    la, ua = _wilson(ka, na)
    lb, ub = _wilson(kb, nb)
    d = pb - pa
    return (
        d - math.sqrt((pb - lb) ** 2 + (ua - pa) ** 2),
        d + math.sqrt((ub - pb) ** 2 + (pa - la) ** 2),
    )


def _holm(rows: list[dict[str, Any]]) -> None:
    order = sorted(range(len(rows)), key=lambda i: rows[i]["p_value"])
    m = len(rows)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * rows[i]["p_value"]))
        rows[i]["p_adjusted"] = running


def _magnitude(d: float) -> str:
    """Romano et al.'s thresholds for Cliff's delta (0.147, 0.33, 0.474)."""
    if d < 0.147:
        return "negligible"
    if d < 0.33:
        return "small"
    if d < 0.474:
        return "medium"
    return "large"
