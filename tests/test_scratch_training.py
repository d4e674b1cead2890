"""Training with the scratch framework: the same loss curve as the torch twin under autograd,
optimisers against torch.optim, and Noise2Noise reaching the Bayes (MMSE) error on a mixture."""

import math

import deepinv
import pytest
import torch

import scoredae.scratch as S
from scoredae.mixtures import GaussianMixture
from scoredae.score import TweedieScore

SIGMA = 0.5


@pytest.mark.parametrize("make_optimizers", [
    lambda ours, theirs: (S.SGD(ours, lr=0.5), torch.optim.SGD(theirs, lr=0.5)),
    lambda ours, theirs: (S.SGD(ours, lr=0.1, momentum=0.9), torch.optim.SGD(theirs, lr=0.1, momentum=0.9)),
    lambda ours, theirs: (S.Adam(ours, lr=3e-3), torch.optim.Adam(theirs, lr=3e-3)),
], ids=["sgd", "sgd-momentum", "adam"])
def test_loss_curve_equals_torch_twin(make_optimizers):
    g = torch.Generator().manual_seed(0)
    net = S.conv_autoencoder(channels=(4, 8), generator=g, dtype=torch.float64)
    twin = net.to_torch()
    blocks = torch.rand(64, 1, 4, 4, generator=g, dtype=torch.float64)
    data = blocks.repeat_interleave(4, 2).repeat_interleave(4, 3)  # (64, 1, 16, 16) piecewise constant
    pairs = list(S.noise2clean_batches(data, 0.2, batch_size=8, steps=50, generator=g))
    ours, theirs = make_optimizers(net.params(), twin.parameters())
    curve = S.fit(net, ours, pairs)
    curve_twin = S.fit_torch(twin, theirs, pairs)
    assert curve[-10:].mean() < 0.97 * curve[:10].mean()  # it trains, so the comparison means something
    assert float(((curve - curve_twin).abs() / curve_twin).max()) <= 1e-6
    for p, p_t in zip(net.params(), twin.parameters(), strict=True):
        assert torch.allclose(p, p_t.detach(), rtol=1e-6, atol=1e-9)


def test_noise2noise_pairs_have_independent_noise():
    """Both images of a Noise2Noise pair carry N(0, sigma^2) noise, independent of each other;
    a Noise2Clean target is the clean image. Tolerances: 4 Monte Carlo standard errors
    (sample variance: sigma^2 sqrt(2 / n); correlation: 1 / sqrt(n))."""
    g = torch.Generator().manual_seed(0)
    x = torch.full((4, 1, 50, 50), 0.3, dtype=torch.float64)  # every row the same clean image
    (y1, y2), = S.noise2noise_batches(x, SIGMA, batch_size=4, steps=1, generator=g)
    (y, t), = S.noise2clean_batches(x, SIGMA, batch_size=4, steps=1, generator=g)
    n1, n2, n = (y1 - x).flatten(), (y2 - x).flatten(), x.numel()
    for noise in (n1, n2, (y - x).flatten()):
        assert abs(float(noise.pow(2).mean()) / SIGMA**2 - 1) < 4 * math.sqrt(2 / n)
    assert abs(float((n1 * n2).mean()) / SIGMA**2) < 4 / math.sqrt(n)
    assert torch.equal(t, x)


def test_moving_average():
    assert torch.equal(S.moving_average(torch.arange(5.0), 2), torch.tensor([0.5, 1.5, 2.5, 3.5]))
    with pytest.raises(ValueError, match="window"):
        S.moving_average(torch.arange(5.0), 6)


def mixture() -> GaussianMixture:
    return GaussianMixture(torch.tensor([0.3, 0.3, 0.4]),
                           torch.tensor([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.5]], dtype=torch.float64),
                           torch.tensor([0.05, 0.2, 0.1]))


def train_mlp(batches, gm: GaussianMixture) -> S.ScratchDenoiser:
    g = torch.Generator().manual_seed(0)
    data = gm.sample(50_000, generator=g)
    net = S.mlp(2, hidden=64, depth=2, generator=g, dtype=torch.float64)
    optimizer = S.Adam(net.params(), lr=3e-3)
    S.fit(net, optimizer, batches(data, SIGMA, 512, 1500, generator=g))
    optimizer.lr = 5e-4  # a short low-rate phase averages out the gradient noise of noisy targets
    S.fit(net, optimizer, batches(data, SIGMA, 512, 500, generator=g))
    return S.ScratchDenoiser(net, SIGMA)


@pytest.fixture(scope="module")
def denoisers():
    gm = mixture()
    return gm, {"n2n": train_mlp(S.noise2noise_batches, gm), "n2c": train_mlp(S.noise2clean_batches, gm)}


def bayes_gap(denoiser, gm: GaussianMixture, n: int = 100_000) -> tuple[float, float]:
    """MSE of the denoiser / MSE of the exact posterior mean on the same fresh pairs, and the
    ratio's Monte Carlo standard error (delta method on the per-sample errors)."""
    g = torch.Generator().manual_seed(123)
    x = gm.sample(n, generator=g)
    y = x + SIGMA * torch.randn(x.shape, generator=g, dtype=x.dtype)
    e = (denoiser(y, SIGMA) - x).pow(2).sum(1)
    e_star = (gm.mmse(y, SIGMA) - x).pow(2).sum(1)
    ratio = float(e.mean() / e_star.mean())
    se = float((e - ratio * e_star).std() / e_star.mean()) / math.sqrt(n)
    return ratio, se


def test_noise2noise_reaches_the_bayes_error_like_noise2clean(denoisers):
    """E[y2 | y1] = E[x | y1]: trained on noisy targets only, the denoiser's MSE is within a few
    percent of the MMSE, as for clean targets. The identity (no denoising) has a gap of ~2.9."""
    gm, trained = denoisers
    gap_n2n, se_n2n = bayes_gap(trained["n2n"], gm)
    gap_n2c, se_n2c = bayes_gap(trained["n2c"], gm)
    gap_identity, _ = bayes_gap(lambda y, sigma: y, gm)
    assert gap_identity > 2.0
    assert 1.0 - 4 * se_n2n < gap_n2n < 1.05, (gap_n2n, se_n2n)
    assert 1.0 - 4 * se_n2c < gap_n2c < 1.05, (gap_n2c, se_n2c)
    assert abs(gap_n2n - gap_n2c) < 0.03


def test_scratch_denoiser_drives_tweedie_score(denoisers):
    r"""The wrapped scratch network is a deepinv Denoiser; its Tweedie score
    (D(y) - y) / sigma^2 matches the exact score of p_sigma: relative L2(p_sigma) error < 0.15
    (with a Bayes gap of 1 + eps the expected squared error is eps * MMSE / sigma^4)."""
    gm, trained = denoisers
    denoiser = trained["n2n"]
    assert isinstance(denoiser, deepinv.models.Denoiser) and denoiser.trained_sigma == SIGMA
    g = torch.Generator().manual_seed(7)
    y = gm.noised(SIGMA).sample(20_000, generator=g)
    score, exact = TweedieScore(denoiser)(y, SIGMA), gm.score(y, SIGMA)
    rel = float((score - exact).norm() / exact.norm())
    assert rel < 0.15, rel
    assert float((TweedieScore(lambda v, s: v)(y, SIGMA)).abs().max()) == 0.0  # no denoising, no score
    with pytest.raises(TypeError, match="net"):
        S.ScratchDenoiser(torch.nn.Linear(2, 2), SIGMA)
