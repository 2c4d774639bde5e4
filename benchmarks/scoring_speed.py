"""Speed and memory of scoring 10,000 ratees × 8 raters × 40 items (≈ 3.2 M ratings).

Two paths (issue #3 targets: library fit < 3 s, CLI end to end < 10 s, peak < 2 GB):

* the library: ``Ratings.from_arrays`` + ``score_ratings`` on in-memory arrays;
* the CLI: ``feedback360 score ratings.csv --out scores.csv`` in a subprocess, CSV in and
  CSV out (``python -m webapp.cli.score`` when the ``feedback360`` script is unavailable).

Run: ``python benchmarks/scoring_speed.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scoring import Ratings, ScoringWarning, fit_rater_model, score_ratings  # noqa: E402

N_RATEES = 10_000
N_ITEMS = 40
N_COMPETENCIES = 8
#: Relationship of the 8 raters of every ratee: self, 1 manager, 3 peers, 3 reports.
RELS = np.array(
    ["self", "manager", "peer", "peer", "peer", "direct_report"] + ["direct_report"] * 2
)


def generate(seed: int = 0) -> dict[str, np.ndarray]:
    """Ratings of a team-structured organisation with rater leniency and N/A answers."""
    rng = np.random.default_rng(seed)
    n = N_RATEES
    team = np.arange(n) // 8
    offsets = np.array([0, 8, 1, 2, 3, -8, -16, -24])  # self, manager-ish, peers, reports
    rater = (np.arange(n)[:, None] + offsets[None, :]) % n
    rater[:, 2:5] = team[:, None] * 8 + (np.arange(n)[:, None] + np.arange(1, 4)) % 8
    ratee = np.repeat(np.arange(n), 8).reshape(n, 8)
    true = rng.normal(0, 0.45, n)
    lenient = rng.normal(0, 0.35, n)
    lenient_pair = lenient[rater]
    lenient_pair[:, 0] = 0.3
    latent = (
        3.6
        + true[ratee][..., None]
        + lenient_pair[..., None]
        + rng.normal(0, 0.3, (n, 8, 1))
        + rng.normal(0, 0.55, (n, 8, N_ITEMS))
    )
    value = np.clip(np.rint(latent), 1, 5)
    value[rng.random(value.shape) < 0.05] = np.nan
    shape = value.shape
    return {
        "rater": np.broadcast_to(rater[..., None], shape).ravel(),
        "ratee": np.broadcast_to(ratee[..., None], shape).ravel(),
        "item": np.broadcast_to(np.arange(N_ITEMS), shape).ravel(),
        "relationship": np.broadcast_to(RELS[None, :, None], shape).ravel(),
        "value": value.ravel(),
    }


def item_competency() -> dict[int, str]:
    per = N_ITEMS // N_COMPETENCIES
    return {i: f"C{i // per + 1}" for i in range(N_ITEMS)}


def write_csv(data: dict[str, np.ndarray], path: Path) -> None:
    comp = item_competency()
    item_text = np.array([f"Q{i:02d},{comp[i]}" for i in range(N_ITEMS)], dtype=object)
    value_text = np.where(
        np.isnan(data["value"]), "NA", np.nan_to_num(data["value"]).astype(np.int64).astype(str)
    )
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("rater_id,ratee_id,item_id,relationship,rating,competency\n")
        step = 400_000
        for s in range(0, data["value"].size, step):
            sl = slice(s, s + step)
            rows = zip(
                data["rater"][sl].tolist(),
                data["ratee"][sl].tolist(),
                data["item"][sl].tolist(),
                data["relationship"][sl].tolist(),
                value_text[sl].tolist(),
                strict=True,
            )
            fh.write(
                "".join(
                    f"P{r:05d},P{e:05d},{item_text[i].split(',')[0]},{rel},{v},"
                    f"{item_text[i].split(',')[1]}\n"
                    for r, e, i, rel, v in rows
                )
            )


def cli_command() -> list[str]:
    script = Path(sys.executable).with_name("feedback360")
    if script.exists():
        probe = subprocess.run(
            [str(script), "score", "--help"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return [str(script), "score"]
    return [sys.executable, "-m", "webapp.cli.score"]


def main() -> None:
    warnings.simplefilter("ignore", ScoringWarning)
    t = time.perf_counter()
    data = generate()
    n = data["value"].size
    print(f"generated {n:,} ratings in {time.perf_counter() - t:.1f} s")

    rows = []
    t = time.perf_counter()
    ratings = Ratings.from_arrays(
        data["rater"],
        data["ratee"],
        data["item"],
        data["relationship"],
        data["value"],
        item_competency(),
    )
    t_build = time.perf_counter() - t
    t = time.perf_counter()
    fit = fit_rater_model(ratings)
    t_fit = time.perf_counter() - t
    t = time.perf_counter()
    scores = score_ratings(ratings)
    t_score = time.perf_counter() - t
    rows.append(("library: Ratings.from_arrays (validate, factorize)", t_build, None))
    rows.append(("library: fit_rater_model (adjusted scores + SEs)", t_fit, None))
    rows.append(("library: score_ratings (everything)", t_score, None))

    tracemalloc.start()
    score_ratings(ratings)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rows.append(("library: score_ratings peak traced allocation", None, peak / 2**20))
    del scores, fit

    tmp = Path(tempfile.mkdtemp(prefix="f360-speed-"))
    try:
        src, out = tmp / "ratings.csv", tmp / "scores.csv"
        t = time.perf_counter()
        write_csv(data, src)
        print(
            f"wrote {src.stat().st_size / 2**20:.0f} MB of CSV in {time.perf_counter() - t:.1f} s"
        )
        cmd = [*cli_command(), str(src), "--out", str(out)]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
        t_cli = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_child = after.ru_maxrss / 1024
        cpu_cli = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        if proc.returncode != 0:
            print(proc.stderr)
            raise SystemExit(f"CLI failed with status {proc.returncode}")
        with open(out, encoding="utf-8") as fh:
            n_rows = sum(1 for _ in fh) - 1
        label = " ".join(Path(c).name for c in cmd[:3])
        rows.append((f"CLI end to end ({label} …), {n_rows:,} rows out", t_cli, peak_child))
        rows.append(("CLI CPU time, all processes (user + system)", cpu_cli, None))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    load = os.getloadavg()[0]
    print(f"\n{n:,} ratings, {N_RATEES:,} ratees, {N_ITEMS} items, {os.cpu_count()} CPUs")
    print(f"1-minute load average at the end: {load:.1f} (wall times grow with other load)")
    print(f"{'step':<62} {'wall s':>7} {'peak MB':>8}")
    print("-" * 79)
    for name, sec, mem in rows:
        s = f"{sec:7.2f}" if sec is not None else f"{'':>7}"
        m = f"{mem:8.0f}" if mem is not None else f"{'':>8}"
        print(f"{name:<62} {s} {m}")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'benchmark process peak RSS (data generation included)':<62} {'':>7} {own:8.0f}")
    print("targets: library fit < 3 s, CLI end to end < 10 s, peak memory < 2048 MB")


if __name__ == "__main__":
    main()
