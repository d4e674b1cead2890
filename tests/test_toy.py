"""ToyDenoiser, train_toy and the Bayes metrics: learned scores on toy mixtures against the exact
Bayes optimum, and the L1 loss learning the posterior median (so Tweedie's formula fails)."""

import dataclasses

import deepinv
import pytest
import torch

from scoredae import GaussianMixture, MixtureDenoiser
from scoredae.eval import bayes_gap, score_error
from scoredae.nets.toy import ToyDenoiser
from scoredae.train import train_toy

F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def four_modes():
    """Four anisotropic-weight modes on a circle of radius 2 in 2D."""
    angles = torch.arange(4, dtype=F64) * torch.pi / 2 + torch.pi / 4
    means = 2.0 * torch.stack([angles.cos(), angles.sin()], dim=1)
    return GaussianMixture(torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=F64), means,
                           torch.tensor([0.15, 0.3, 0.2, 0.25], dtype=F64))


@pytest.mark.parametrize("parametrization", ["score", "denoiser"])
def test_toy_net_is_a_denoiser_and_a_score(parametrization):
    torch.manual_seed(0)
    model = ToyDenoiser(2, hidden=16, depth=2, parametrization=parametrization)
    assert isinstance(model, deepinv.models.Denoiser)
    x = torch.randn(5, 2, dtype=F64, generator=gen(1))
    sigma = torch.tensor([0.1, 0.5, 1.0, 2.0, 0.3], dtype=F64)
    with torch.no_grad():
        denoised, score = model(x, sigma), model.score(x, sigma)
        assert denoised.dtype == F64 and denoised.shape == x.shape
        torch.testing.assert_close(denoised, x + sigma[:, None] ** 2 * score)
        # a (B,) level is the same as one call per sample
        torch.testing.assert_close(model.score(x[2:3], 1.0), score[2:3])
        rebuilt = ToyDenoiser(**dataclasses.asdict(model.config))
        rebuilt.load_state_dict(model.state_dict())
        torch.testing.assert_close(rebuilt(x, sigma), denoised)
        assert model(x.reshape(5, 1, 2), 0.5).shape == (5, 1, 2)
        # deepinv's ScorePrior sees the denoiser; its gradient is minus our score
        prior = deepinv.optim.ScorePrior(model)
        torch.testing.assert_close(prior.grad(x, 0.5), -model.score(x, 0.5))


def test_toy_net_refuses_bad_arguments():
    with pytest.raises(ValueError, match="parametrization"):
        ToyDenoiser(2, parametrization="energy")
    with pytest.raises(ValueError, match="dim"):
        ToyDenoiser(0)
    with pytest.raises(ValueError, match=r"x: expected shape \(B, \*S\) with prod\(S\) = 2"):
        ToyDenoiser(2)(torch.zeros(4, 3), 0.5)


def test_metrics_are_exact_on_exact_answers(four_modes):
    """The exact MMSE denoiser has gap 1 and the exact score error 0 (same samples); a score off
    by a factor 2 has relative error exactly 1."""
    assert bayes_gap(MixtureDenoiser(four_modes), four_modes, 0.5, n=20_000, generator=gen(2)) == pytest.approx(
        1.0, abs=1e-12)
    assert score_error(four_modes.score, four_modes, 0.5, n=20_000, generator=gen(3)) == pytest.approx(0, abs=1e-12)
    doubled = lambda y, s: 2 * four_modes.score(y, s)
    assert score_error(doubled, four_modes, 0.5, n=20_000, generator=gen(3)) == pytest.approx(1.0, abs=1e-12)


def test_bayes_gap_of_the_identity_on_a_gaussian():
    r"""Prior N(0, v I), identity denoiser: MSE = d sigma^2, MMSE = d v sigma^2 / (v + sigma^2), so the
    gap is (v + sigma^2) / v. Both sums are chi-square-like with relative variance 2/d per sample;
    the ratio's relative standard error is at most sqrt(8 / (d n)), and we allow 4.5 of them."""
    v, sigma, n, d = 1.0, 1.0, 100_000, 2
    gaussian = GaussianMixture(torch.ones(1, dtype=F64), torch.zeros(1, d, dtype=F64), v)
    gap = bayes_gap(lambda y, s: y, gaussian, sigma, n=n, generator=gen(4))
    assert gap == pytest.approx((v + sigma**2) / v, rel=4.5 * (8 / (d * n)) ** 0.5)


@pytest.mark.parametrize("parametrization", ["score", "denoiser"])
def test_dsm_training_reaches_the_bayes_optimum(four_modes, parametrization):
    """ToyDenoiser trained by DSM (2000 steps of 512) on a 4-mode 2D mixture: MSE within 3% of the
    exact Bayes error and score within 10% relative L2 of the exact one at sigma = 0.5 and 1.0."""
    result = train_toy(four_modes, steps=2000, sigmas=(0.2, 2.0), parametrization=parametrization,
                       device="cpu", generator=gen(5), progress=False)
    model = result.model
    assert result.losses.shape == (2000,)
    for sigma in (0.5, 1.0):
        assert bayes_gap(model, four_modes, sigma, generator=gen(6)) <= 1.03
        assert score_error(model.score, four_modes, sigma, generator=gen(7)) <= 0.10


@pytest.mark.parametrize("objective", ["ism", "ssm"])
def test_implicit_and_sliced_objectives_learn_the_score(four_modes, objective):
    """Points given as a tensor; 600 steps of exact-trace ISM or sliced SM bring the relative score
    error from about 1.0 (untrained) to 0.12 (ISM) and 0.17 (SSM, noisier) over seeds."""
    points = four_modes.sample(5000, generator=gen(8))
    model = train_toy(points, objective=objective, steps=600, batch_size=256, sigmas=(0.4, 1.2),
                      device="cpu", generator=gen(9), progress=False).model
    assert score_error(model.score, four_modes, 0.7, n=20_000, generator=gen(10)) <= 0.25


def posterior_median_1d(post) -> torch.Tensor:
    r"""The median of each 1D mixture posterior: the root of
    :math:`F(t) = \sum_k \pi_k \Phi((t - m_k) / \sqrt{C_k}) = 1/2` by 100 bisection steps."""
    lo = torch.full(post.weights.shape[:1], -50.0, dtype=post.means.dtype)
    hi = -lo
    means, sds = post.means[..., 0], post.covs[:, 0, 0].sqrt()  # (n, K), (K,)
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        below = (post.weights * torch.special.ndtr((mid[:, None] - means) / sds)).sum(1) < 0.5
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    return 0.5 * (lo + hi)


def test_l1_denoiser_learns_the_posterior_median_not_the_mean():
    """Trained with |D - x|, the denoiser of a skewed bimodal 1D prior follows the posterior median
    (from the exact posterior CDF), far from the mean, so (D - y) / sigma^2 is not the score.

    Checked where mean and median differ by > 0.15 and the median is flatter than the identity
    (slope < 1; near its jump between the modes no smooth net is accurate): there the learned
    denoiser is at least 4 times closer to the median than the mean is."""
    prior = GaussianMixture(torch.tensor([0.75, 0.25], dtype=F64), torch.tensor([[-1.5], [1.5]], dtype=F64),
                            torch.tensor([0.3, 0.3], dtype=F64))
    sigma = 1.0
    model = train_toy(prior, objective="l1", sigmas=sigma, steps=1500, parametrization="denoiser",
                      device="cpu", generator=gen(11), progress=False).model
    y = torch.linspace(-3, 3, 121, dtype=F64)[:, None]
    post = prior.posterior(y, sigma)
    median, mean = posterior_median_1d(post), post.mean()[:, 0]
    torch.testing.assert_close((post.weights * torch.special.ndtr(
        (median[:, None] - post.means[..., 0]) / post.covs[:, 0, 0].sqrt())).sum(1), torch.full_like(median, 0.5))
    with torch.no_grad():
        learned = model(y, sigma)[:, 0]
    slope = torch.gradient(median, spacing=(y[:, 0],))[0]
    where = ((median - mean).abs() > 0.15) & (slope.abs() < 1)
    assert int(where.sum()) >= 10
    assert bool(((learned - median).abs() < 0.25 * (mean - median).abs())[where].all())
    # Tweedie's formula on the median-denoiser is not the score (it is for the mean, exactly)
    weights = prior.noised(sigma).log_prob(y).exp()
    exact = prior.score(y, sigma)[:, 0]

    def relative_error(denoised):
        return float(((((denoised - y[:, 0]) / sigma**2 - exact) ** 2 * weights).sum()
                      / (exact**2 * weights).sum()).sqrt())

    assert relative_error(mean) < 1e-10
    assert relative_error(median) > 0.15 and relative_error(learned) > 0.15


def test_training_is_reproducible_and_checks_its_arguments(four_modes):
    first, second = (train_toy(four_modes, steps=3, generator=gen(12), device="cpu", progress=False).model
                     for _ in range(2))
    for a, b in zip(first.parameters(), second.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    bf16 = train_toy(four_modes, steps=3, amp="bf16", device="cpu", generator=gen(12), progress=False)
    assert torch.isfinite(bf16.losses).all()
    with pytest.raises(ValueError, match="fp16"):
        train_toy(four_modes, steps=3, amp="fp16", device="cpu", progress=False)
    with pytest.raises(ValueError, match="objective"):
        train_toy(four_modes, objective="nce", steps=3, progress=False)
    with pytest.raises(TypeError, match="data"):
        train_toy([[0.0, 1.0]], steps=3, progress=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("amp", [None, "bf16", "fp16"])
def test_training_on_cuda(four_modes, amp):
    model = train_toy(four_modes, steps=2000, sigmas=(0.2, 2.0), amp=amp, generator=gen(5), progress=False).model
    assert next(model.parameters()).device.type == "cuda"
    cpu = model.cpu()
    assert bayes_gap(cpu, four_modes, 0.5, generator=gen(6)) <= 1.03
    assert score_error(cpu.score, four_modes, 1.0, generator=gen(7)) <= 0.10
