"""The leaderboard's accounting: what each sampler asks of the denoiser (calls, vector-Jacobian and
Jacobian-vector products), the budget probe that sets its levels, and a reader's own sampler."""

import itertools

import pytest
import torch

from scoredae.eval import evaluate, grid_mixture_problem, leaderboard_rows, levels_for_budget
from scoredae.eval.counting import CountingDenoiser
from scoredae.eval.exact_posterior import benchmark_samplers
from scoredae.eval.leaderboard import evaluations_at
from scoredae.mixtures import MixtureDenoiser
from scoredae.uncertainty import denoise_with_pullback, jacobian_vp

F64 = torch.float64


def test_the_counting_denoiser_counts_products_by_kind():
    problem = grid_mixture_problem(4, 1, 0)
    counted = CountingDenoiser(MixtureDenoiser(problem.prior))
    x = problem.prior.sample(3, generator=torch.Generator().manual_seed(0))
    counted(x, 1.0)
    _, pullback = denoise_with_pullback(counted, x, 1.0)
    pullback(torch.ones_like(x))
    jacobian_vp(counted, x, 1.0, torch.ones(2, *x.shape, dtype=F64))  # two forward-mode products
    assert (counted.calls, counted.vjps, counted.jvps, counted.evaluations) == (4, 1, 2, 7)


def test_the_budget_probe_counts_what_a_run_spends():
    """The probe runs with the zero denoiser; every sampler asks it for what it asks the exact one."""
    problem = grid_mixture_problem(8, 2, 0)
    for name, sampler in benchmark_samplers(problem).items():
        row = evaluate(sampler, problem, 4, 12, 0, name=name)
        assert row["evaluations"] == evaluations_at(sampler, problem, 12), name


def test_levels_for_budget_is_the_most_that_fit():
    problem = grid_mixture_problem(8, 1, 0)
    samplers = benchmark_samplers(problem)
    assert levels_for_budget(samplers["ddrm"], problem, 100) == 100  # one evaluation a level
    assert levels_for_budget(samplers["dps"], problem, 100) == 50  # a call and its product
    steps = levels_for_budget(samplers["tmpd"], problem, 100)
    assert evaluations_at(samplers["tmpd"], problem, steps) <= 100 < evaluations_at(samplers["tmpd"], problem, steps + 1)
    with pytest.raises(ValueError, match="budget: this sampler needs 120 network evaluations"):
        levels_for_budget(samplers["pnp_dm"], problem, 100)


def test_a_readers_sampler_returning_a_tensor_gets_its_rows():
    """Any callable of the signature: here the exactly guided chain's cheap cousin, the prior's own
    ancestral chain (which ignores y), gets a row at its default and at a budget. It misses the
    posterior's modes (mode TV 0.76 at 40 levels and 256 samples) where the oracle is within the
    Monte Carlo error of 256 draws over 25 modes (0.10; about 0.1 expected of exact draws)."""

    @torch.no_grad()
    def prior_only(denoiser, y, forward, noise_sigma, x_T, sigmas, *, generator=None):
        x, levels = x_T, sigmas.tolist()
        for sigma, sigma_next in itertools.pairwise(levels):
            d = denoiser(x, sigma)
            x = d + sigma_next / sigma * (x - d)
        return x

    problem = grid_mixture_problem(8, 1, 0)
    rows = leaderboard_rows({"prior_only": prior_only, "oracle": benchmark_samplers(problem)["oracle"]},
                            [(8, 1, 0, problem)], budgets=(40,), n=256)
    mine = {r["budget"]: r for r in rows if r["sampler"] == "prior_only"}
    oracle = {r["budget"]: r for r in rows if r["sampler"] == "oracle"}
    assert mine[40]["evaluations"] == 40 and mine["default"]["evaluations"] == 100
    assert mine[40]["mode_tv"] > 0.5
    assert oracle[40]["mode_tv"] < 0.2


def test_the_protocols_draw_the_papers_problems():
    """TMPD's: equal weights and the given noise; MGPS's: a Gaussian matrix as drawn; MCGdiff's:
    singular values in (0, 1) and the noise below the largest."""
    from scoredae.eval.exact_posterior import grid_mixture_problem as problem

    tmpd = problem(8, 2, 0, protocol="tmpd", noise_sigma=0.5)
    assert torch.allclose(tmpd.prior.weights, torch.full((25,), 1 / 25, dtype=F64)) and tmpd.noise_sigma == 0.5
    mgps = problem(8, 2, 0, protocol="mgps")
    gen = torch.Generator().manual_seed(0)
    torch.rand(25, generator=gen, dtype=F64)
    torch.testing.assert_close(mgps.A, torch.randn(2, 8, generator=gen, dtype=F64))
    mcgdiff = problem(8, 2, 0)
    s = torch.linalg.svdvals(mcgdiff.A)
    assert bool((s < 1).all()) and 0 < mcgdiff.noise_sigma < float(s.max())
    with pytest.raises(ValueError, match="protocol: expected one of"):
        problem(8, 2, 0, protocol="dps")


def test_max_sliced_wasserstein_is_the_largest_projected_w1():
    """Two Gaussians shifted by 3 along the first axis: the largest projected W1 is near 3 (the
    directions closest to that axis), the mean sliced W2 far below it; identical sets give 0."""
    from scoredae.eval import max_sliced_wasserstein, sliced_wasserstein

    gen = torch.Generator().manual_seed(0)
    a = torch.randn(4000, 3, generator=gen, dtype=F64)
    b = torch.randn(4000, 3, generator=gen, dtype=F64) + torch.tensor([3.0, 0.0, 0.0], dtype=F64)
    assert 2.7 < max_sliced_wasserstein(a, b, 200, generator=gen) <= 3.1
    assert sliced_wasserstein(a, b, generator=gen) < 2.2
    assert max_sliced_wasserstein(a, a.clone(), generator=gen) == 0.0
