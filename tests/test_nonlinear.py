"""Exact posteriors of nonlinear measurements on a 2-D mixture, by quadrature on a grid: the grid
is right where a closed form exists (a linear f), its metrics separate a posterior from the prior,
and the samplers that take a differentiable forward are measured on it."""

import pytest
import torch

from scoredae.eval.nonlinear import (
    FORWARDS,
    NonlinearProblem,
    evaluate_nonlinear,
    grid_tv,
    nonlinear_grid_problem,
)
from scoredae.inverse import pnp_dm
from scoredae.rng import seeded


def test_the_grid_posterior_of_a_linear_forward_is_the_closed_form():
    """f(x) = a^T x given as a callable: the grid's mean and covariance equal the mixture's exact
    posterior's to the midpoint rule's error (about step^2 / 12 = 2e-4 in a variance)."""
    base = nonlinear_grid_problem("phase", 0)
    a = torch.tensor([[0.6, 0.8]], dtype=torch.float64)
    y = base.x @ a.T + 0.5
    problem = NonlinearProblem("linear", base.prior, lambda x: x @ a.T, 0.5, y, base.x)
    exact = base.prior.posterior(y, 0.5, a)
    grid = problem.posterior
    mean = grid.masses @ grid.points
    cov = (grid.masses[:, None] * (grid.points - mean)).T @ (grid.points - mean)
    torch.testing.assert_close(mean, exact.mean()[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(cov, exact.cov()[0], atol=5e-4, rtol=0)


@pytest.mark.parametrize("forward", FORWARDS)
def test_the_grid_metrics_tell_the_posterior_from_the_prior(forward):
    """Exact draws sit at the floor (within three times it); draws of the prior, which ignore y,
    are far above it."""
    problem = nonlinear_grid_problem(forward, 0)
    exact = problem.posterior.sample(1024, generator=seeded(0, 7))[:, 0]
    prior = problem.prior.sample(1024, generator=seeded(0, 8))
    row = evaluate_nonlinear(lambda *args, generator: problem.posterior.sample(1024, generator=generator)[:, 0],
                             problem, n=1024, steps=2, name="exact")
    assert row["tv"] < 3 * row["tv_floor"] and row["sw"] < 3 * row["sw_floor"]
    assert grid_tv(problem.posterior, exact) < 3 * row["tv_floor"]
    assert grid_tv(problem.posterior, prior) > 0.5


def test_pnp_dm_is_measured_on_a_ring_of_solutions():
    """PnP-DM given |x| as a callable: its samples are on the ring (TV well below the prior's), the
    row counts its denoiser calls and Jacobian products."""
    problem = nonlinear_grid_problem("radius", 0)
    row = evaluate_nonlinear(pnp_dm, problem, n=256, steps=30)
    prior_tv = grid_tv(problem.posterior, problem.prior.sample(256, generator=seeded(0, 8)))
    assert row["tv"] < prior_tv - 0.3
    assert row["evaluations"] >= row["calls"] > 30
    with pytest.raises(ValueError, match="forward: expected one of"):
        nonlinear_grid_problem("square", 0)
