"""The exactly guided chain (the oracle of the posterior benchmark) with the prior's structure kept,
against the same prior held by full (K, d, d) matrices, in one run: seconds of the whole chain and
the largest relative difference of the guidance term, the noised likelihood's gradient, at the
chain's start and at draws of the noised posterior at a few levels. Two priors:

* ``grid``: the grid problem at d_x = 800 (isotropic components), 1,024 chains, 100 levels;
  target: at least 20 times faster;
* ``factor``: a mixture of K = 100 factor analysers of rank 16 at d = 784 (a digit's size), the
  measurement half of the coordinates (a mask) at sigma_y = 0.05, 1,000 chains, 100 levels;
  target: under a minute on two cores.

Results equal to 1e-10.

    python benchmarks/bench_exact_oracle.py [--prior grid|factor] [--dx 800] [--dy 2] [--n 1024] [--steps 100]
"""

import argparse
import time

import torch

from scoredae import GaussianMixture
from scoredae.eval.exact_posterior import MixtureProblem, grid_mixture_problem, oracle
from scoredae.mixtures import LowRank, MixtureDenoiser
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


def factor_problem(d: int = 784, k: int = 100, rank: int = 16, noise_sigma: float = 0.05) -> MixtureProblem:
    """A random mixture of factor analysers in [0, 1]-like units and half its coordinates observed."""
    gen = torch.Generator().manual_seed(0)
    means = torch.rand(k, d, generator=gen)
    factors = 0.1 * torch.randn(k, d, rank, generator=gen)
    prior = GaussianMixture(torch.full((k,), 1 / k), means, LowRank(factors, 0.01 * torch.rand(k, d, generator=gen) + 1e-3))
    A = torch.eye(d)[torch.randperm(d, generator=gen)[: d // 2].sort().values]
    x = prior.sample(1, generator=gen)
    y = x @ A.T + noise_sigma * torch.randn(1, d // 2, generator=gen)
    return MixtureProblem(prior, A, noise_sigma, y, x, sigma_max=80.0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prior", choices=("grid", "factor"), default="grid",
                        help="the grid problem or the factor analysers at d = 784 (default grid)")
    parser.add_argument("--dx", type=int, default=800, help="dimension of the grid problem (even; default 800)")
    parser.add_argument("--dy", type=int, default=2, help="measurements of the grid problem (default 2)")
    parser.add_argument("--n", type=int, default=None, help="chains (default 1024 grid, 1000 factor)")
    parser.add_argument("--steps", type=int, default=100, help="levels (default 100)")
    parser.add_argument("--full-steps", type=int, default=None,
                        help="levels of the chain run both ways, for the ratio (default: --steps for grid, "
                             "10 for factor, whose full path takes about 16 s a level)")
    args = parser.parse_args(argv)
    torch.set_default_dtype(torch.float64)
    grid = args.prior == "grid"
    problem = grid_mixture_problem(args.dx, args.dy, 0) if grid else factor_problem()
    structured = problem.prior
    full = GaussianMixture(structured.weights, structured.means, structured.covs)  # (K, d, d) matrices
    n = args.n or (1024 if grid else 1000)
    x_T = structured.noised(problem.sigma_max).sample(n, generator=torch.Generator().manual_seed(0))
    sigmas = karras_sigmas(0.002, problem.sigma_max, args.steps)
    compared = karras_sigmas(0.002, problem.sigma_max, args.full_steps or (args.steps if grid else 10))
    print(f"{args.prior}: d_x={structured.dim} d_y={problem.A.shape[0]}, {n} chains, K={structured.n_components}, "
          f"{torch.get_num_threads()} threads")
    fast, _ = run(structured, problem, x_T, sigmas)
    print(f"  structured, {args.steps} levels: {fast:8.2f} s" + ("" if grid else "   (target: under 60 s)"))
    fast, samples_fast = run(structured, problem, x_T, compared)
    slow, samples_slow = run(full, problem, x_T, compared)
    print(f"  {len(compared)} levels: full matrices {slow:.2f} s, structured {fast:.2f} s, speed-up x{slow / fast:.1f}"
          + (" (target >= 20)" if grid else ""))
    levels = [float(s) for s in compared[:: max(1, len(compared) // 5)]]
    shown = ", ".join(f"{s:.3g}" for s in levels)
    print(f"  guidance, largest relative difference over levels {shown}: "
          f"{guidance_difference(structured, full, problem, levels):.2e} (target <= 1e-10)")
    rel = float((samples_fast - samples_slow).norm() / samples_slow.norm())
    print(f"  final samples, relative difference: {rel:.2e}")


if __name__ == "__main__":
    main()
