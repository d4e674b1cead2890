"""The posterior-sampler leaderboard: every sampler against the exact posterior of MCGdiff's
25-component mixture, at its own setting on 100 levels and at equal budgets of network evaluations
per sample (a call with its vector-Jacobian or Jacobian-vector product counts two), written to the
JSON the documentation's page "Posterior samplers against the exact posterior" renders.

    python benchmarks/bench_posterior_leaderboard.py [--dims 8 80] [--dy 1 2 4] [--seeds 0]
        [--budgets 100 1000] [--n 1024] [--samplers ...] [--json scoredae/eval/posterior_leaderboard.json]

Each row: sliced Wasserstein distance to as many exact posterior draws over the floor of two exact
draws (sw_ratio, 1 when exact), the total variation of the mode masses, the coverage of exact 90%
intervals, the log-evidence error of the particle samplers, the max-sliced distance of the
authors' scripts, seconds and the counts.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys

import torch

from scoredae.eval.exact_posterior import PROTOCOLS, benchmark_samplers, grid_mixture_problem
from scoredae.eval.leaderboard import BUDGETS, SHIPPED, leaderboard_rows

NAMES = tuple(benchmark_samplers(grid_mixture_problem(2, 1, 0)))
SHOWN = ("sampler", "budget", "steps", "evaluations", "sw_ratio", "mode_tv", "coverage_min", "coverage_max",
         "evidence_error", "seconds")


def show(row: dict) -> None:
    cells = []
    for key in SHOWN:
        value = row.get(key, "")
        cells.append(f"{value:>10.4g}" if isinstance(value, float) else f"{value!s:>10}")
    note = row.get("unmet") or row.get("diverged") or ""
    print(f"d_x={row['d_x']:<3} d_y={row['d_y']} " + " ".join(cells) + (f"  ({note})" if note else ""), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dims", type=int, nargs="+", default=[8, 80], help="d_x values (even; default 8 80)")
    parser.add_argument("--dy", type=int, nargs="+", default=[1, 2, 4], help="d_y values (default 1 2 4)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="problem seeds (default 0)")
    parser.add_argument("--protocol", default="mcgdiff", choices=PROTOCOLS,
                        help="how the problems are drawn (default mcgdiff; see grid_mixture_problem)")
    parser.add_argument("--noise-sigma", type=float, default=1.0,
                        help="sigma_y of the tmpd and mgps protocols (default 1.0)")
    parser.add_argument("--budgets", type=int, nargs="*", default=list(BUDGETS),
                        help="network evaluations per sample (default 100 1000; none: each setting alone)")
    parser.add_argument("--n", type=int, default=1024, help="samples per row (default 1024)")
    parser.add_argument("--samplers", nargs="+", default=list(NAMES), choices=NAMES)
    parser.add_argument("--json", default=str(SHIPPED), help="where the rows go (default: the shipped leaderboard)")
    args = parser.parse_args(argv)
    torch.set_default_dtype(torch.float64)
    problems = [(d_x, d_y, seed, grid_mixture_problem(d_x, d_y, seed, protocol=args.protocol,
                                                      noise_sigma=args.noise_sigma))
                for d_x in args.dims for d_y in args.dy for seed in args.seeds]
    print(" " * 12 + " ".join(f"{k:>10}" for k in SHOWN))
    rows = []
    for d_x, d_y, seed, problem in problems:
        samplers = {name: s for name, s in benchmark_samplers(problem).items() if name in args.samplers}
        rows += leaderboard_rows(samplers, [(d_x, d_y, seed, problem)], args.budgets, args.n, progress=show)
    command = " ".join(["python benchmarks/bench_posterior_leaderboard.py", *(sys.argv[1:] if argv is None else argv)])
    record = {"command": command, "protocol": args.protocol,
              "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
              "threads": torch.get_num_threads(), "rows": rows}
    with open(args.json, "w") as f:
        json.dump(record, f, indent=1)
    print(f"wrote {len(rows)} rows to {args.json}")


if __name__ == "__main__":
    main()
