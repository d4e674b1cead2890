"""The samplers that take a differentiable ``forward(x)`` on the nonlinear problems of
:mod:`scoredae.eval.nonlinear` (a radius, a modulus, a saturating sensor on the 2-D 25-mode
mixture), against the exact grid posterior: total variation on 2 x 2 bins and sliced Wasserstein
distance to grid draws, each beside the floor of exact draws of the same size, with the network
evaluations per sample and the seconds.

    python benchmarks/bench_nonlinear.py [--n 1024] [--steps 100] [--seeds 0 1 2] [--json OUT]
"""

import argparse
import json

import torch

from scoredae.eval.nonlinear import (
    FORWARDS,
    evaluate_nonlinear,
    nonlinear_grid_problem,
    nonlinear_samplers,
)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1024, help="samples per run (default 1024)")
    p.add_argument("--steps", type=int, default=100, help="EDM levels (default 100)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="problems drawn (default 0)")
    p.add_argument("--json", default=None, help="write the rows here")
    args = p.parse_args(argv)
    torch.set_default_dtype(torch.float64)
    rows = []
    print(f"{'forward':>10s} {'seed':>4s} {'sampler':>9s} {'TV':>6s} {'floor':>6s} {'SW':>6s} {'floor':>6s} "
          f"{'evals':>6s} {'s':>6s}")
    for forward in FORWARDS:
        for seed in args.seeds:
            problem = nonlinear_grid_problem(forward, seed)
            for name, sampler in nonlinear_samplers().items():
                row = {"seed": seed, **evaluate_nonlinear(sampler, problem, args.n, args.steps, seed, name=name)}
                rows.append(row)
                print(f"{forward:>10s} {seed:4d} {name:>9s} {row['tv']:6.3f} {row['tv_floor']:6.3f} {row['sw']:6.2f} "
                      f"{row['sw_floor']:6.2f} {row['evaluations']:6d} {row['seconds']:6.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
