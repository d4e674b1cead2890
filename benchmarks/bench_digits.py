"""Exact posteriors of digits: every posterior sampler on the MNIST mixture prior (d = 784) against
the exact posterior, at an equal budget of network evaluations per sample, driven by the mixture's
exact denoiser and, side by side, by a network trained on the mixture's draws; the rows go to the JSON the page
"Posterior samplers against the exact posterior" renders in its d = 784 section.

    python benchmarks/bench_digits.py [--tasks box half sr2 sr4 blur] [--noise 0.05 0.2]
        [--sources prior test] [--budget 100] [--n 256] [--samplers ...] [--denoiser exact|NETWORK]
        [--json scoredae/eval/posterior_digits.json] [--append]

Each problem first gets a row "exact draws" (n exact posterior draws measured as a sampler's: the
floors), then one row per sampler: sliced Wasserstein over its floor, mode total variation, the
per-pixel coverage of exact 50/80/90/95% intervals, the PSNR of the samples' mean against the exact
posterior mean and against the digit observed, the counts and seconds
(:func:`scoredae.eval.digits.evaluate_digits`). Run it with one thread beside other work.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

from scoredae.cli.models import load_model
from scoredae.eval.digits import (
    LEVELS,
    TASKS,
    DigitImages,
    digit_problem,
    evaluate_digits,
    exact_floors,
)
from scoredae.eval.exact_posterior import benchmark_samplers, rounded
from scoredae.eval.leaderboard import levels_for_budget
from scoredae.nets.registry import load_pretrained

SHIPPED = Path(__file__).parents[1] / "scoredae" / "eval" / "posterior_digits.json"
NETWORK = "scoredae/weights/mixtures/networks/resunet_mixture"  # trained on the mixture's draws (its JSON: the command)
SKIPPED = ("oracle",)  # its exact likelihood score refactors the posterior at each level: minutes a run at d = 784


def show(row: dict) -> None:
    cover = " ".join(f"{c:.2f}" for c in row.get("coverage", []))
    note = row.get("unmet") or row.get("diverged") or row.get("refused") or ""
    print(f"{row['task']:>4} {row['noise_sigma']:<4} {row['source']:<5} {row['denoiser'][-15:]:<15} {row['sampler']:<13} "
          f"{row.get('evaluations', ''):>5} SWx {row.get('sw_ratio', float('nan')):6.2f} "
          f"TV {row.get('mode_tv', float('nan')):.3f} cover {cover} mean {row.get('mean_psnr', float('nan')):5.1f} dB "
          f"truth {row.get('truth_psnr', float('nan')):5.1f} dB {row.get('seconds', 0):6.1f} s {note}", flush=True)


def problems(args, prior):
    """(task, noise, source, problem) for every combination asked for."""
    digits = None
    if "test" in args.sources:
        from scoredae.data.mnist import load_mnist

        digits = load_mnist("test")[0]
    for task in args.tasks:
        for noise in args.noise:
            for source in args.sources:
                digit = None if source == "prior" else digits[args.digit]
                yield task, noise, source, digit_problem(prior, task, noise, digit, seed=args.seed)


def rows_of(args, prior, network, save) -> list[dict]:
    """The rows of every problem: each sampler with the exact denoiser and, given a ``network``, with
    it too, side by side; ``save(rows)`` after each problem. A sampler's levels at the budget are found
    on the first problem and kept (they depend on how the sampler spends its evaluations, not on the
    problem)."""
    rows, levels = [], {}
    denoisers = {"exact": None, **({args.denoiser: network} if network is not None else {})}
    for task, noise, source, problem in problems(args, prior):
        where = {"task": task, "noise_sigma": noise, "source": source}
        floors = exact_floors(problem, args.n, args.seed)
        rows.append(rounded({**where, "denoiser": "exact", "sampler": "exact draws", **floors, "sw_ratio": 1.0}))
        show(rows[-1])
        samplers = benchmark_samplers(problem)
        for name in args.samplers:
            if name not in levels:
                try:
                    levels[name] = levels_for_budget(samplers[name], problem, args.budget)
                except ValueError as err:
                    levels[name] = str(err).split("; ")[0]
            for label, denoiser in denoisers.items():
                if isinstance(levels[name], str):
                    row = {"sampler": name, "unmet": levels[name]}
                else:
                    try:
                        row = evaluate_digits(samplers[name], problem, args.n, levels[name], args.seed, name=name,
                                              denoiser=denoiser, floors=floors)
                    except ValueError as err:  # a sampler that refuses the problem says why
                        row = {"sampler": name, "refused": str(err).split("; ")[0]}
                rows.append(rounded({**where, "denoiser": label, "budget": args.budget, **row}))
                show(rows[-1])
        save(rows)
    return rows


def main(argv=None):
    names = [n for n in benchmark_samplers(digit_problem(load_pretrained("mnist_mixture").mixture, "half", 0.1))
             if n not in SKIPPED]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--noise", type=float, nargs="+", default=[0.05, 0.2], help="sigma_y (default 0.05 0.2)")
    parser.add_argument("--sources", nargs="+", default=["prior", "test"], choices=["prior", "test"],
                        help="the digit observed: a draw of the prior, or a real test digit (default both)")
    parser.add_argument("--digit", type=int, default=0, help="index of the test digit (default 0)")
    parser.add_argument("--budget", type=int, default=100, help="network evaluations per sample (default 100)")
    parser.add_argument("--n", type=int, default=256, help="samples per row (default 256)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samplers", nargs="+", default=names, choices=names)
    parser.add_argument("--denoiser", default="exact",
                        help="exact (the mixture's own), or a network run beside it: a shipped name or a "
                             f"checkpoint stem, e.g. {NETWORK} (trained on the mixture's draws; default exact)")
    parser.add_argument("--json", default=str(SHIPPED), help="where the rows go (default: the shipped record)")
    parser.add_argument("--append", action="store_true", help="add the rows to those already in --json")
    args = parser.parse_args(argv)
    torch.set_default_dtype(torch.float64)
    prior = load_pretrained("mnist_mixture").mixture
    network = None if args.denoiser == "exact" else DigitImages(load_model(args.denoiser, "cpu").eval())
    command = " ".join(["python benchmarks/bench_digits.py", *(sys.argv[1:] if argv is None else argv)])
    record = {"levels": list(LEVELS), "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
              "threads": torch.get_num_threads(), "runs": []}
    path = Path(args.json)
    if args.append and path.exists():
        record = json.loads(path.read_text())
    run = {"command": command, "rows": []}
    record["runs"].append(run)

    def save(rows):  # after each problem: a long run that stops keeps what it measured
        run["rows"] = rows
        path.write_text(json.dumps(record, indent=1))

    rows = rows_of(args, prior, network, save)
    print(f"wrote {len(rows)} rows to {path}")


if __name__ == "__main__":
    main()
