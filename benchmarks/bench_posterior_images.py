r"""Posterior sampling on MNIST test digits with one trained denoiser: each method of
``scoredae sample --method``, PnP-ULA, and deepinv's ``DPS`` (its defaults: variance-preserving,
DDPM, 1,000 steps; and at our number of levels) and ``DiffPIR`` driven by the same denoiser, on the
same observations (``scoredae.recipes.posterior.observe``). Per task and method, averaged over the
digits with their standard errors across digits: the PSNR of the mean of ``n`` samples, the share
of clean pixels inside the samples' central 90% interval (``posterior_summary``), the denoiser
calls and seconds per digit.

    python benchmarks/bench_posterior_images.py [--model unet_edm] [--tasks inpaint super-resolution]
                                                [--digits 8] [--n 8] [--steps 100] [--methods NAME ...]
"""

from __future__ import annotations

import argparse
import time

import deepinv
import torch
from timing import counted_calls

from scoredae.data import load_mnist
from scoredae.nets import load_pretrained
from scoredae.recipes.posterior import (
    DIFFUSION_POSTERIOR,
    TASKS,
    diffusion_posterior,
    observe,
    posterior_sampling,
    posterior_summary,
)
from scoredae.rng import seeded


def methods(model, y, op, noise_sigma, args, seed: int) -> dict:
    """Each method as ``run() -> samples (n, 1, 28, 28)`` for the one observation ``y`` (1, ...)."""
    ys = y.expand(args.n, *y.shape[1:])
    physics = deepinv.physics.LinearPhysics(A=op.A, A_adjoint=op.A_adjoint,
                                            noise_model=deepinv.physics.GaussianNoise(noise_sigma))
    runs = {"pnp-ula": lambda: posterior_sampling(model, y, noise_sigma=noise_sigma, forward=op, n_chains=args.n,
                                                  generator=seeded(seed)).samples}
    for method in DIFFUSION_POSTERIOR:
        runs[method] = lambda method=method: diffusion_posterior(
            model, y, noise_sigma=noise_sigma, forward=op, method=method, n=args.n, steps=args.steps,
            generator=seeded(seed)).samples
    runs["deepinv DPS"] = lambda: deepinv.sampling.DPS(model, dtype=torch.float32)(ys, physics, seed=seed)
    runs[f"deepinv DPS {args.steps}"] = lambda: deepinv.sampling.DPS(model, num_steps=args.steps,
                                                                     dtype=torch.float32)(ys, physics, seed=seed)
    runs["deepinv DiffPIR"] = lambda: deepinv.sampling.DiffPIR(model, deepinv.optim.L2(), sigma=noise_sigma,
                                                               max_iter=args.steps)(ys, physics, seed=seed)
    return runs


def mean_and_se(values) -> tuple[float, float]:
    """The mean of ``values`` and its standard error (0 for a single value)."""
    v = torch.tensor(values, dtype=torch.float64)
    return float(v.mean()), float(v.std() / len(v) ** 0.5) if len(v) > 1 else 0.0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="unet_edm", help="a noise-conditional shipped model (default unet_edm)")
    parser.add_argument("--tasks", nargs="+", default=["inpaint", "super-resolution"], choices=sorted(TASKS),
                        help="tasks of scoredae.recipes.posterior.TASKS (default inpaint super-resolution)")
    parser.add_argument("--digits", type=int, default=8, help="MNIST test digits, one observation each (default 8)")
    parser.add_argument("--n", type=int, default=8, help="samples per observation (default 8)")
    parser.add_argument("--steps", type=int, default=100, help="levels of the diffusion samplers (default 100)")
    parser.add_argument("--methods", nargs="+", help="only these rows (default: all)")
    args = parser.parse_args(argv)
    model = load_pretrained(args.model)
    images = load_mnist("test")[0][: args.digits]
    print(f"{args.model}, {args.digits} MNIST test digits, {args.n} samples each, {args.steps} levels; "
          f"means over the digits")
    for task in args.tasks:
        rows: dict[str, list] = {}
        for i, x in enumerate(images):
            x = x[None]
            y, op, noise_sigma = observe(task, x, seed=i)
            for name, run in methods(model, y, op, noise_sigma, args, seed=i).items():
                if args.methods and name not in args.methods:
                    continue
                start = time.perf_counter()
                samples, calls = counted_calls(run, model)
                seconds = time.perf_counter() - start
                summary = posterior_summary(samples, x)
                rows.setdefault(name, []).append((summary["psnr"], summary["coverage"], calls, seconds))
        print(f"\n{task} ({TASKS[task].description})")
        print(f"{'method':>18} {'PSNR dB':>14} {'coverage':>15} {'calls':>6} {'s/digit':>8}")
        for name, values in rows.items():
            (psnr, psnr_se), (coverage, coverage_se), (n_calls, _), (seconds, _) = map(mean_and_se, zip(*values))
            print(f"{name:>18} {psnr:7.2f} +- {psnr_se:4.2f} {coverage:7.3f} +- {coverage_se:5.3f} {n_calls:6.0f} "
                  f"{seconds:8.2f}", flush=True)


if __name__ == "__main__":
    main()
