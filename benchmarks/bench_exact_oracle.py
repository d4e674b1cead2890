"""The exactly guided chain (the oracle of the posterior benchmark) at d_x = 800 with the prior's
isotropic components kept isotropic, against the same prior held by full (K, d, d) matrices, in
one run: seconds of the whole chain (1,024 samples, 100 levels) and the largest relative
difference of the guidance term, the noised likelihood's gradient, at the chain's start and at
draws of the noised posterior at a few levels.

Target: the structured chain at least 20 times faster, its results equal to 1e-10.

    python benchmarks/bench_exact_oracle.py [--dx 800] [--dy 2] [--n 1024] [--steps 100]
"""

import argparse
import time

import torch

from scoredae import GaussianMixture
from scoredae.eval.exact_posterior import grid_mixture_problem, oracle
from scoredae.mixtures import MixtureDenoiser
from scoredae.sampling import karras_sigmas


def run(prior, problem, x_T, sigmas) -> tuple[float, torch.Tensor]:
    sampler = oracle(prior)
    start = time.perf_counter()
    result = sampler(MixtureDenoiser(prior), problem.y, problem.A, problem.noise_sigma, x_T, sigmas,
                     generator=torch.Generator().manual_seed(1))
    return time.perf_counter() - start, result.samples


def guidance_difference(structured, full, problem, levels) -> float:
    """The largest relative difference of grad log p(y | x_sigma) between the two at draws of the
    noised posterior, level by level."""
    gen = torch.Generator().manual_seed(2)
    worst = 0.0
    for sigma in levels:
        x = problem.posterior.sample(256, generator=gen)[:, 0] + sigma * torch.randn(256, structured.dim, generator=gen)
        a = structured.noised_likelihood(x, sigma, problem.y, problem.noise_sigma, problem.A)[1]
        b = full.noised_likelihood(x, sigma, problem.y, problem.noise_sigma, problem.A)[1]
        worst = max(worst, float((a - b).norm(dim=1).max() / b.norm(dim=1).max()))
    return worst


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dx", type=int, default=800, help="dimension (even; default 800)")
    parser.add_argument("--dy", type=int, default=2, help="measurements (default 2)")
    parser.add_argument("--n", type=int, default=1024, help="chains (default 1024)")
    parser.add_argument("--steps", type=int, default=100, help="levels (default 100)")
    args = parser.parse_args(argv)
    torch.set_default_dtype(torch.float64)
    problem = grid_mixture_problem(args.dx, args.dy, 0)
    structured = problem.prior
    full = GaussianMixture(structured.weights, structured.means, structured.covs)  # (K, d, d) matrices
    x_T = structured.noised(problem.sigma_max).sample(args.n, generator=torch.Generator().manual_seed(0))
    sigmas = karras_sigmas(0.002, problem.sigma_max, args.steps)
    fast, samples_fast = run(structured, problem, x_T, sigmas)
    slow, samples_slow = run(full, problem, x_T, sigmas)
    levels = [float(s) for s in sigmas[:: max(1, args.steps // 5)]]
    print(f"d_x={args.dx} d_y={args.dy}: {args.n} chains x {args.steps} levels, K={structured.n_components}")
    print(f"  full matrices   {slow:8.2f} s")
    print(f"  isotropic       {fast:8.2f} s   speed-up x{slow / fast:.1f} (target >= 20)")
    shown = ", ".join(f"{s:.3g}" for s in levels)
    print(f"  guidance, largest relative difference over levels {shown}: "
          f"{guidance_difference(structured, full, problem, levels):.2e} (target <= 1e-10)")
    rel = float((samples_fast - samples_slow).norm() / samples_slow.norm())
    print(f"  final samples, relative difference: {rel:.2e}")


if __name__ == "__main__":
    main()
