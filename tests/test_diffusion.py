"""EDM's samplers against exact answers: the Gaussian ODE path and the orders of Euler and Heun, the
monotone 1-D mixture map, and samples of 2-D and 8-D mixtures (float64; tolerances from the
discretisation and Monte Carlo errors)."""

import math

import numpy as np
import pytest
import torch
from scipy import optimize, stats

from scoredae import GaussianMixture, denoiser_from_score
from scoredae.inverse import kadkhodaie_simoncelli_constrained
from scoredae.mixtures import MixtureDenoiser
from scoredae.nets import UNet
from scoredae.sampling import (
    bits_per_dim,
    edm_sampler,
    kadkhodaie_simoncelli,
    karras_sigmas,
    pf_ode_log_likelihood,
)

F64 = torch.float64


class Counting:
    """A denoiser that counts its calls."""

    def __init__(self, denoiser):
        self.denoiser, self.calls = denoiser, 0

    def __call__(self, x, sigma):
        self.calls += 1
        return self.denoiser(x, sigma)


def test_karras_sigmas_follow_eq_5():
    t = karras_sigmas(0.002, 80.0, 18)
    assert t.shape == (19,) and t.dtype == F64
    assert t[0] == pytest.approx(80.0) and t[17] == pytest.approx(0.002) and t[18] == 0
    assert bool((t[1:] < t[:-1]).all())
    i = 5
    assert t[i] == pytest.approx((80 ** (1 / 7) + i / 17 * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7)
    assert torch.allclose(karras_sigmas(1.0, 3.0, 3, rho=1.0), torch.tensor([3.0, 2.0, 1.0, 0.0], dtype=F64))


def gaussian():
    mu, s = torch.tensor([[1.0, -2.0]], dtype=F64), 0.5
    return GaussianMixture(torch.tensor([1.0], dtype=F64), mu, s**2), mu[0], s


@pytest.mark.parametrize("solver, order", [("euler", 1), ("heun", 2)])
def test_gaussian_endpoint_error_falls_with_the_order_of_the_solver(solver, order):
    """x(sigma) = mu + (x0 - mu) sqrt((s^2 + sigma^2) / (s^2 + sigma0^2)) exactly; the endpoint error of
    N steps falls like N^-order: the fitted log-log slope within 0.2 of -order."""
    mixture, mu, s = gaussian()
    x0 = torch.tensor([[3.0, 1.0], [-1.0, 0.5]], dtype=F64)
    s0, s1 = 2.0, 0.1
    exact = mu + (x0 - mu) * math.sqrt((s**2 + s1**2) / (s**2 + s0**2))
    steps = [8, 16, 32, 64]
    errors = []
    for n in steps:
        sigmas = torch.logspace(math.log10(s0), math.log10(s1), n + 1, dtype=F64)
        errors.append(float((edm_sampler(MixtureDenoiser(mixture), x0, sigmas, solver=solver).samples - exact).abs().max()))
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(slope + order) < 0.2, (slope, errors)
    assert errors[-1] < 0.01


@pytest.mark.parametrize("solver, calls", [("heun", 2 * 12 - 1), ("euler", 12)])
def test_denoiser_calls_and_the_last_step_lands_on_the_denoiser_output(solver, calls):
    mixture, _, _ = gaussian()
    denoiser = Counting(MixtureDenoiser(mixture))
    x0 = 3 * torch.randn(5, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    sigmas = karras_sigmas(0.01, 3.0, 12)
    result = edm_sampler(denoiser, x0, sigmas, solver=solver, record_every=1)
    assert denoiser.calls == calls and result.n_steps == 12
    before_last = result.trajectory[:, -2]
    assert torch.allclose(result.samples, mixture.mmse(before_last, float(sigmas[-2])))


def mixture_1d():
    return GaussianMixture(torch.tensor([0.3, 0.7], dtype=F64), torch.tensor([[-2.0], [1.5]], dtype=F64),
                           torch.tensor([[[0.25]], [[0.5]]], dtype=F64))


def cdf(mixture, x: float, sigma: float) -> float:
    sd = (mixture.covs[:, 0, 0] + sigma**2).sqrt()
    return float((mixture.weights * torch.distributions.Normal(mixture.means[:, 0], sd).cdf(torch.tensor(x, dtype=F64))).sum())


def test_the_1d_flow_is_the_monotone_transport_between_the_cdfs():
    """x(sigma1) = F_sigma1^-1(F_sigma0(x0)) for every trajectory; Heun with 200 steps to 1e-4."""
    mixture = mixture_1d()
    s0, s1 = 3.0, 0.05
    x0 = torch.linspace(-6, 6, 13, dtype=F64)[:, None]
    sigmas = torch.logspace(math.log10(s0), math.log10(s1), 201, dtype=F64)
    out = edm_sampler(MixtureDenoiser(mixture), x0, sigmas).samples[:, 0]
    for a, b in zip(x0[:, 0].tolist(), out.tolist()):
        target = cdf(mixture, a, s0)
        exact = optimize.brentq(lambda z, t=target: cdf(mixture, z, s1) - t, -20, 20, xtol=1e-12)
        assert b == pytest.approx(exact, abs=1e-4)


def mixture_nd(d: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(3, d, d, generator=g, dtype=F64)
    covs = 0.3 * a @ a.transpose(1, 2) / d + 0.1 * torch.eye(d, dtype=F64)
    means = 3 * torch.randn(3, d, generator=g, dtype=F64)
    return GaussianMixture(torch.tensor([0.5, 0.3, 0.2], dtype=F64), means, covs)


def component_of(mixture, x):
    dists = torch.distributions.MultivariateNormal(mixture.means, covariance_matrix=mixture.covs)
    return (dists.log_prob(x[:, None, :]) + mixture.weights.log()).argmax(1)


@pytest.mark.parametrize("d", [2, 8])
@pytest.mark.parametrize("churn", [0.0, 10.0])
def test_samples_of_a_mixture_match_exact_samples(d, churn):
    """From exact samples of p_sigma_max: mode weights within 3 binomial standard errors, and
    two-sample KS tests on five random projections at p > 0.01."""
    mixture = mixture_nd(d, seed=d)
    n, sigma_max = 4000, 20.0
    g = torch.Generator().manual_seed(1)
    x_T = mixture.noised(sigma_max).sample(n, generator=g)
    out = edm_sampler(MixtureDenoiser(mixture), x_T, karras_sigmas(0.002, sigma_max, 32), churn=churn,
                      generator=g).samples
    exact = mixture.sample(n, generator=g)
    shares = torch.bincount(component_of(mixture, out), minlength=3).double() / n
    se = (mixture.weights * (1 - mixture.weights) / n).sqrt()
    assert bool(((shares - mixture.weights).abs() < 3 * se).all()), (shares, mixture.weights)
    for k in range(5):
        v = torch.randn(d, generator=torch.Generator().manual_seed(100 + k), dtype=F64)
        assert stats.ks_2samp((out @ v).numpy(), (exact @ v).numpy()).pvalue > 0.01


def test_a_score_turned_denoiser_drives_the_sampler_as_the_mixture_denoiser_does():
    mixture = mixture_nd(2, seed=3)
    x_T = 5 * torch.randn(50, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    sigmas = karras_sigmas(0.01, 5.0, 10)
    direct = edm_sampler(MixtureDenoiser(mixture), x_T, sigmas).samples
    through_score = edm_sampler(denoiser_from_score(mixture.score), x_T, sigmas).samples
    assert torch.allclose(direct, through_score, atol=1e-10)


@pytest.mark.parametrize("kwargs, message", [
    ({"sigmas": [1.0, 2.0, 0.0]}, "strictly decreasing"),
    ({"sigmas": [1.0, -0.5]}, "strictly decreasing"),
    ({"sigmas": [1.0]}, "two or more"),
    ({"churn": -1.0}, "churn"),
    ({"s_noise": 0.0}, "s_noise"),
    ({"solver": "rk4"}, "solver"),
    ({"s_min": 2.0, "s_max": 1.0}, "s_min"),
])
def test_bad_arguments_are_refused_by_name(kwargs, message):
    mixture, _, _ = gaussian()
    args = {"sigmas": [1.0, 0.5, 0.0]} | kwargs
    with pytest.raises(ValueError, match=message):
        edm_sampler(MixtureDenoiser(mixture), torch.zeros(2, 2, dtype=F64), **args)


def test_a_fixed_sigma_denoiser_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="trained at sigma = 0.5 only"):
        edm_sampler(UNet(width=4, sigma=0.5), torch.zeros(1, 1, 28, 28), [1.0, 0.0])


def test_the_ode_likelihood_is_the_mixture_density():
    """Exact trace, 400 Heun steps: log p_sigma_min(x) to 1e-3 (the step error, measured 4e-4)."""
    mixture = mixture_nd(2, seed=0)
    x = mixture.sample(5, generator=torch.Generator().manual_seed(0))
    s_min, s_max = 0.01, 50.0
    exact = mixture.log_prob(x, s_min)
    log_p = pf_ode_log_likelihood(MixtureDenoiser(mixture), x, karras_sigmas(s_min, s_max, 400)[:-1],
                                  prior_log_prob=lambda z: mixture.log_prob(z, s_max))
    assert (log_p - exact).abs().max() < 1e-3
    # the default prior N(0, s_max^2 I) is off by O(|mean|^2 / s_max^2) only
    default = pf_ode_log_likelihood(MixtureDenoiser(mixture), x, karras_sigmas(s_min, s_max, 100)[:-1])
    assert (default - exact).abs().max() < 0.1


def test_the_hutchinson_likelihood_is_unbiased():
    """10 independent single-probe estimates: their mean within 3 standard errors (+ the step error)."""
    mixture = mixture_nd(2, seed=0)
    x = mixture.sample(5, generator=torch.Generator().manual_seed(0))
    s_min, s_max = 0.01, 50.0
    sigmas = karras_sigmas(s_min, s_max, 50)[:-1]
    estimates = torch.stack([
        pf_ode_log_likelihood(MixtureDenoiser(mixture), x, sigmas, trace="hutchinson", n_probes=1,
                              generator=torch.Generator().manual_seed(k),
                              prior_log_prob=lambda z: mixture.log_prob(z, s_max))
        for k in range(10)])
    se = estimates.std(0) / math.sqrt(10)
    assert bool(((estimates.mean(0) - mixture.log_prob(x, s_min)).abs() < 3 * se + 0.03).all())


def test_bits_per_dim_of_a_uniform_density_is_eight():
    assert float(bits_per_dim(torch.tensor([0.0]), dim=784)) == pytest.approx(8.0)  # p = 1 on [0, 1]^784


def test_kadkhodaie_simoncelli_lands_on_the_mixture_with_roughly_its_weights():
    """Measured on this 2-D mixture (weights 0.5 / 0.3 / 0.2), from N(0, 5^2 I): beta = 0.01 gives
    shares 0.41 / 0.33 / 0.26 in 90 steps, per-coordinate spread within 6% of the exact one; beta = 1
    (no noise put back, a greedy ascent) 0.33 / 0.36 / 0.32 in 40 steps, the start's split. The
    sampler is not exact (its level is estimated from a 2-D residual). Asserted: every chain at its
    target level, shares within 0.1 for beta = 0.01 and closer to the weights than beta = 1's, the
    spread within 10%."""
    mixture = mixture_nd(2, seed=0)
    denoiser = MixtureDenoiser(mixture)
    run = {"sigma_start": 5.0, "sigma_stop": 0.01, "mean": 0.0}

    def shares(beta):
        result = kadkhodaie_simoncelli(denoiser, (2000, 2), beta=beta, generator=torch.Generator().manual_seed(1), **run)
        return result, torch.bincount(component_of(mixture, result.samples), minlength=3).double() / 2000

    result, noisy = shares(0.01)
    residual = (denoiser(result.samples, 0.01) - result.samples).square().mean(1).sqrt()
    assert result.samples.shape == (2000, 2) and float(residual.max()) < 0.05
    assert (noisy - mixture.weights).abs().max() < 0.1
    greedy_result, greedy = shares(1.0)
    assert (noisy - mixture.weights).abs().max() < (greedy - mixture.weights).abs().max()
    assert greedy_result.n_steps < result.n_steps
    exact_std = mixture.sample(20000, generator=torch.Generator().manual_seed(2)).std(0)
    assert torch.allclose(result.samples.double().std(0), exact_std, rtol=0.1)  # drawn from a shape: float32


@pytest.mark.parametrize("kwargs, message", [
    ({"h0": 0.0}, "h0"), ({"h0": 1.5}, "h0"), ({"beta": 0.0}, "beta"), ({"beta": 2.0}, "beta"),
    ({"sigma_stop": 2.0}, "sigma_stop"), ({"max_steps": 3}, "max_steps"),
])
def test_kadkhodaie_simoncelli_refuses_bad_arguments(kwargs, message):
    mixture, _, _ = gaussian()
    with pytest.raises(ValueError, match=message):
        kadkhodaie_simoncelli(MixtureDenoiser(mixture), (4, 2), **kwargs)


def test_kadkhodaie_simoncelli_for_an_inverse_problem_keeps_the_measurements():
    """Algorithm 2 on the 2-D mixture with x_1 = -2.5 observed (noiseless). The exact posterior
    p(x_2 | x_1) has weights 0.68 / 0.24 / 0.08; beta = 0.01 gives shares 0.41 / 0.37 / 0.22 (beta = 1:
    0.35 / 0.56 / 0.09): the ascent visits every posterior mode but does not weigh them as the
    posterior does. Asserted: the measurement held to 5 sigma_stop, every mode visited by 5% of the
    chains, the same result from the matrix and from the pair of callables."""
    mixture = mixture_nd(2, seed=0)
    A = torch.tensor([[1.0, 0.0]], dtype=F64)
    xc = torch.tensor([[-2.5]], dtype=F64)
    y0 = 5 * torch.randn(2000, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    run = {"beta": 0.01, "sigma_start": 5.0, "sigma_stop": 0.01, "mean": 0.0}
    out = kadkhodaie_simoncelli_constrained(MixtureDenoiser(mixture), xc, A, y0,
                                            generator=torch.Generator().manual_seed(1), **run).samples
    assert float((out[:, 0] - xc[0, 0]).abs().max()) < 0.05
    post = mixture.posterior(xc, 1e-4, A)
    parts = torch.distributions.Normal(post.means[0, :, 1], post.covs[:, 1, 1].sqrt())
    part = (parts.log_prob(out[:, 1:2]) + post.weights[0].log()).argmax(1)
    assert bool((torch.bincount(part, minlength=3) > 0.05 * 2000).all())
    pair = (lambda x: x @ A.T, lambda r: r @ A)  # A A^T = I: the adjoint is the pseudo-inverse
    again = kadkhodaie_simoncelli_constrained(MixtureDenoiser(mixture), xc, pair, y0,
                                              generator=torch.Generator().manual_seed(1), **run).samples
    assert torch.allclose(out, again)


class RangedMixtureDenoiser(Counting):
    """The exact mixture denoiser declared noise-conditional over a range, counting its calls."""

    def __init__(self, mixture, sigma_range):
        super().__init__(MixtureDenoiser(mixture))
        self.sigma_range = sigma_range


@pytest.mark.parametrize("method, calls", [("heun", 2 * 6 - 1), ("euler", 6)])
def test_diffusion_generation_runs_the_ode_over_the_models_range(method, calls):
    from scoredae.recipes.generation import diffusion_generation

    mixture = mixture_nd(2, seed=0)
    denoiser = RangedMixtureDenoiser(mixture, (0.01, 20.0))
    result = diffusion_generation(denoiser, 300, method=method, steps=6, churn=1.0, shape=(2,), data_mean=0.0,
                                  data_std=2.0, generator=torch.Generator().manual_seed(0))
    assert denoiser.calls == calls and result.samples.shape == (300, 2)
    shares = torch.bincount(component_of(mixture, result.samples.double()), minlength=3).double() / 300
    assert (shares - mixture.weights).abs().max() < 0.15  # a coarse ODE from a broad Gaussian start
    ks = diffusion_generation(RangedMixtureDenoiser(mixture, (0.01, 5.0)), 50, method="ks", shape=(2,),
                              generator=torch.Generator().manual_seed(0))
    assert ks.samples.shape == (50, 2) and ks.n_steps > 1
    with pytest.raises(ValueError, match="method"):
        diffusion_generation(denoiser, 2, method="rk4", shape=(2,))


def test_sample_command_runs_the_diffusion_samplers(tmp_path):
    from scoredae.cli import main
    from scoredae.nets.checkpoints import as_json, save_checkpoint

    torch.manual_seed(0)
    model = UNet(width=4, sigma_range=(0.01, 1.0))
    save_checkpoint(tmp_path / "ncsn", model, {"model": "UNet", "config": as_json(model.config)})
    for method in ("heun", "euler"):
        out = tmp_path / f"{method}.pt"
        assert main(["sample", "--model", str(tmp_path / "ncsn"), "--method", method, "--steps", "3", "--churn", "1",
                     "--n", "2", "--out", str(out), "--no-progress"]) == 0
        assert torch.load(out).shape == (2, 1, 28, 28)


def test_sample_command_draws_labelled_digits_in_the_calls_it_is_given(tmp_path, capsys):
    """--nfe sets the denoiser calls whatever the method; --label and --guidance reach the model."""
    from scoredae.cli import main
    from scoredae.nets.checkpoints import as_json, save_checkpoint
    from scoredae.nets.resunet import ResUNet

    torch.manual_seed(0)
    model = ResUNet(widths=(8, 8), attention=(1,), head_channels=8, num_classes=10, sigma_range=(0.01, 1.0))
    save_checkpoint(tmp_path / "cfg", model, {"model": "ResUNet", "config": as_json(model.config)})
    for method, calls in (("dpm++3m", 6), ("ipndm", 6), ("heun", 6)):
        out = tmp_path / f"{method}.pt"
        assert main(["sample", "--model", str(tmp_path / "cfg"), "--method", method, "--nfe", str(calls), "--label", "3",
                     "--guidance", "1.5", "--n", "2", "--out", str(out), "--no-progress"]) == 0
        assert torch.load(out).shape == (2, 1, 28, 28)
        printed = capsys.readouterr().out
        assert f"{calls} denoiser calls, digit 3, guidance 1.5" in printed, printed  # heun: 2 steps, 3 calls, x2
