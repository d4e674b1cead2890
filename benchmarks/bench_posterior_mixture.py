r"""Every posterior sampler with a diffusion prior against the exact posterior of MCGdiff's 25-component
mixture (:mod:`scoredae.eval.exact_posterior`): for each problem (d_x, d_y, seed) and sampler, the sliced
Wasserstein distance to exact draws beside the exact-vs-exact floor, the total variation of the mode
masses, the coverage of exact 90% intervals of four linear functionals, seconds and denoiser calls;
then the particle samplers (TDS, MCGdiff, FPS) as their particles grow (with their log-evidence error), the likelihood scores'
error against the exact gradient of log p(y | x_sigma) level by level, and the same table with the
exact denoiser perturbed (a bias, a wrong noise level, a non-symmetric Jacobian).

    python benchmarks/bench_posterior_mixture.py [--dims 8 80] [--dy 1 2 4] [--seeds 0 1 2]
        [--n 1024] [--steps 100] [--particles 64 256 1024] [--json OUT.json]

The baseline of each row is the floor: two independent exact draws of the same size.
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch

from scoredae.eval.exact_posterior import (
    PerturbedDenoiser,
    benchmark_likelihood_scores,
    benchmark_samplers,
    evaluate,
    grid_mixture_problem,
    likelihood_score_error,
    rounded,
)
from scoredae.mixtures import MixtureDenoiser
from scoredae.rng import seeded

NAMES = tuple(benchmark_samplers(grid_mixture_problem(2, 1, 0)))
PARTICLE_SAMPLERS = ("smc", "mcgdiff", "fps")
COLUMNS = ("sampler", "calls", "seconds", "sw", "sw_floor", "mode_tv", "coverage_min", "coverage_max")


def table(rows, columns=COLUMNS, title=""):
    print(f"\n{title}")
    print("  ".join(f"{c:>12}" for c in columns))
    for r in rows:
        cells = "  ".join(f"{r.get(c, ''):>12.4g}" if isinstance(r.get(c), float) else f"{r.get(c, '')!s:>12}"
                          for c in columns)
        print(cells + (f"  ({r['diverged']})" if "diverged" in r else ""))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dims", type=int, nargs="+", default=[8], help="d_x values (even; default 8)")
    parser.add_argument("--dy", type=int, nargs="+", default=[1, 2, 4], help="d_y values (default 1 2 4)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="problem seeds (default 0 1 2)")
    parser.add_argument("--n", type=int, default=1024, help="samples (chains or particles) per row (default 1024)")
    parser.add_argument("--steps", type=int, default=100, help="levels per chain (default 100)")
    parser.add_argument("--samplers", nargs="+", default=list(NAMES), choices=NAMES)
    parser.add_argument("--particles", type=int, nargs="+", default=[64, 256, 1024],
                        help="particle counts of the SMC sweep (default 64 256 1024)")
    parser.add_argument("--json", help="write every row to this JSON file")
    args = parser.parse_args(argv)
    torch.set_default_dtype(torch.float64)
    record = {"command": "python benchmarks/bench_posterior_mixture.py " + " ".join(argv or []),
              "rows": [], "particles": [], "guidance": [], "perturbed": []}

    for d_x in args.dims:
        for d_y in args.dy:
            for seed in args.seeds:
                problem = grid_mixture_problem(d_x, d_y, seed)
                top = problem.posterior.weights[0].max()
                samplers = benchmark_samplers(problem)
                rows = [rounded(evaluate(samplers[s], problem, args.n, args.steps, seed, name=s))
                        for s in args.samplers]
                for r in rows:
                    r.update(d_x=d_x, d_y=d_y, seed=seed)
                record["rows"] += rows
                table(rows, title=f"d_x={d_x} d_y={d_y} seed={seed}: sigma_y={problem.noise_sigma:.3g}, "
                                  f"heaviest posterior mode {float(top):.3f}")

    print("\nSummary over the problems: median sw / floor, mean and worst mode TV, worst coverage")
    for s in args.samplers:
        every = [r for r in record["rows"] if r["sampler"] == s]
        mine = [r for r in every if "diverged" not in r]
        if not mine:
            print(f"{s:>10}  diverged on every problem")
            continue
        ratio = statistics.median(r["sw"] / r["sw_floor"] for r in mine)
        tv = [r["mode_tv"] for r in mine]
        cover = min(min(r["coverage_min"], 1.8 - r["coverage_max"]) for r in mine)
        print(f"{s:>10}  sw/floor {ratio:7.3g}  TV mean {statistics.mean(tv):.3f} worst {max(tv):.3f}  "
              f"coverage worst {cover:.3f} (0.90 exact)  diverged on {len(every) - len(mine)} of {len(every)}")

    d_x = args.dims[0]
    for d_y in args.dy:
        problem = grid_mixture_problem(d_x, d_y, args.seeds[0])
        rows = []
        for name in PARTICLE_SAMPLERS:
            for p in args.particles:
                r = rounded(evaluate(benchmark_samplers(problem)[name], problem, p, args.steps, args.seeds[0], name=name))
                r.update(d_x=d_x, d_y=d_y, seed=args.seeds[0], particles=p)
                rows.append(r)
        record["particles"] += rows
        table(rows, ("sampler", "particles", "calls", "seconds", "sw", "sw_floor", "mode_tv", "evidence_error",
                     "min_ess"), f"The particle samplers as the particles grow, d_x={d_x} d_y={d_y} seed={args.seeds[0]}")

    levels = [40.0, 10.0, 3.0, 1.0, 0.3, 0.1, 0.03]
    for d_y in args.dy:
        problem = grid_mixture_problem(d_x, d_y, args.seeds[0])
        print(f"\nGuidance error ||g - exact|| / ||exact|| by level, d_x={d_x} d_y={d_y}")
        print(f"{'sigma':>10}" + "".join(f"{s:>9.3g}" for s in levels))
        for name, make in benchmark_likelihood_scores(problem).items():
            err = likelihood_score_error(make, problem, levels, generator=seeded(args.seeds[0], 4))
            record["guidance"].append({"guidance": name, "d_x": d_x, "d_y": d_y, "sigmas": levels,
                                       "relative_error": [round(float(e), 4) for e in err]})
            print(f"{name:>10}" + "".join(f"{float(e):>9.3g}" for e in err))

    problem = grid_mixture_problem(d_x, args.dy[0], args.seeds[0])
    exact = MixtureDenoiser(problem.prior)
    rows = []
    for kind, size in (("bias", 0.1), ("sigma", 0.1), ("asymmetric", 0.1)):
        perturbed = PerturbedDenoiser(exact, kind, size, d_x)
        for s in args.samplers:
            r = rounded(evaluate(benchmark_samplers(problem)[s], problem, args.n, args.steps, args.seeds[0], name=s,
                                     denoiser=perturbed))
            r.update(perturbation=f"{kind} {size:g}", d_x=d_x, d_y=args.dy[0])
            rows.append(r)
    record["perturbed"] = rows
    table(rows, ("perturbation", *COLUMNS), f"The denoiser perturbed, d_x={d_x} d_y={args.dy[0]} seed={args.seeds[0]}")

    if args.json:
        with open(args.json, "w") as f:
            json.dump(record, f, indent=1)


if __name__ == "__main__":
    main()
