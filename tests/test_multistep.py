"""The multistep ODE solvers against exact answers: the order of one step on the Gaussian ODE path
(given the exact history), the global order as started, one call a step, and mixture samples.

A step of order p from exact values errs by O(h^(p+1)): the fitted log-log slope of the local
error is p + 1 within 0.2. A wrong factor 2 on the third-order term of DPM-Solver++(3M) (the phi_3
of k-diffusion's sample_dpmpp_3m_sde) leaves the step second order, slope 3: outside the tolerance."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from scoredae import GaussianMixture
from scoredae.mixtures import MixtureDenoiser
from scoredae.nets import UNet
from scoredae.sampling import karras_sigmas, ode_derivative
from scoredae.sampling.multistep import (
    MultistepState,
    dpm_solver_pp,
    dpm_solver_pp_step,
    ipndm,
    ipndm_step,
)

F64 = torch.float64
MU, S, S0 = torch.tensor([1.0, -2.0], dtype=F64), 0.5, 2.0
X0 = torch.tensor([[3.0, 1.0], [-1.0, 0.5]], dtype=F64)
DENOISER = MixtureDenoiser(GaussianMixture(torch.tensor([1.0], dtype=F64), MU[None], S**2))


def path(sigma: float) -> torch.Tensor:
    """The exact ODE path from X0 at S0: x(sigma) = mu + (x0 - mu) sqrt((s^2 + sigma^2) / (s^2 + s0^2))."""
    return MU + (X0 - MU) * math.sqrt((S**2 + sigma**2) / (S**2 + S0**2))


def slope(hs, errors) -> float:
    return float(np.polyfit(np.log(hs), np.log(errors), 1)[0])


@pytest.mark.parametrize("order", [1, 2, 3])
def test_a_dpm_solver_step_from_the_exact_history_errs_by_h_to_the_order_plus_one(order):
    t, hs, errors = 0.6, [0.2, 0.1, 0.05, 0.025], []
    for h in hs:  # equal steps h in log-SNR time lambda = -ln sigma, ending at t
        levels = [t * math.exp(j * h) for j in range(1, order)]
        state = MultistepState(tuple(DENOISER(path(s), s) for s in levels), (h,) * (order - 1))
        x_next, _ = dpm_solver_pp_step(DENOISER, path(t), t, t * math.exp(-h), state, order)
        errors.append(float((x_next - path(t * math.exp(-h))).abs().max()))
    assert abs(slope(hs, errors) - (order + 1)) < 0.2, errors


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_an_ipndm_step_from_the_exact_history_errs_by_h_to_the_order_plus_one(order):
    t, hs, errors = 0.6, [0.04, 0.02, 0.01, 0.005], []
    for h in hs:  # equal steps h in sigma, ending at t - h
        state = MultistepState(tuple(ode_derivative(DENOISER, path(t + j * h), t + j * h) for j in range(1, order)))
        x_next, _ = ipndm_step(DENOISER, path(t), t, t - h, state, order)
        errors.append(float((x_next - path(t - h)).abs().max()))
    assert abs(slope(hs, errors) - (order + 1)) < 0.2, errors


def endpoint_errors(sampler, steps) -> list[float]:
    s1 = 0.1
    return [float((sampler(torch.logspace(math.log10(S0), math.log10(s1), n + 1, dtype=F64)).samples
                   - path(s1)).abs().max()) for n in steps]


def test_dpm_solver_2m_is_second_order_and_the_higher_orders_as_started_too():
    """From the state alone (a first-order first step), the endpoint error of 2M falls like N^-2;
    3M and iPNDM(4) are second order overall as well, and below 2M at every N."""
    steps = [8, 16, 32, 64]
    second = endpoint_errors(lambda s: dpm_solver_pp(DENOISER, X0, s, order=2), steps)
    assert abs(-slope(steps, second) - 2) < 0.2, second
    for sampler in (lambda s: dpm_solver_pp(DENOISER, X0, s, order=3), lambda s: ipndm(DENOISER, X0, s)):
        errors = endpoint_errors(sampler, steps)
        assert -slope(steps, errors) > 1.7 and all(e < f for e, f in zip(errors, second)), (errors, second)


@pytest.mark.parametrize("sampler", [dpm_solver_pp, ipndm])
def test_one_denoiser_call_a_step_and_no_statistics(sampler):
    calls = []
    result = sampler(lambda x, sigma: calls.append(sigma) or DENOISER(x, sigma), X0, karras_sigmas(0.01, 3.0, 12))
    assert len(calls) == 12 and result.n_steps == 12 and result.mean is None


def mixture_2d() -> GaussianMixture:
    return GaussianMixture(torch.tensor([0.5, 0.3, 0.2], dtype=F64),
                           torch.tensor([[-3.0, 0.0], [3.0, 1.0], [0.0, 4.0]], dtype=F64),
                           torch.tensor([0.3, 0.5, 0.2], dtype=F64))


@pytest.mark.parametrize("sampler, order", [(dpm_solver_pp, 2), (dpm_solver_pp, 3), (ipndm, 4)])
def test_twenty_steps_from_exact_noise_sample_the_mixture(sampler, order):
    """Mode weights within 3 binomial standard errors and KS tests on three projections against
    exact samples at p > 0.01, from exact samples of p_sigma_max and 20 calls."""
    mixture, n, sigma_max = mixture_2d(), 4000, 20.0
    g = torch.Generator().manual_seed(1)
    x_T = mixture.noised(sigma_max).sample(n, generator=g)
    out = sampler(MixtureDenoiser(mixture), x_T, karras_sigmas(0.002, sigma_max, 20), order=order).samples
    exact = mixture.sample(n, generator=g)
    nearest = ((out[:, None] - mixture.means).square().sum(2)).argmin(1)
    shares = torch.bincount(nearest, minlength=3).double() / n
    se = (mixture.weights * (1 - mixture.weights) / n).sqrt()
    assert bool(((shares - mixture.weights).abs() < 3 * se).all()), shares
    for k in range(3):
        v = torch.randn(2, generator=torch.Generator().manual_seed(100 + k), dtype=F64)
        assert stats.ks_2samp((out @ v).numpy(), (exact @ v).numpy()).pvalue > 0.01


@pytest.mark.parametrize("call, message", [
    (lambda: dpm_solver_pp(DENOISER, X0, [1.0, 0.5, 0.0], order=4), r"order: DPM-Solver\+\+ has orders 1, 2"),
    (lambda: ipndm(DENOISER, X0, [1.0, 0.5, 0.0], order=5), "order: iPNDM has orders 1 to 4"),
    (lambda: dpm_solver_pp(DENOISER, X0, [1.0, 2.0, 0.0]), "strictly decreasing"),
    (lambda: ipndm(UNet(width=4, sigma=0.5), torch.zeros(1, 1, 28, 28), [1.0, 0.0]), "trained at sigma = 0.5 only"),
])
def test_bad_arguments_are_refused_by_name(call, message):
    with pytest.raises(ValueError, match=message):
        call()
