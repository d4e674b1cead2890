"""The multistep ODE solvers against exact answers: the order of one step on the Gaussian ODE path
(given the exact history), the global order as started, one call a step, and mixture samples.

A step of order p from exact values errs by O(h^(p+1)): the fitted log-log slope of the local
error is p + 1 within 0.2. A wrong factor 2 on the third-order term of DPM-Solver++(3M) (the phi_3
of k-diffusion's sample_dpmpp_3m_sde) leaves the step second order, slope 3: outside the tolerance."""

import itertools
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
    _unipc_update,
    dpm_solver_pp,
    dpm_solver_pp_step,
    ipndm,
    ipndm_step,
    unipc,
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


def algorithm_2(denoiser, x, sigmas):
    """Lu et al.'s Algorithm 2 (DPM-Solver++(2M)) written out with alpha = 1, lambda = -log sigma:
    x_1 = (s_1 / s_0) x_0 - (e^{-h_1} - 1) D_0, then with r_i = h_{i-1} / h_i
    D_i' = (1 + 1 / (2 r_i)) D_i - D_{i-1} / (2 r_i), x_{i+1} = (s_{i+1} / s_i) x_i - (e^{-h} - 1) D_i';
    the last step, to 0, returns the denoiser's output."""
    levels = [float(s) for s in sigmas]
    previous, h_last = None, None
    for s, s_next in itertools.pairwise(levels):
        d = denoiser(x, s)
        if s_next == 0:
            return d
        h = math.log(s / s_next)
        combined = d if previous is None else (1 + h / (2 * h_last)) * d - h / (2 * h_last) * previous
        x = (s_next / s) * x - math.expm1(-h) * combined
        previous, h_last = d, h
    return x


@pytest.mark.parametrize("n", [3, 7, 15])
def test_dpm_solver_2m_is_algorithm_2_of_the_paper(n):
    """From the same start on EDM's levels, the exact denoiser of a 5-D mixture: 2M equals Algorithm 2
    written out by hand; the Taylor form (``solver_type="heun"``) is another method, which differs by
    far more than rounding at few steps."""
    g = torch.Generator().manual_seed(0)
    mixture = GaussianMixture(torch.tensor([0.6, 0.4], dtype=F64), 3 * torch.randn(2, 5, generator=g, dtype=F64), 0.3)
    denoiser, sigmas = MixtureDenoiser(mixture), karras_sigmas(0.002, 40.0, n)
    x_T = mixture.noised(40.0).sample(64, generator=g)
    ours = dpm_solver_pp(denoiser, x_T, sigmas, order=2).samples
    torch.testing.assert_close(ours, algorithm_2(denoiser, x_T, sigmas), rtol=1e-12, atol=1e-12)
    taylor = dpm_solver_pp(denoiser, x_T, sigmas, order=2, solver_type="heun").samples
    assert float((taylor - ours).abs().max()) > 1e-6


@pytest.mark.parametrize("solver_type", ["midpoint", "heun"])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_a_dpm_solver_step_from_the_exact_history_errs_by_h_to_the_order_plus_one(order, solver_type):
    t, hs, errors = 0.6, [0.05, 0.025, 0.0125, 0.00625], []  # Algorithm 2's h^3 term is small here: small h
    for h in hs:  # equal steps h in log-SNR time lambda = -ln sigma, ending at t
        levels = [t * math.exp(j * h) for j in range(1, order)]
        state = MultistepState(tuple(DENOISER(path(s), s) for s in levels), (h,) * (order - 1))
        x_next, _ = dpm_solver_pp_step(DENOISER, path(t), t, t * math.exp(-h), state, order, solver_type)
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


@pytest.mark.parametrize("corrected", [False, True], ids=["UniP", "UniC"])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_a_unipc_update_from_the_exact_history_has_its_order(order, corrected):
    """UniP-p errs by h^(p+1); UniC-p, given the exact output at the target as one more point, by
    h^(p+2) (Zhao et al. 2023, Theorems 3.1 and 3.2): the corrector raises the order by one."""
    t, hs, errors = 0.6, [0.05, 0.025, 0.0125, 0.00625], []
    for h in hs:
        levels = tuple(t * math.exp(j * h) for j in range(order))
        outputs = tuple(DENOISER(path(s), s) for s in levels)
        target = t * math.exp(-h)
        new = DENOISER(path(target), target) if corrected else None
        x_next = _unipc_update(path(t), outputs, levels, target, order, new_output=new)
        errors.append(float((x_next - path(target)).abs().max()))
    assert abs(slope(hs, errors) - (order + 1 + corrected)) < 0.2, errors


def test_unipc_2_is_second_order_as_started_and_closer_than_dpm_solver_2m():
    """Both start first order, so both are second order overall (fitted slopes 1.8 and 1.9 at 16 to
    128 steps); the corrector makes UniPC's error 2 to 2.4 times smaller at every step count."""
    fine = [16, 32, 64, 128]
    ours = endpoint_errors(lambda s: unipc(DENOISER, X0, s, order=2), fine)
    theirs = endpoint_errors(lambda s: dpm_solver_pp(DENOISER, X0, s, order=2), fine)
    assert -slope(fine, ours) > 1.7 and all(a < b / 1.8 for a, b in zip(ours, theirs)), (ours, theirs)


def endpoint_errors(sampler, steps) -> list[float]:
    s1 = 0.1
    return [float((sampler(torch.logspace(math.log10(S0), math.log10(s1), n + 1, dtype=F64)).samples
                   - path(s1)).abs().max()) for n in steps]


def test_dpm_solver_2m_is_second_order_and_the_higher_orders_as_started_too():
    """From the state alone (a first-order first step), the endpoint error of 2M (both forms) falls
    like N^-2; 3M and iPNDM(4) are second order overall as well. Each slope is fitted where its
    error is in its asymptotic range (iPNDM's is already 1e-5 at 64 steps)."""
    fine, coarse = [16, 32, 64, 128], [8, 16, 32, 64]
    for solver_type in ("midpoint", "heun"):
        second = endpoint_errors(lambda s, t=solver_type: dpm_solver_pp(DENOISER, X0, s, order=2, solver_type=t), fine)
        assert abs(-slope(fine, second) - 2) < 0.2, (solver_type, second)
    third = endpoint_errors(lambda s: dpm_solver_pp(DENOISER, X0, s, order=3), fine)
    fourth = endpoint_errors(lambda s: ipndm(DENOISER, X0, s), coarse)
    assert -slope(fine, third) > 1.7 and -slope(coarse, fourth) > 1.7, (third, fourth)


@pytest.mark.parametrize("sampler", [dpm_solver_pp, ipndm, unipc])
def test_one_denoiser_call_a_step_and_no_statistics(sampler):
    calls = []
    result = sampler(lambda x, sigma: calls.append(sigma) or DENOISER(x, sigma), X0, karras_sigmas(0.01, 3.0, 12))
    assert len(calls) == 12 and result.n_steps == 12 and result.mean is None


def mixture_2d() -> GaussianMixture:
    return GaussianMixture(torch.tensor([0.5, 0.3, 0.2], dtype=F64),
                           torch.tensor([[-3.0, 0.0], [3.0, 1.0], [0.0, 4.0]], dtype=F64),
                           torch.tensor([0.3, 0.5, 0.2], dtype=F64))


@pytest.mark.parametrize("sampler, order", [(dpm_solver_pp, 2), (dpm_solver_pp, 3), (ipndm, 4), (unipc, 2)])
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
    (lambda: unipc(DENOISER, X0, [1.0, 0.5, 0.0], order=4), "order: UniPC here has orders 1 to 3"),
    (lambda: dpm_solver_pp(DENOISER, X0, [1.0, 2.0, 0.0]), "strictly decreasing"),
    (lambda: dpm_solver_pp(DENOISER, X0, [1.0, 0.5, 0.0], solver_type="bh2"), "solver_type: expected one of"),
    (lambda: ipndm(UNet(width=4, sigma=0.5), torch.zeros(1, 1, 28, 28), [1.0, 0.0]), "trained at sigma = 0.5 only"),
])
def test_bad_arguments_are_refused_by_name(call, message):
    with pytest.raises(ValueError, match=message):
        call()
