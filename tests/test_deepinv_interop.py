"""deepinv both ways: our samplers drive deepinv denoisers, deepinv's samplers drive ours.

* deepinv's empirical-prior ``MMSE`` is the exact MMSE denoiser of a Gaussian mixture with
  components at the data points and vanishing variance, so it must equal
  ``GaussianMixture.mmse`` and its Tweedie score ``GaussianMixture.score``;
* ``ula``, ``annealed_langevin`` and ``posterior_langevin`` with the Tweedie score of a deepinv
  ``DRUNet`` (random weights) follow their recursions step for step;
* deepinv's ``ULA`` (through ``ScorePrior``) with a scoredae ``UNet`` runs the same chain as our
  ``posterior_langevin`` when both draw from the same seeded global generator;
* on a mixture prior with its exact denoiser, deepinv's ``ULA`` and ``posterior_langevin`` with
  independent seeds agree with each other and with the exact posterior of the smoothed prior
  within Monte Carlo error;
* deepinv's ``DiffPIR`` runs with ``MixtureDenoiser`` (and recovers the component the
  observation points to) and with a scoredae ``UNet``.
"""

import math

import deepinv as dinv
import pytest
import torch

from scoredae import GaussianMixture, MixtureDenoiser, TweedieScore
from scoredae.inverse import posterior_langevin
from scoredae.nets import UNet
from scoredae.sampling import annealed_langevin, geometric_sigmas, ula

CPU = torch.device("cpu")


def small_drunet() -> dinv.models.DRUNet:
    torch.manual_seed(0)
    return dinv.models.DRUNet(1, 1, nc=(8, 8, 8, 8), nb=1, pretrained=None).eval()


def small_unet() -> UNet:
    torch.manual_seed(0)
    return UNet(width=4, sigma_range=(0.01, 1.0)).eval()


@pytest.mark.parametrize("sigma", [0.03, 0.3, 2.0])
def test_deepinv_mmse_is_the_mixture_mmse_of_the_data(sigma):
    """MMSE(y, sigma) = sum_k softmax(-|y - x_k|^2 / 2 sigma^2)_k x_k, the posterior mean of the
    uniform mixture of N(x_k, c I) as c -> 0 (c = 1e-12 here, float64; deepinv adds 1e-12 to 2 sigma^2); per-sample sigma too."""
    g = torch.Generator().manual_seed(0)
    data = 0.2 * torch.rand(12, 1, 2, 2, generator=g, dtype=torch.float64)  # dense: weights not one-hot
    gm = GaussianMixture(torch.full((12,), 1 / 12, dtype=torch.float64), data.reshape(12, 4), 1e-12)
    mmse = dinv.models.MMSE(dataloader=data, device=CPU, dtype=torch.float64)
    y = data[torch.arange(16) % 12] + sigma * torch.randn(16, 1, 2, 2, generator=g, dtype=torch.float64)
    points = y.reshape(16, 4)  # (B, d)
    expected = gm.mmse(points, sigma)
    assert (expected - gm.means[torch.arange(16) % 12]).abs().max() > 1e-3  # not the trivial answer
    torch.testing.assert_close(mmse(y, sigma).reshape(16, 4), expected, rtol=1e-7, atol=1e-8)
    score = TweedieScore(mmse)(y, sigma).reshape(16, 4)
    torch.testing.assert_close(score, gm.score(points, sigma), rtol=1e-8, atol=1e-8 / sigma**2)
    per_sample = torch.linspace(0.5, 2.0, 16, dtype=torch.float64) * sigma  # (B,)
    torch.testing.assert_close(mmse(y, per_sample), MixtureDenoiser(gm)(y, per_sample), rtol=1e-7, atol=1e-8)


def _reference_chain(denoiser, x0, levels, eta_of, generator, drift_extra=lambda x: 0):
    """x <- x + eta (D(x, s) - x) / s^2 + eta * extra(x) + sqrt(2 eta) z, level s per step."""
    x, states = x0.clone(), []
    for s in levels:
        eta = eta_of(s)
        drift = (denoiser(x, s) - x) / s**2 + drift_extra(x)
        x = x + eta * drift + math.sqrt(2 * eta) * torch.randn(x.shape, generator=generator)
        states.append(x)
    return torch.stack(states, dim=1)  # (B, n_steps, *S)


def test_our_samplers_follow_their_recursions_with_a_deepinv_drunet():
    """ula, annealed_langevin (3 levels) and posterior_langevin (deepinv Inpainting physics) with
    TweedieScore(DRUNet) on (2, 1, 16, 16): every recorded state equals the hand-written recursion
    with the same generator, and the states are finite and move."""
    drunet, x0 = small_drunet(), torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    score = TweedieScore(drunet)
    res = ula(lambda x: score(x, 0.1), x0, 1e-4, 4, generator=torch.Generator().manual_seed(2), record_every=1)
    ref = _reference_chain(drunet, x0, [0.1] * 4, lambda s: 1e-4, torch.Generator().manual_seed(2))
    torch.testing.assert_close(res.trajectory[:, 1:], ref, rtol=1e-5, atol=1e-6)

    sigmas, eps = geometric_sigmas(0.5, 0.05, 3), 1e-4
    res = annealed_langevin(score, x0, sigmas, 2, eps, generator=torch.Generator().manual_seed(3), record_every=1)
    levels = [float(s) for s in sigmas for _ in range(2)]
    ref = _reference_chain(drunet, x0, levels, lambda s: eps * s**2 / 0.05**2 / 2, torch.Generator().manual_seed(3))
    torch.testing.assert_close(res.trajectory[:, 1:], ref, rtol=1e-5, atol=1e-6)

    physics = dinv.physics.Inpainting(img_size=(1, 16, 16), mask=0.5, rng=torch.Generator().manual_seed(4),
                                      noise_model=dinv.physics.GaussianNoise(0.1))
    y = physics.A(x0)
    res = posterior_langevin(score, y, physics, 0.1, x0, 1e-4, 4, prior_sigma=0.1,
                             generator=torch.Generator().manual_seed(5), record_every=1)
    ref = _reference_chain(drunet, x0, [0.1] * 4, lambda s: 1e-4, torch.Generator().manual_seed(5),
                           drift_extra=lambda x: physics.A_adjoint(y - physics.A(x)) / 0.1**2)
    torch.testing.assert_close(res.trajectory[:, 1:], ref, rtol=1e-5, atol=1e-6)
    assert res.samples.shape == x0.shape and bool(torch.isfinite(res.samples).all())
    assert (res.samples - x0).abs().mean() > 1e-3


def test_deepinv_ula_with_our_unet_runs_the_chain_of_posterior_langevin():
    """deepinv's ULA(ScorePrior(UNet), L2(sigma_y)) and posterior_langevin(TweedieScore(UNet)) on
    28 x 28 inpainting, both drawing z from the same seeded global generator: the same chain
    (deepinv's saved chain starts with x_init; its Welford mean is over x_init and the steps)."""
    unet, n_steps, eta, sigma_y, prior_sigma = small_unet(), 5, 1e-4, 0.1, 0.05
    physics = dinv.physics.Inpainting(img_size=(1, 28, 28), mask=0.5, rng=torch.Generator().manual_seed(0),
                                      noise_model=dinv.physics.GaussianNoise(sigma_y))
    torch.manual_seed(0)
    y = physics(torch.rand(3, 1, 28, 28))
    theirs = dinv.sampling.ULA(dinv.optim.ScorePrior(unet), dinv.optim.data_fidelity.L2(sigma_y), step_size=eta,
                               sigma=prior_sigma, max_iter=n_steps, thinning=1, burnin_ratio=0.0, clip=(-1.0, 2.0),
                               save_chain=True)
    torch.manual_seed(1)
    mean, var = theirs.sample(y, physics, x_init=y.clone())
    chain = torch.stack([state["x"] for state in theirs.get_chain()], dim=1)  # (B, n_steps + 1, 1, 28, 28)
    torch.manual_seed(1)
    ours = posterior_langevin(TweedieScore(unet), y, physics, sigma_y, y.clone(), eta, n_steps,
                              prior_sigma=prior_sigma, clip=(-1.0, 2.0), record_every=1)
    torch.testing.assert_close(ours.trajectory, chain, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours.trajectory.mean(1), mean, rtol=1e-5, atol=1e-5)
    assert (ours.samples - y).abs().mean() > 1e-2 and bool(torch.isfinite(var).all())


def _stats_with_errors(mean: torch.Tensor, var: torch.Tensor):
    """Pooled mean and variance over independent chains with their standard errors.

    Per chain b: mean m_b and variance v_b (divisor n). Pooled mean = avg m_b, pooled variance =
    avg [v_b + (m_b - avg m)^2]; both are averages of B independent per-chain values, so the
    standard error is the spread of those values over sqrt(B)."""
    b = mean.shape[0]
    second = var + (mean - mean.mean(0)) ** 2  # (B, *S)
    return (mean.mean(0), mean.std(0) / math.sqrt(b)), (second.mean(0), second.std(0) / math.sqrt(b))


def test_deepinv_ula_and_posterior_langevin_agree_on_a_mixture_posterior():
    """Prior: two Gaussians in R^4 (images (1, 2, 2)), exact denoiser MixtureDenoiser; inpainting of
    pixels 1 and 2 with noise 0.2; prior_sigma 0.1, so both chains target the exact posterior of
    gm.noised(0.1) (a two-component mixture). 200 independent chains each, started at exact
    posterior draws, 3000 steps of eta = 5e-4. Tolerance: 4.5 standard errors (over chains), plus
    the ULA variance bias of the stiffest direction, 1 / (1 - eta a / 2) - 1 = 1.1 % (a = 45)."""
    gm = GaussianMixture(torch.tensor([0.4, 0.6], dtype=torch.float64),
                         torch.tensor([[0.4, 0.3, 0.7, 0.5], [0.6, 0.7, 0.3, 0.5]], dtype=torch.float64), 0.04)
    prior_sigma, sigma_y, eta, n_steps, burn_in, chains = 0.1, 0.2, 5e-4, 3000, 300, 200
    mask = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]], dtype=torch.float64)  # (1, 2, 2): pixels 0 and 3 seen
    physics = dinv.physics.Inpainting(img_size=(1, 2, 2), mask=mask, noise_model=dinv.physics.GaussianNoise(sigma_y))
    y = torch.tensor([[[[0.55, 0.0], [0.0, 0.45]]]], dtype=torch.float64)  # (1, 1, 2, 2)
    exact = gm.noised(prior_sigma).posterior(y.reshape(1, 4), sigma_y, A=torch.diag(mask.reshape(4)))
    assert 0.2 < float(exact.weights[0, 0]) < 0.8  # both components matter
    exact_mean, exact_var = exact.mean().reshape(2, 2), torch.diagonal(exact.cov()[0]).reshape(2, 2)
    x0 = exact.sample(chains, generator=torch.Generator().manual_seed(0)).reshape(chains, 1, 2, 2)
    ys = y.expand(chains, 1, 2, 2)
    denoiser = MixtureDenoiser(gm)

    theirs = dinv.sampling.ULA(dinv.optim.ScorePrior(denoiser), dinv.optim.data_fidelity.L2(sigma_y),
                               step_size=eta, sigma=prior_sigma, max_iter=n_steps, thinning=1,
                               burnin_ratio=burn_in / n_steps, clip=None)
    torch.manual_seed(1)
    d_mean, d_var = theirs.sample(ys, physics, x_init=x0.clone())
    k = n_steps - burn_in + 1  # kept steps, plus x_init, in deepinv's Welford (divisor k - 1)
    d_stats = _stats_with_errors(d_mean[:, 0], d_var[:, 0] * (k - 1) / k)
    ours = posterior_langevin(TweedieScore(denoiser), ys, physics, sigma_y, x0, eta, n_steps,
                              prior_sigma=prior_sigma, burn_in=burn_in, generator=torch.Generator().manual_seed(2))
    o_stats = _stats_with_errors(ours.mean[:, 0], ours.var[:, 0])

    a = 1 / sigma_y**2 + 1 / (0.04 + prior_sigma**2)
    bias = 1 / (1 - eta * a / 2) - 1
    for (o, o_se), (d, d_se), target, rel_bias in zip(o_stats, d_stats, (exact_mean, exact_var), (0.0, bias)):
        assert (o - d).abs().le(4.5 * (o_se**2 + d_se**2).sqrt()).all(), (o, d)
        for est, se in ((o, o_se), (d, d_se)):
            assert (est - target).abs().le(4.5 * se + rel_bias * target).all(), (est, target, se)
    # the relative tolerance (about 10 %) resolves a factor 2 in the variance
    assert ((4.5 * o_stats[1][1] + bias * exact_var) / exact_var).max() < 0.25


def test_deepinv_diffpir_runs_with_our_denoisers():
    """DiffPIR (deepinv) with MixtureDenoiser on (1, 2, 2) images: the prior is two tight clusters
    whose seen pixels differ (0.2 vs 0.8); the observation points to the second cluster (exact
    posterior weight ~1), so most samples (DiffPIR is approximate: >= 75 %; 50 % would be a
    denoiser that ignores the data, ~0 % one that ignores the prior) must have the unseen pixels
    at its means (0.9, 0.1) within 0.1. With a random-init scoredae UNet on 28 x 28 inpainting:
    finite outputs of the input shape."""
    gm = GaussianMixture(torch.tensor([0.5, 0.5]), torch.tensor([[0.2, 0.1, 0.9, 0.2], [0.8, 0.9, 0.1, 0.8]]), 1e-3)
    mask = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    physics = dinv.physics.Inpainting(img_size=(1, 2, 2), mask=mask, noise_model=dinv.physics.GaussianNoise(0.05))
    y = torch.tensor([[[[0.78, 0.0], [0.0, 0.82]]]]).expand(32, 1, 2, 2)
    diffpir = dinv.sampling.DiffPIR(MixtureDenoiser(gm), dinv.optim.data_fidelity.L2(), max_iter=100, zeta=0.5)
    out = diffpir(y, physics, seed=3)
    assert out.shape == y.shape
    unseen = out[:, 0].reshape(32, 4)[:, 1:3]  # (B, 2)
    right = (unseen - torch.tensor([0.9, 0.1])).abs().amax(1) < 0.1  # (B,)
    assert right.float().mean() >= 0.75, unseen

    unet_physics = dinv.physics.Inpainting(img_size=(1, 28, 28), mask=0.5, rng=torch.Generator().manual_seed(0),
                                           noise_model=dinv.physics.GaussianNoise(0.1))
    torch.manual_seed(0)
    y = unet_physics(torch.rand(2, 1, 28, 28))
    out = dinv.sampling.DiffPIR(small_unet(), dinv.optim.data_fidelity.L2(), max_iter=8)(y, unet_physics, seed=4)
    assert out.shape == y.shape and bool(torch.isfinite(out).all())
