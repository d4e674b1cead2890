"""MCGdiff and FPS, the particle filters in the operator's spectral domain: MCGdiff against the
exact posterior and evidence of a two-component mixture, its pinned levels, its noiseless form,
FPS's documented concentration, and their bad input."""

import math

import pytest
import torch

from scoredae.inverse.filtering import fps, mcgdiff
from scoredae.mixtures import GaussianMixture, MixtureDenoiser
from scoredae.sampling.edm import karras_sigmas

F64 = torch.float64
A = torch.tensor([[0.5, 0.3]], dtype=F64)
SY = 0.3
Y = torch.tensor([[0.4]], dtype=F64)
SIGMAS = karras_sigmas(0.002, 80.0, 200)


def _problem():
    prior = GaussianMixture(torch.tensor([0.3, 0.7], dtype=F64), torch.tensor([[-2.0, 0.0], [2.0, 0.0]], dtype=F64), 1.0)
    return prior, MixtureDenoiser(prior), prior.posterior(Y, SY, A)


def _run(sampler, seed, n=4096, noise_sigma=SY, **options):
    prior, denoiser, _ = _problem()
    gen = torch.Generator().manual_seed(seed)
    x_T = prior.noised(80.0).sample(n, generator=gen)
    return sampler(denoiser, Y, A, noise_sigma, x_T, SIGMAS, generator=gen, **options)


def test_mcgdiff_samples_the_posterior_and_estimates_the_evidence():
    """Along the observed direction u the exact posterior has mean 0.856 and variance 0.240 (200,000
    exact draws); over seeds 0-3 MCGdiff's 4,096 particles gave means within 0.025 (standard error
    with resampling about 0.01), variances 0.206-0.217 (the ancestral kernel's own narrowing below
    the pinned level) and log evidence within 0.12 nats. A wrong factor of 2 in the evidence is 0.69
    nats; in the variance, a factor 2."""
    _, _, posterior = _problem()
    u = A[0] / A[0].norm()
    exact = posterior.sample(200_000, generator=torch.Generator().manual_seed(9))[:, 0] @ u
    result = _run(mcgdiff, 0)
    along = result.samples @ u
    assert abs(float(along.mean() - exact.mean())) < 0.06
    assert 0.75 < float(along.var() / exact.var()) < 1.15
    assert abs(float(result.state.log_evidence - posterior.log_evidence[0])) < 0.3
    assert result.state.ess.shape == (len(SIGMAS),)  # one level inserted: nu = sigma_y / s


def test_mcgdiff_inserts_the_observation_level_or_pins_at_the_nearest():
    from scoredae.eval.counting import CountingDenoiser

    prior, denoiser, _ = _problem()
    x_T = prior.noised(80.0).sample(64, generator=torch.Generator().manual_seed(0))
    for pin, extra in (("insert", 1), ("nearest", 0)):
        counted = CountingDenoiser(denoiser)
        mcgdiff(counted, Y, A, SY, x_T, SIGMAS, pin=pin, generator=torch.Generator().manual_seed(1))
        assert counted.calls == len(SIGMAS) - 1 + extra


def test_noiseless_mcgdiff_meets_the_observation_up_to_the_last_level():
    """With sigma_y = 0 every particle is pinned to A x = y at the last level above 0 (0.002); the
    final denoising moves it by about that level."""
    result = _run(mcgdiff, 1, n=256, noise_sigma=0.0)
    residual = (result.samples @ A.T - Y).abs().max()
    assert float(residual) < 0.01


def test_fps_concentrates_on_its_observation_path():
    """FPS counts the observation at every level (its docstring): the variance along the observed
    direction is far below the exact 0.24, while the unobserved direction keeps the prior's spread."""
    result = _run(fps, 0)
    u = A[0] / A[0].norm()
    along, across = result.samples @ u, result.samples @ torch.tensor([-u[1], u[0]])
    assert float(along.var()) < 0.05
    assert float(across.var()) > 0.5


def test_the_filters_refuse_bad_input():
    prior, denoiser, _ = _problem()
    x_T = prior.noised(80.0).sample(8, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="pin: expected 'insert' or 'nearest'"):
        mcgdiff(denoiser, Y, A, SY, x_T, SIGMAS, pin="tau")
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="resample_below"):
            fps(denoiser, Y, A, SY, x_T, SIGMAS, resample_below=bad)
    with pytest.raises(ValueError, match="noise_sigma: .*sigma_y > 0"):
        fps(denoiser, Y, A, 0.0, x_T, SIGMAS)
    with pytest.raises(ValueError, match="forward: this method needs the SVD"):
        mcgdiff(denoiser, Y, (lambda v: v @ A.T, lambda r: r @ A), SY, x_T, SIGMAS)
    with pytest.raises(ValueError, match="x_T: expected at least 2 particles"):
        fps(denoiser, Y, A, SY, x_T[:1], SIGMAS)
    with pytest.raises(ValueError, match="y: the particles share one observation"):
        mcgdiff(denoiser, torch.randn(8, 1, dtype=F64), A, SY, x_T, SIGMAS)
    with pytest.raises(ValueError, match="sigmas: the observation's noise .* is not below the first level"):
        mcgdiff(denoiser, Y, A, 100.0, x_T, SIGMAS)  # sigma_y / s = 171 > 80


# --- DAPS: MCMC on the clean image inside the diffusion ---

def test_daps_one_level_by_hand():
    """Levels (sigma0, 0), one ODE step (x_hat = D), two Langevin steps at eta = step / L with
    L = ||A||^2 / sigma_y^2 + 1 / sigma0^2, the noise drawn in order from the same generator."""
    from scoredae.inverse.annealed_mcmc import daps
    from scoredae.rng import randn

    prior, denoiser, _ = _problem()
    x = prior.noised(3.0).sample(5, generator=torch.Generator().manual_seed(2))
    sigma0, step = 3.0, 0.7
    out = daps(denoiser, Y, A, SY, x, [sigma0, 0.0], ode_steps=1, langevin_steps=2, step_size=step,
               generator=torch.Generator().manual_seed(4)).samples
    gen = torch.Generator().manual_seed(4)
    x_hat = denoiser(x, sigma0)
    eta = step / (float(torch.linalg.matrix_norm(A, ord=2)) ** 2 / SY**2 + 1 / sigma0**2)
    z = x_hat
    for _ in range(2):
        grad = (z @ A.T - Y) @ A / SY**2 + (z - x_hat) / sigma0**2
        z = z - eta * grad + (2 * eta) ** 0.5 * randn(z.shape, gen, dtype=F64)
    torch.testing.assert_close(out, z, rtol=1e-12, atol=1e-12)


def test_the_operator_norm_by_power_iteration_matches_the_svd():
    from scoredae.inverse.annealed_mcmc import squared_norm
    from scoredae.inverse.operators import linear_operator

    M = torch.randn(3, 5, generator=torch.Generator().manual_seed(1), dtype=F64)
    like = torch.zeros(2, 5, dtype=F64)
    exact = float(torch.linalg.matrix_norm(M, ord=2)) ** 2
    assert abs(squared_norm(linear_operator(M, like), like) - exact) < 1e-10 * exact
    pair = linear_operator((lambda v: v @ M.T, lambda r: r @ M), like)
    assert abs(squared_norm(pair, like) - exact) < 1e-6 * exact


# --- PnP-DM: split Gibbs with an exact likelihood step ---

def test_pnp_dm_at_a_fixed_coupling_samples_the_inflated_posterior():
    """At fixed rho the x-marginal of PnP-DM's split Gibbs target is the posterior with the noise
    inflated to sigma_y^2 + rho^2 ||A||^2 (a one-row A): at rho = 1, 30 iterations and 4,096 chains,
    the share of the right-hand mode came out 0.871 against the exact 0.860 (binomial standard error
    0.005), the mean of x_1 1.28 against 1.26. A wrong inflation by a factor of 2 moves the share by
    more than 0.03."""
    from scoredae.inverse.annealed_mcmc import pnp_dm

    prior, denoiser, _ = _problem()
    rho = 1.0
    inflated = prior.posterior(Y, (SY**2 + rho**2 * float(A.norm()) ** 2) ** 0.5, A)
    gen = torch.Generator().manual_seed(0)
    x_T = prior.noised(80.0).sample(4096, generator=gen)
    samples = pnp_dm(denoiser, Y, A, SY, x_T, SIGMAS, rho_max=rho, rho_min=rho, iterations=30, generator=gen).samples
    exact = inflated.sample(100_000, generator=torch.Generator().manual_seed(1))[:, 0]
    share = lambda x: float((x[:, 0] > 0).to(F64).mean())
    assert abs(share(samples) - share(exact)) < 0.03
    assert abs(float(samples[:, 0].mean() - exact[:, 0].mean())) < 0.1


def test_dpnp_is_split_gibbs_on_its_own_schedule():
    """With one coupling throughout, DPnP and PnP-DM are the same chain, draw for draw."""
    from scoredae.inverse.annealed_mcmc import dpnp, pnp_dm

    prior, denoiser, _ = _problem()
    x_T = prior.noised(80.0).sample(64, generator=torch.Generator().manual_seed(0))
    run = lambda sampler, **kw: sampler(denoiser, Y, A, SY, x_T, SIGMAS, generator=torch.Generator().manual_seed(1),
                                        iterations=6, **kw).samples
    torch.testing.assert_close(run(dpnp, eta_max=0.7, eta_min=0.7, hold=2),
                               run(pnp_dm, rho_max=0.7, rho_min=0.7), rtol=0, atol=0)
    assert not torch.equal(run(dpnp, eta_max=0.7, eta_min=0.3, hold=2), run(pnp_dm, rho_max=0.7, rho_min=0.7))


# --- MGPS: a Gaussian fitted at a midpoint level ---

def test_mgps_objective_is_the_misfit_plus_the_gaussian_kl():
    """The loss of one fit, by hand for a linear denoiser D(x) = h x: the misfit of D at the drawn
    x_l = mu + e^lambda z, plus KL(N(mu, e^{2 lambda}) || N(m, s^2)) without its constant."""
    from scoredae.inverse.operators import linear_operator
    from scoredae.inverse.variational import _midpoint_loss

    gen = torch.Generator().manual_seed(3)
    mean, log_std, prior_mean = (torch.randn(5, 2, generator=gen, dtype=F64) for _ in range(3))
    h, prior_var, sigma_mid = 0.6, 0.8, 0.5
    denoiser = lambda x, sigma: h * x
    loss = _midpoint_loss(denoiser, linear_operator(A, mean), Y, SY, mean, log_std, prior_mean, prior_var, sigma_mid,
                          torch.Generator().manual_seed(4))
    z = torch.randn(5, 2, generator=torch.Generator().manual_seed(4), dtype=F64)
    x_mid = mean + log_std.exp() * z
    misfit = ((h * x_mid) @ A.T - Y).square().sum() / (2 * SY**2)
    kl = sum(0.5 * (float(v) ** 2 / prior_var + float(d) ** 2 / prior_var - 1 - math.log(float(v) ** 2 / prior_var))
             for v, d in zip(log_std.exp().flatten(), (mean - prior_mean).flatten()))
    constant = 0.5 * mean.numel() * (math.log(prior_var) - 1)  # the KL's terms free of mu and lambda
    assert abs(float(loss) - (float(misfit) + kl - constant)) < 1e-10 * abs(float(loss))


def test_mgps_takes_the_authors_gradient_steps():
    from scoredae.inverse.variational import _gradient_steps

    steps = [_gradient_steps(i, 100, 2, 20) for i in range(1, 101)]
    assert steps[:10] == [20] * 10 and steps[10:19] == [2] * 9 and steps[19] == 20  # i = 20: 80 levels to go
    assert steps[80:] == [2] * 20 and sum(s == 20 for s in steps) == 10 + 7


# --- DCPS: blocks of intermediate posteriors ---

def test_dcps_langevin_step_at_a_block_top_by_hand():
    """One tamed Langevin step for a linear denoiser D(x) = h x, by hand: the gradient of
    log g(m(x)) with m(x) = (h + r (1 - h)) x, r = sigma_b^2 / sigma^2, plus the score (h - 1) x / sigma^2,
    a step gamma / (1 + gamma s |grad|) and noise sqrt(2 gamma) in units s = sqrt(1 + sigma^2)."""
    from scoredae.inverse.divide_conquer import _blocks, _langevin_at_block_top
    from scoredae.rng import randn

    assert _blocks(100, 3) == [0, 33, 67, 100]
    h, sigma, sigma_low, gamma = 0.7, 2.0, 0.5, 1e-2
    x = torch.randn(3, 2, generator=torch.Generator().manual_seed(5), dtype=F64)
    potential = lambda u: -((u @ A.T) - Y).square().sum() / (2 * SY**2 * (1 + sigma_low**2))
    out = _langevin_at_block_top(lambda v, s: h * v, x, sigma, potential, sigma_low, 1, gamma,
                                 torch.Generator().manual_seed(6))
    c = h + sigma_low**2 / sigma**2 * (1 - h)
    grad = -c * ((c * x) @ A.T - Y) @ A / (SY**2 * (1 + sigma_low**2)) + (h - 1) * x / sigma**2
    s = math.sqrt(1 + sigma**2)
    step = gamma / (1 + gamma * s * grad.norm(dim=1, keepdim=True))
    z = randn(x.shape, torch.Generator().manual_seed(6), dtype=F64)
    torch.testing.assert_close(out, x + s**2 * step * grad + s * math.sqrt(2 * gamma) * z, rtol=1e-12, atol=1e-12)


def test_mcgdiff_runs_on_images_through_a_deepinv_mask():
    """Images (B, 1, 4, 4) and deepinv's Inpainting: the evidence constant is computed per image
    (shape (1, 1, 4, 4)), and the seen pixels end on the observation up to its noise."""
    import deepinv

    prior = GaussianMixture(torch.tensor([0.5, 0.5], dtype=F64), torch.stack([torch.full((16,), -1.0, dtype=F64),
                                                                               torch.full((16,), 1.0, dtype=F64)]), 0.2)
    mask = (torch.arange(16) % 2 == 0).reshape(1, 1, 4, 4).to(F64)
    physics = deepinv.physics.Inpainting(img_size=(1, 4, 4), mask=mask)
    x = prior.sample(1, generator=torch.Generator().manual_seed(0)).reshape(1, 1, 4, 4)
    y = physics(x) + 0.01 * torch.randn(1, 1, 4, 4, generator=torch.Generator().manual_seed(1), dtype=F64) * mask
    gen = torch.Generator().manual_seed(2)
    x_T = prior.noised(80.0).sample(64, generator=gen).reshape(64, 1, 4, 4)
    result = mcgdiff(MixtureDenoiser(prior), y, physics, 0.01, x_T, SIGMAS, generator=gen)
    assert torch.isfinite(result.state.log_evidence)
    assert float(((result.samples - y) * mask).abs().max()) < 0.1


# --- a nonlinear forward(x): DPS, DAPS, RED-diff, PnP-DM ---

def _as_callable(matrix):
    return lambda x: x @ matrix.T


def test_a_linear_map_given_as_a_callable_runs_the_same_chains():
    """forward(x) = A x as a plain callable goes through autograd (J^T r) where the matrix goes
    through A^T: the same DPS chain to 1e-10, and DAPS's to 1e-8 (its ||A||^2 then comes from power
    iteration at each level, exact for a one-row A)."""
    from scoredae.inverse import daps, dps

    prior, denoiser, _ = _problem()
    x_T = prior.noised(80.0).sample(32, generator=torch.Generator().manual_seed(0))
    for sampler, tol in ((dps, 1e-10), (daps, 1e-8)):
        runs = [sampler(denoiser, Y, forward, SY, x_T, SIGMAS[::10].contiguous(),
                        generator=torch.Generator().manual_seed(1)).samples for forward in (_as_callable(A), A)]
        torch.testing.assert_close(*runs, rtol=tol, atol=tol)


def test_langevin_likelihood_step_samples_the_gaussian_it_replaces():
    """For f(z) = A z the likelihood step's target is N(m, C), C = (A^T A / sy^2 + I / rho^2)^{-1}:
    20,000 chains of 600 Langevin steps at a tenth of 1/L. The chain's own bias in the variance is
    below 3% at that step, the Monte Carlo error about 1%; a wrong factor 2 in either term of the
    precision moves the variance along the observed direction by more than 20%."""
    from scoredae.inverse.annealed_mcmc import _langevin_likelihood_step
    from scoredae.inverse.operators import NonlinearForward

    rho, n = 1.0, 20_000
    x = torch.tensor([[1.0, -0.5]], dtype=F64).expand(n, 2)
    precision = A.T @ A / SY**2 + torch.eye(2, dtype=F64) / rho**2
    cov = torch.linalg.inv(precision)
    mean = (cov @ (A.T @ Y.T / SY**2 + x[:1].T / rho**2)).flatten()
    z = _langevin_likelihood_step(NonlinearForward(_as_callable(A)), Y, SY, x, rho, 600, 0.1,
                                  torch.Generator().manual_seed(3))
    u = A[0] / A[0].norm()
    assert float((z.mean(0) - mean).abs().max()) < 5 * float(torch.diagonal(cov).max().sqrt()) / n**0.5
    assert abs(float((z @ u).var() / (u @ cov @ u)) - 1) < 0.06


def test_red_diff_and_pnp_dm_fit_a_nonlinear_observation_and_the_linear_methods_refuse_it():
    """y = |x|^2 + noise (a radius): RED-diff's point and PnP-DM's samples end near the circle;
    the methods that need A^T or an SVD refuse a callable by name."""
    from scoredae.inverse import ddrm, mcgdiff, pnp_dm, red_diff

    prior, denoiser, _ = _problem()
    radius = lambda x: x.square().sum(1, keepdim=True)
    y = torch.tensor([[4.0]], dtype=F64)
    x_T = prior.noised(80.0).sample(64, generator=torch.Generator().manual_seed(0))
    mu = red_diff(denoiser, y, radius, 0.1, x_T, SIGMAS, generator=torch.Generator().manual_seed(1)).samples
    assert float((radius(mu) - y).abs().median()) < 0.3
    z = pnp_dm(denoiser, y, radius, 0.1, x_T, SIGMAS, rho_max=2.0, rho_min=0.05, iterations=30,
               likelihood_steps=50, generator=torch.Generator().manual_seed(2)).samples
    assert float((radius(z) - y).abs().median()) < 0.5
    for sampler in (ddrm, mcgdiff):
        with pytest.raises(TypeError, match="forward: this method needs a linear operator"):
            sampler(denoiser, y, radius, 0.1, x_T, SIGMAS)


BAD_OPTIONS = [  # (sampler, options, what the error names)
    ("daps", {"step_size": 2.0}, "step_size: expected a fraction of 1 / L in \\(0, 2\\)"),
    ("daps", {"langevin_steps": 0}, "langevin_steps"),
    ("daps", {"step_decay": 1.5}, "step_decay"),
    ("pnp_dm", {"rho_min": 2.0, "rho_max": 1.0}, "rho_min, rho_max: expected 0 < rho_min <= rho_max"),
    ("pnp_dm", {"decay": 1.2}, "decay"),
    ("pnp_dm", {"iterations": 0}, "iterations"),
    ("pnp_dm", {"step_size": 2.5}, "step_size"),
    ("dpnp", {"hold": 6, "iterations": 6}, "hold: expected 0 <= hold < iterations"),
    ("dpnp", {"eta_min": 2.0, "eta_max": 1.0}, "eta_min, eta_max"),
    ("mgps", {"midpoint": 1.5}, "midpoint"),
    ("mgps", {"gradient_steps": 0}, "gradient_steps"),
    ("dcps", {"gradient_steps": 0}, "gradient_steps"),
    ("dcps", {"lr": 0.0}, "lr"),
    ("dcps", {"langevin_steps": -1}, "langevin_steps"),
    ("dcps", {"blocks": 0}, "blocks"),
]


@pytest.mark.parametrize(("name", "options", "match"), BAD_OPTIONS)
def test_bad_options_are_refused_by_name(name, options, match):
    import scoredae.inverse

    prior, denoiser, _ = _problem()
    x_T = prior.noised(80.0).sample(4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=match):
        getattr(scoredae.inverse, name)(denoiser, Y, A, SY, x_T, SIGMAS, **options)
