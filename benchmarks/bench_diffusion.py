"""EDM's Heun sampler: (a) ``edm_sampler`` against the bare loop of the same denoiser calls and
Heun arithmetic (target: overhead <= 5%); (b) against deepinv's EDM diffusion SDE with its Heun
solver and no stochastic term (``deepinv.sampling.EDMDiffusionSDE``, ``alpha=0``, data in [0, 1]
as ours: ``minus_one_one=False``), with the same
denoiser (``unet_ncsn``), levels and batch (target: ours not slower). Printed as ratios in one run.

    python benchmarks/bench_diffusion.py [--batch 64] [--steps 18] [--repeats 3]
"""

from __future__ import annotations

import argparse
import itertools

import torch
from deepinv.sampling import EDMDiffusionSDE, HeunSolver
from timing import best_times

from scoredae.nets import load_pretrained
from scoredae.sampling import edm_sampler, karras_sigmas


def bare_heun(denoiser, x: torch.Tensor, levels: list[float]) -> torch.Tensor:
    """Heun on dx/dsigma = (x - D(x, sigma)) / sigma with nothing else: the floor."""
    for t_cur, t_next in itertools.pairwise(levels):
        d = (x - denoiser(x, t_cur)) / t_cur
        x_next = x + (t_next - t_cur) * d
        d_next = (x_next - denoiser(x_next, t_next)) / t_next
        x = x + (t_next - t_cur) * 0.5 * (d + d_next)
    return x


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=18)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = load_pretrained("unet_ncsn", device=device)
    sigma_min, sigma_max = model.sigma_range
    sigmas = karras_sigmas(sigma_min, sigma_max, args.steps)[:-1]  # both end at sigma_min: 2 calls a step
    levels = [float(s) for s in sigmas]
    x_T = sigma_max * torch.randn(args.batch, 1, 28, 28, generator=torch.Generator().manual_seed(0)).to(device)
    sde = EDMDiffusionSDE(sigma_t=lambda t: t, sigma_prime_t=lambda t: 1.0, variance_exploding=True, alpha=0.0,
                          denoiser=model, solver=HeunSolver(timesteps=sigmas), minus_one_one=False,  # data in [0, 1]
                          dtype=torch.float32, device=device)

    with torch.no_grad():
        ours = edm_sampler(model, x_T, sigmas).samples
        floor = bare_heun(model, x_T, levels)
        theirs = sde.sample(x_init=x_T.clone())
        theirs = getattr(theirs, "sample", theirs)
        print(f"max |ours - bare| = {(ours - floor).abs().max():.2e}, max |ours - deepinv| = {(ours - theirs).abs().max():.2e}")
        times = best_times({
            "edm_sampler": lambda: edm_sampler(model, x_T, sigmas),
            "bare Heun loop": lambda: bare_heun(model, x_T, levels),
            "deepinv EDMDiffusionSDE + HeunSolver": lambda: sde.sample(x_init=x_T.clone()),
        }, device, args.repeats)
    calls = 2 * (len(levels) - 1)
    print(f"batch {args.batch}, {len(levels) - 1} Heun steps ({calls} denoiser calls), {device}, best of {args.repeats}")
    for name, seconds in times.items():
        print(f"  {name:<40}{seconds:8.3f} s")
    print(f"(a) edm_sampler / bare loop: {times['edm_sampler'] / times['bare Heun loop']:.3f} (target <= 1.05)")
    print(f"(b) edm_sampler / deepinv:   {times['edm_sampler'] / times['deepinv EDMDiffusionSDE + HeunSolver']:.3f} "
          f"(target <= 1)")


if __name__ == "__main__":
    main()
