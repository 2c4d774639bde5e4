"""Accuracy of the adjusted score against a simulation with known truth (issue #3).

Simulates an organisation (a reporting tree), a realistic 360 assignment (1 manager,
3–5 peers mostly from the own team, 2–4 direct reports, sometimes an "other"), and
ratings with: ratee true scores per competency, item difficulty, rater leniency,
relationship leniency, rater scale use (extreme vs central tendency), halo, rater × ratee
impressions, item noise, rounding to 1–5 and N/A answers.

The truth of a ratee (per competency and overall) is the expected rating an average
rater would give: E[clip(round(latent))] under the impression and item noise, so that
raw means, the adjusted score and the oracle all aim at the same target on the scale.
The oracle knows every rater's true leniency and relationship shift and removes them
from the raw means (it does not know scale use or impressions): the ceiling for a
correction of rater bias.

Run: ``python benchmarks/scoring_accuracy.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scoring import Ratings, ScoringWarning, fit_rater_model

N_COMPETENCIES = 8
ITEMS_PER_COMPETENCY = 5
REL = {"self": 0, "manager": 1, "peer": 2, "direct_report": 3, "other": 4}


@dataclass(frozen=True)
class Scenario:
    name: str
    n_people: int = 3000
    leniency_sd: float = 0.35
    leniency_mean_by_rel: tuple[float, ...] = (0.3, -0.1, 0.05, 0.2, 0.0)
    scale_use_sd: float = 0.2  # log-SD of the rater's slope
    halo: float = 0.3  # mean share of the competency profile a rater flattens away
    impression_sd: float = 0.3  # rater × ratee, shared by all items
    noise_sd: float = 0.55  # item-level noise
    true_sd: float = 0.45
    competency_sd: float = 0.25
    na_rate: float = 0.05
    peers: tuple[int, int] = (3, 5)
    reports: tuple[int, int] = (2, 4)
    cross_team_peer: float = 0.25
    other_rate: float = 0.3
    closed_teams: bool = False
    extra: dict = field(default_factory=dict)


SCENARIOS = [
    Scenario(
        "no rater bias",
        leniency_sd=0.0,
        leniency_mean_by_rel=(0.0,) * 5,
        scale_use_sd=0.0,
        halo=0.0,
    ),
    Scenario("realistic"),
    Scenario("heavy leniency", leniency_sd=0.6, leniency_mean_by_rel=(0.5, 0.0, 0.3, 0.5, 0.2)),
    Scenario("sparse (4 raters)", peers=(2, 2), reports=(1, 1), other_rate=0.0),
    Scenario("closed teams", closed_teams=True),
]


def _org(n: int, rng: np.random.Generator) -> np.ndarray:
    """Manager of each person in a tree with 3–8 reports per manager (-1 for the top)."""
    manager = np.full(n, -1)
    queue, nxt = [0], 1
    while nxt < n:
        boss = queue.pop(0)
        k = int(rng.integers(3, 9))
        kids = list(range(nxt, min(n, nxt + k)))
        manager[kids] = boss
        queue.extend(kids)
        nxt += len(kids)
    return manager


def _assignments(sc: Scenario, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """(rater, ratee, relationship) triples; raters are the same people as ratees."""
    n = sc.n_people
    raters: list[int] = []
    ratees: list[int] = []
    rels: list[int] = []

    def add(r: int, e: int, rel: int) -> None:
        raters.append(r)
        ratees.append(e)
        rels.append(rel)

    if sc.closed_teams:
        # Teams of 5–9 in which everyone rates everyone else as a peer; no cross-links.
        start = 0
        while start < n:
            size = int(rng.integers(5, 10))
            team = np.arange(start, min(n, start + size))
            for e in team:
                add(int(e), int(e), REL["self"])
                for r in team:
                    if r != e:
                        add(int(r), int(e), REL["peer"])
            start += size
        return np.array(raters), np.array(ratees), np.array(rels)

    manager = _org(n, rng)
    children: list[list[int]] = [[] for _ in range(n)]
    for p, m in enumerate(manager):
        if m >= 0:
            children[m].append(p)
    for e in range(n):
        add(e, e, REL["self"])
        if manager[e] >= 0:
            add(int(manager[e]), e, REL["manager"])
        kids = children[e]
        if kids:
            k = min(len(kids), int(rng.integers(sc.reports[0], sc.reports[1] + 1)))
            for r in rng.choice(kids, size=k, replace=False):
                add(int(r), e, REL["direct_report"])
        chosen: set[int] = {e, int(manager[e])} | set(kids)
        siblings = [s for s in (children[manager[e]] if manager[e] >= 0 else []) if s != e]
        want = int(rng.integers(sc.peers[0], sc.peers[1] + 1))
        pool = list(rng.permutation(siblings))
        for _ in range(want):
            if pool and rng.random() > sc.cross_team_peer:
                r = int(pool.pop())
            else:
                r = int(rng.integers(n))
                tries = 0
                while r in chosen and tries < 20:
                    r, tries = int(rng.integers(n)), tries + 1
            if r not in chosen:
                chosen.add(r)
                add(r, e, REL["peer"])
        if rng.random() < sc.other_rate:
            r = int(rng.integers(n))
            if r not in chosen:
                add(r, e, REL["other"])
    return np.array(raters), np.array(ratees), np.array(rels)


def _expected_rating(mu: np.ndarray, sd: float) -> np.ndarray:
    """E[clip(round(Y), 1, 5)] for Y ~ N(mu, sd²)."""
    out = np.ones_like(mu)
    for k in (1.5, 2.5, 3.5, 4.5):
        out += stats.norm.sf((k - mu) / sd)
    return out


def simulate(sc: Scenario, seed: int = 0) -> dict:
    """Ratings and the truth for one scenario."""
    rng = np.random.default_rng(seed)
    n = sc.n_people
    n_items = N_COMPETENCIES * ITEMS_PER_COMPETENCY
    comp_of_item = np.repeat(np.arange(N_COMPETENCIES), ITEMS_PER_COMPETENCY)
    true = rng.normal(0, sc.true_sd, n)
    profile = rng.normal(0, sc.competency_sd, (n, N_COMPETENCIES))
    difficulty = rng.normal(0, 0.3, n_items)
    leniency = rng.normal(0, sc.leniency_sd, n) if sc.leniency_sd else np.zeros(n)
    slope = np.exp(rng.normal(0, sc.scale_use_sd, n)) if sc.scale_use_sd else np.ones(n)
    rel_shift = np.array(sc.leniency_mean_by_rel)
    halo = rng.uniform(0, 2 * sc.halo, n)  # rater-specific, mean sc.halo

    rater, ratee, rel = _assignments(sc, rng)
    n_pairs = rater.size
    impression = rng.normal(0, sc.impression_sd, n_pairs)
    centre = 3.6
    # Latent rating per pair × item.
    signal = (
        true[ratee][:, None]
        + (1 - halo[rater])[:, None] * profile[ratee][:, comp_of_item]
        + difficulty[None, :]
        + impression[:, None]
    )
    latent = (
        centre
        + leniency[rater][:, None]
        + rel_shift[rel][:, None]
        + slope[rater][:, None] * signal
        + rng.normal(0, sc.noise_sd, (n_pairs, n_items))
    )
    y = np.clip(np.rint(latent), 1, 5)
    y[rng.random(y.shape) < sc.na_rate] = np.nan

    # Truth: expected rating of an average rater (no leniency, slope 1, average halo,
    # the average relationship shift among others), per item, then averaged.
    others = rel != REL["self"]
    ref_shift = float(rel_shift[rel[others]].mean())
    noise = float(np.hypot(sc.impression_sd, sc.noise_sd))
    item_mu = (
        centre
        + ref_shift
        + true[:, None]
        + (1 - sc.halo) * profile[:, comp_of_item]
        + difficulty[None, :]
    )
    item_truth = _expected_rating(item_mu, noise)
    truth_comp = item_truth.reshape(n, N_COMPETENCIES, ITEMS_PER_COMPETENCY).mean(axis=2)
    truth = np.column_stack([truth_comp, item_truth.mean(axis=1)])

    # Oracle: others' raw pair means minus the true leniency and relationship shift
    # (approximately linear on the scale), rater as unit.
    pair_bias = leniency[rater] + rel_shift[rel] - ref_shift
    long_rater = np.repeat(rater, n_items)
    long_ratee = np.repeat(ratee, n_items)
    long_rel = np.repeat(rel, n_items)
    long_item = np.tile(np.arange(n_items), n_pairs)
    return {
        "ratings": (long_rater, long_ratee, long_item, long_rel, y.ravel()),
        "item_competency": {i: f"C{c}" for i, c in enumerate(comp_of_item)},
        "truth": truth,
        "pair": (rater, ratee, rel, pair_bias, y),
        "comp_of_item": comp_of_item,
    }


def _oracle(sim: dict, z: float) -> tuple[np.ndarray, np.ndarray]:
    _, ratee, rel, bias, y = sim["pair"]
    n = sim["truth"].shape[0]
    comp = sim["comp_of_item"]
    cols = []
    for c in [*range(N_COMPETENCIES), None]:
        sub = y if c is None else y[:, comp == c]
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            frac = (~np.isnan(sub)).mean(axis=1)
            m = np.nanmean(sub, axis=1) - bias
        ok = (rel != REL["self"]) & (frac >= 0.5)
        cnt = np.bincount(ratee[ok], minlength=n)
        mean = np.bincount(ratee[ok], weights=m[ok], minlength=n) / np.maximum(cnt, 1)
        ss = np.bincount(ratee[ok], weights=(m[ok] - mean[ratee[ok]]) ** 2, minlength=n)
        pooled = ss.sum() / (cnt[cnt > 0] - 1).sum()
        se = np.sqrt(pooled / np.maximum(cnt, 1))
        mean[cnt == 0] = np.nan
        cols.append((mean, se))
    est = np.column_stack([c[0] for c in cols])
    se = np.column_stack([c[1] for c in cols])
    return est, se


def _metrics(est: np.ndarray, se: np.ndarray, truth: np.ndarray, z: float) -> tuple[float, ...]:
    ok = ~np.isnan(est) & ~np.isnan(truth)
    e, t, s = est[ok], truth[ok], se[ok]
    corr = float(np.corrcoef(e, t)[0, 1])
    rmse = float(np.sqrt(np.mean((e - t) ** 2)))
    cover = float(np.mean(np.abs(e - t) <= z * s))
    return corr, rmse, cover


def run(scenarios: list[Scenario] = SCENARIOS, seed: int = 0) -> list[dict]:
    z = float(stats.norm.ppf(0.95))
    rows = []
    for sc in scenarios:
        sim = simulate(sc, seed)
        t0 = time.perf_counter()
        ratings = Ratings.from_arrays(*sim["ratings"], sim["item_competency"])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ScoringWarning)
            fit = fit_rater_model(ratings)
        elapsed = time.perf_counter() - t0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ScoringWarning)
            plain = fit_rater_model(ratings, calibrate=False)  # diagnostics only
        # Rows of the result are ratees in order of first appearance; map to people.
        order = np.asarray(ratings.ratee_ids, dtype=np.int64)
        truth = sim["truth"][order]
        oracle, oracle_se = _oracle(sim, z)
        oracle, oracle_se = oracle[order], oracle_se[order]
        for level, cols in (("overall", [-1]), ("competency", list(range(N_COMPETENCIES)))):
            diag = _calibration_diagnostics(fit, plain, truth, cols, z)
            r = _metrics(fit.raw_mean[:, cols], fit.raw_se[:, cols], truth[:, cols], z)
            a = _metrics(fit.adjusted[:, cols], fit.se[:, cols], truth[:, cols], z)
            o = _metrics(oracle[:, cols], oracle_se[:, cols], truth[:, cols], z)
            rows.append(
                {
                    "scenario": sc.name,
                    "level": level,
                    "raw": r,
                    "adjusted": a,
                    "oracle": o,
                    "method": fit.method,
                    "seconds": elapsed,
                    "n_ratings": ratings.n_ratings,
                    "warnings": [str(w.message)[:60] for w in caught],
                    "diag": diag,
                }
            )
    return rows


def _calibration_diagnostics(
    fit: object, plain: object, truth: np.ndarray, cols: list[int], z: float
) -> tuple[float, ...]:
    """Mean error (all, top decile of the truth), realised/reported SE and coverage,
    without (``plain``) and with the library's bootstrap calibration (``fit``)."""
    t = truth[:, cols].ravel()
    top = t >= np.nanquantile(t, 0.9)
    out: list[float] = []
    for f in (plain, fit):
        e = f.adjusted[:, cols].ravel() - t  # type: ignore[attr-defined]
        s = f.se[:, cols].ravel()  # type: ignore[attr-defined]
        ok = np.isfinite(e) & np.isfinite(s)
        ratio = float(np.sqrt(np.mean((e[ok] - e[ok].mean()) ** 2) / np.mean(s[ok] ** 2)))
        cover = float(np.mean(np.abs(e[ok]) <= z * s[ok]))
        out += [float(np.mean(e[ok])), float(np.mean(e[ok & top])), ratio, cover]
    cal = fit.calibration  # type: ignore[attr-defined]
    level = 0 if cols == [-1] else 1
    out += [cal.se_ratio[level], float(np.abs(cal.bias[:, cols]).mean())]
    return tuple(out)


SEEDS = (0, 1, 2)


def main() -> None:
    t0 = time.perf_counter()
    runs = [run(seed=s) for s in SEEDS]
    rows = []
    for parts in zip(*runs, strict=True):  # average every figure over the seeds
        row = dict(parts[0])
        for key in ("raw", "adjusted", "oracle", "diag"):
            row[key] = tuple(np.mean([p[key] for p in parts], axis=0))
        row["seconds"] = float(np.mean([p["seconds"] for p in parts]))
        rows.append(row)
    print(f"mean over seeds {SEEDS}; truth = expected rating of an average rater")
    head = (
        f"{'scenario':<18} {'level':<10} | {'corr raw':>8} {'adj':>6} {'oracle':>6} "
        f"{'gap%':>5} | {'RMSE raw':>8} {'adj':>6} {'oracle':>6} {'cut%':>5} | "
        f"{'cover raw':>9} {'adj':>5} {'oracle':>6} | method"
    )
    print(head)
    print("-" * len(head))
    checks = []
    for r in rows:
        (cr, er, vr), (ca, ea, va), (co, eo, vo) = r["raw"], r["adjusted"], r["oracle"]
        gap = 100 * (ca - cr) / (co - cr) if co - cr > 1e-3 else float("nan")
        cut = 100 * (er - ea) / er
        print(
            f"{r['scenario']:<18} {r['level']:<10} | {cr:8.3f} {ca:6.3f} {co:6.3f} "
            f"{gap:5.0f} | {er:8.3f} {ea:6.3f} {eo:6.3f} {cut:5.1f} | "
            f"{vr:9.1%} {va:5.1%} {vo:6.1%} | {r['method']}"
        )
        name = f"{r['scenario']} / {r['level']}"
        checks.append((f"{name}: adjusted not worse than raw by > 0.005 corr", ca >= cr - 0.005))
        checks.append((f"{name}: 90% interval coverage in 87–93%", 0.87 <= va <= 0.93))
        if r["scenario"] == "realistic" and r["level"] == "overall":
            checks.append((f"{name}: closes >= 75% of the raw→oracle gap", gap >= 75))
            checks.append((f"{name}: cuts RMSE by >= 10%", cut >= 10))
    print()
    for r in rows[::2]:
        print(
            f"{r['scenario']}: {r['n_ratings']:,} ratings scored in {r['seconds']:.2f} s; "
            f"warnings: {r['warnings'] or 'none'}"
        )
    print("\nbootstrap calibration of the observation process (diagnostics; adjusted - truth):")
    print(
        f"{'scenario':<18} {'level':<10} | {'mean err':>8} {'top10%':>7} {'spread/SE':>9} "
        f"{'cover':>6} | {'calibrated:':>11} {'mean err':>8} {'top10%':>7} {'spread/SE':>9} "
        f"{'cover':>6} | {'sim SE ratio':>12} {'mean |bias|':>11}"
    )
    for r in rows:
        d = r["diag"]
        print(
            f"{r['scenario']:<18} {r['level']:<10} | {d[0]:+8.3f} {d[1]:+7.3f} {d[2]:9.3f} "
            f"{d[3]:6.1%} | {'':>11} {d[4]:+8.3f} {d[5]:+7.3f} {d[6]:9.3f} {d[7]:6.1%} | "
            f"{d[8]:12.3f} {d[9]:11.3f}"
        )
    print("\ntargets (issue #3):")
    for text, ok in checks:
        print(f"  [{'ok' if ok else 'MISSED'}] {text}")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
