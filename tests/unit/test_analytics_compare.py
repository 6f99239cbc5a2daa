"""Before/after comparison: real shifts are significant with intervals excluding zero; noise
is not."""

from __future__ import annotations

import random
from typing import Any

from accord.analytics.compare import _newcombe, compare
from accord.analytics.frame import EventLog, build

H = 3600.0


def _log(n: int, wait_h: float, rework_share: float, seed: int) -> EventLog:
    rng = random.Random(seed)
    cols: dict[str, list[Any]] = {k: [] for k in ("case", "activity", "ts", "team")}

    def add(case: str, act: str, t: float, team: str) -> None:
        for k, v in zip(cols, (case, act, t, team), strict=True):
            cols[k].append(v)

    for i in range(n):
        c, t = f"c{i}", i * 24 * H
        add(c, "request", t, "sales")
        t += rng.expovariate(1 / (wait_h * H))
        add(c, "review", t, "legal")
        if rng.random() < rework_share:
            t += H
            add(c, "request", t, "sales")
            t += rng.expovariate(1 / (wait_h * H))
            add(c, "review", t, "legal")
        add(c, "ship", t + H, "ops")
    return build(cols, source=f"log{seed}", fmt="test")


def test_a_real_improvement_is_significant() -> None:
    before = _log(300, wait_h=8, rework_share=0.3, seed=1)
    after = _log(300, wait_h=3, rework_share=0.05, seed=2)
    r = compare(before, after)
    m = {x["metric"]: x for x in r["metrics"]}
    d = m["duration_s"]
    assert d["significant"] and d["better"] == "b"
    assert d["ci95"][1] < 0 and d["effect_size"] < -0.3 and d["magnitude"] in ("medium", "large")
    rw = m["rework"]
    assert rw["significant"] and rw["better"] == "b" and rw["ci95"][1] < 0
    assert rw["a"]["rate"] > rw["b"]["rate"]
    assert {"duration_s", "rework"} <= set(r["significant"])
    assert all(x["p_adjusted"] >= x["p_value"] for x in r["metrics"])


def test_the_same_process_twice_shows_no_difference() -> None:
    r = compare(_log(200, 5, 0.1, seed=3), _log(200, 5, 0.1, seed=4))
    assert r["significant"] == []
    for x in r["metrics"]:
        assert x["better"] is None
        assert x["ci95"][0] <= x["difference"] <= x["ci95"][1]


def test_newcombe_interval_matches_the_published_example() -> None:
    # Newcombe (1998), example (a): 56/70 against 48/80, difference 0.2000, CI 0.0524 .. 0.3339
    lo, hi = _newcombe(48, 80, 56, 70)
    assert round(lo, 4) == 0.0524 and round(hi, 4) == 0.3339
