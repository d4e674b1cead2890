"""The leaderboard's accounting: what each sampler asks of the denoiser (calls, vector-Jacobian and
Jacobian-vector products), the budget probe that sets its levels, and a reader's own sampler."""

import itertools

import pytest
import torch

from scoredae.eval import evaluate, grid_mixture_problem, leaderboard_rows, levels_for_budget
from scoredae.eval.exact_posterior import CountingDenoiser, benchmark_samplers
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
