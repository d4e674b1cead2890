"""Score-matching objectives against the theory: the denoiser/score equivalence, the constant
gaps DSM - ESM (Vincent 2010) and ISM - ESM (Hyvarinen 2005), and SSM = ISM in expectation.

Statistical checks use common random numbers and compare a mean to its Monte Carlo standard
error: ``z = mean / (std / sqrt(N))`` must satisfy ``|z| <= Z`` with Z = 4.5 (a false alarm has
probability < 1e-5), and each check is shown to have power: the same statistic for a wrong factor
of 2 or a dropped weighting exceeds 10 standard errors.
"""

import pytest
import torch

from scoredae import GaussianMixture, TweedieScore
from scoredae.nets.toy import ToyDenoiser
from scoredae.objectives import (
    charbonnier_denoising_loss,
    denoising_loss,
    dsm_loss,
    edge_aware_denoising_loss,
    esm_loss,
    flow_matching_loss,
    ism_loss,
    l1_denoising_loss,
    log_normal_sigmas,
    perturb,
    ssm_loss,
)
from scoredae.train import train_toy

F64 = torch.float64
Z = 4.5
SIGMA = 0.5


def z_score(v: torch.Tensor) -> float:
    """Mean of per-sample values over its Monte Carlo standard error."""
    return float(v.mean() / (v.std() / v.numel() ** 0.5))


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def gm():
    return GaussianMixture(
        torch.tensor([0.3, 0.5, 0.2], dtype=F64),
        torch.tensor([[-1.5, 0.0], [1.0, 1.0], [0.5, -2.0]], dtype=F64),
        torch.tensor([[[0.4, 0.1], [0.1, 0.2]], [[0.3, -0.1], [-0.1, 0.5]], [[0.2, 0.0], [0.0, 0.6]]], dtype=F64),
    )


@pytest.fixture(scope="module")
def models(gm):
    """Two parameter settings of one architecture: a random initialisation and a briefly trained one."""
    torch.manual_seed(0)
    untrained = ToyDenoiser(2, hidden=32, depth=2).to(F64)
    trained = train_toy(gm, model=ToyDenoiser(2, hidden=32, depth=2), steps=300, sigmas=(0.3, 1.0),
                        generator=gen(1), progress=False).model.to(F64)
    return untrained, trained


@pytest.fixture(scope="module")
def data(gm):
    return gm.sample(100_000, generator=gen(2))


def test_denoising_loss_is_dsm_of_the_tweedie_score(gm):
    """D and s = (D - x) / sigma^2 are one object: denoising_loss(D) = (2 sigma^2 / d) dsm_loss(s)
    exactly (same noise), for a fixed level, and = (2 / d) dsm_loss(s) with lambda = sigma^4 for
    levels drawn per sample from a range."""
    torch.manual_seed(3)
    denoiser = ToyDenoiser(2, hidden=16, depth=1, parametrization="denoiser").to(F64)
    x, d = gm.sample(500, generator=gen(4)), 2
    with torch.no_grad():
        mse = denoising_loss(denoiser, x, 0.7, generator=gen(5))
        dsm = dsm_loss(TweedieScore(denoiser), x, 0.7, generator=gen(5))
        torch.testing.assert_close(mse, 2 * 0.7**2 / d * dsm, rtol=1e-12, atol=0)
        mse = denoising_loss(denoiser, x, (0.1, 2.0), generator=gen(6))
        dsm = dsm_loss(TweedieScore(denoiser), x, (0.1, 2.0), generator=gen(6), weighting=lambda s: s**4)
        torch.testing.assert_close(mse, 2 / d * dsm, rtol=1e-12, atol=0)


def test_perturb_levels_are_log_uniform_and_reproducible():
    x = torch.zeros(50_000, 3, dtype=F64)
    y, s, n = perturb(x, (0.1, 2.0), generator=gen(7))
    assert s.shape == (50_000, 1) and float(s.min()) >= 0.1 and float(s.max()) <= 2.0
    torch.testing.assert_close(y, s * n)
    # log sigma ~ U(log 0.1, log 2): its mean is the midpoint
    log_s = s.log().reshape(-1)
    assert abs(z_score(log_s - 0.5 * (torch.tensor(0.1).log() + torch.tensor(2.0).log()))) <= Z
    torch.testing.assert_close(perturb(x, (0.1, 2.0), generator=gen(7))[0], y, rtol=0, atol=0)


def test_log_normal_levels_have_edm_moments_and_are_clipped_to_the_range():
    like = torch.zeros((), dtype=F64)
    log_s = log_normal_sigmas(50_000, -1.2, 1.2, (1e-9, 1e9), gen(3), like=like).log()
    assert abs(z_score(log_s + 1.2)) <= Z  # mean -1.2 (a factor 2 on it: z ~ 250)
    # the variance of ln sigma is 1.44; (ln s + 1.2)^2 - 1.44 has mean 0 (std 1.2 instead of 2.4: z ~ 180)
    assert abs(z_score((log_s + 1.2) ** 2 - 1.44)) <= Z
    clipped = log_normal_sigmas(50_000, -1.2, 1.2, (0.1, 0.5), gen(3), like=like)
    assert float(clipped.min()) == 0.1 and float(clipped.max()) == 0.5
    with pytest.raises(ValueError, match="std"):
        log_normal_sigmas(4, 0.0, 0.0, (0.1, 1.0), like=like)


def _dsm_minus_esm(model, gm, x, target_factor=1.0, dsm_weighting="sigma2"):
    """Per-sample lambda/2 |s + k n/sigma|^2 - lambda/2 |s - grad log p_sigma|^2 on common noise;
    k = target_factor is 1 for DSM (k = 2 is the wrong target k n / sigma = 4 dsm of s / 2)."""
    k = target_factor
    dsm = k**2 * dsm_loss(lambda y, s: model.score(y, s) / k, x, SIGMA, gen(8), weighting=dsm_weighting)
    return dsm - esm_loss(model.score, gm.score, x, SIGMA, gen(8))


@torch.no_grad()
def test_dsm_minus_esm_is_a_constant(gm, models, data):
    r"""Vincent (2010): DSM(theta) - ESM(theta) = lambda/2 (d / sigma^2 - E|grad log p_sigma|^2).

    With common random numbers the paired difference of the two settings' gaps has mean 0 and a
    small standard error; the closed-form constant is checked against the gap of one setting.
    A target n/sigma off by a factor 2, or DSM without the sigma^2 weighting that ESM has, leave a
    theta-dependent term (-2 lambda E[s . grad log p_sigma], resp. (1 - sigma^2)/2 E|s|^2 + ...),
    which the same statistic detects at > 10 standard errors.
    """
    first, second = (_dsm_minus_esm(m, gm, data) for m in models)
    assert abs(z_score(first - second)) <= Z
    y, _, _ = perturb(data, SIGMA, gen(8))
    constant = SIGMA**2 / 2 * (2 / SIGMA**2 - gm.score(y, SIGMA).pow(2).sum(1))  # per sample, d = 2
    assert abs(z_score(first - constant)) <= Z
    assert abs(float(first.mean()) - float(second.mean())) < 0.01 * float(constant.mean())
    wrong_factor = [_dsm_minus_esm(m, gm, data, target_factor=2.0) for m in models]
    assert abs(z_score(wrong_factor[0] - wrong_factor[1])) > 10
    wrong_weight = [_dsm_minus_esm(m, gm, data, dsm_weighting="none") for m in models]
    assert abs(z_score(wrong_weight[0] - wrong_weight[1])) > 10


def _ism_minus_esm(model, gm, x, trace_factor=1.0):
    """Per-sample ISM at y = x + sigma n minus ESM (lambda = 1) at the same y, with the trace term
    multiplied by trace_factor (1 for ISM)."""
    y, _, _ = perturb(x, SIGMA, gen(9))
    score_fn = lambda z: model.score(z, SIGMA)
    with torch.no_grad():
        half_sq = 0.5 * score_fn(y).pow(2).sum(1)
    ism = ism_loss(score_fn, y).detach()
    ism = trace_factor * (ism - half_sq) + half_sq
    return ism - esm_loss(model.score, gm.score, x, SIGMA, gen(9), weighting="none").detach()


def test_ism_minus_esm_is_a_constant(gm, models, data):
    r"""Hyvarinen (2005), Theorem 1 under p_sigma: ISM(theta) - ESM(theta) = -1/2 E|grad log p_sigma|^2.
    A trace term off by a factor 2 leaves E[tr grad s_theta] (theta-dependent) and is detected."""
    first, second = (_ism_minus_esm(m, gm, data) for m in models)
    assert abs(z_score(first - second)) <= Z
    y, _, _ = perturb(data, SIGMA, gen(9))
    constant = -0.5 * gm.score(y, SIGMA).pow(2).sum(1)
    assert abs(z_score(first - constant)) <= Z
    wrong = [_ism_minus_esm(m, gm, data, trace_factor=2.0) for m in models]
    assert abs(z_score(wrong[0] - wrong[1])) > 10


def test_exact_trace_is_the_jacobian_trace(models):
    model = models[1]
    x = torch.randn(7, 2, dtype=F64, generator=gen(10))
    jac = torch.func.vmap(torch.func.jacrev(lambda z: model.score(z[None], SIGMA)[0]))(x)  # (7, 2, 2)
    expected = jac.diagonal(dim1=1, dim2=2).sum(1) + 0.5 * model.score(x, SIGMA).pow(2).sum(1)
    torch.testing.assert_close(ism_loss(lambda z: model.score(z, SIGMA), x), expected, rtol=1e-10, atol=1e-10)
    # points of shape (B, *S): the trace runs over all prod(S) entries
    image_like = ism_loss(lambda z: model.score(z, SIGMA), x.reshape(7, 1, 2))
    torch.testing.assert_close(image_like, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    "estimator",
    [
        lambda f, x, g: ism_loss(f, x, estimator="hutchinson", generator=g),
        lambda f, x, g: ssm_loss(f, x, generator=g),
        lambda f, x, g: ssm_loss(f, x, variance_reduction=False, generator=g),
    ],
    ids=["hutchinson", "ssm-vr", "ssm"],
)
def test_stochastic_estimators_agree_with_exact_ism_in_expectation(models, estimator):
    """Hutchinson ISM and SSM (with or without variance reduction) are unbiased for exact ISM,
    point by point: 20000 independent probes at each of 4 points. The trace term is > 10 standard
    errors, so a factor 2 on it would fail."""
    model, m = models[1], 20_000
    points = torch.randn(4, 2, dtype=F64, generator=gen(11))
    score_fn = lambda z: model.score(z, SIGMA)
    exact = ism_loss(score_fn, points).detach()
    draws = estimator(score_fn, points.repeat_interleave(m, 0), gen(12)).detach().reshape(4, m)
    half_sq = 0.5 * score_fn(points).detach().pow(2).sum(1)
    for i in range(4):
        assert abs(z_score(draws[i] - exact[i])) <= Z
        assert abs(float(exact[i] - half_sq[i])) > 10 * float(draws[i].std() / m**0.5)


def test_l1_loss_is_the_mean_absolute_error():
    x = torch.tensor([[1.0, -1.0], [0.0, 2.0]], dtype=F64)
    shrink = lambda y, s: 0.5 * y
    y, _, _ = perturb(x, 0.3, gen(13))
    torch.testing.assert_close(l1_denoising_loss(shrink, x, 0.3, gen(13)), (0.5 * y - x).abs().mean(1))


def test_bad_arguments_are_refused():
    x = torch.zeros(4, 2)
    f = lambda y: -y
    with pytest.raises(ValueError, match="estimator"):
        ism_loss(f, x, estimator="trace")
    with pytest.raises(ValueError, match="n_probes"):
        ism_loss(f, x, estimator="hutchinson", n_probes=0)
    with pytest.raises(ValueError, match="n_projections"):
        ssm_loss(f, x, n_projections=0)
    with pytest.raises(ValueError, match="weighting"):
        dsm_loss(lambda y, s: -y, x, 0.5, weighting="sigma")
    with pytest.raises(ValueError, match="range"):
        dsm_loss(lambda y, s: -y, x, (1.0, 0.5))
    with pytest.raises(ValueError, match="sigma"):
        denoising_loss(lambda y, s: y, x, -1.0)


# --- what each loss estimates -------------------------------------------------------------------
# A constant "denoiser" c fed posterior samples x of one observation y: the loss's mean over the
# samples is E[loss(c - x) | y], and its minimiser over c is what the loss estimates.

def _minimiser(loss, xs: torch.Tensor, **kwargs) -> float:
    from scipy.optimize import minimize_scalar

    def risk(c: float) -> float:
        return float(loss(lambda y, s: torch.full_like(y, c), xs, 1e-12, gen(0), **kwargs).mean())

    lo, hi = float(xs.min()), float(xs.max())
    return minimize_scalar(risk, bounds=(lo, hi), method="bounded", options={"xatol": 1e-7}).x


@pytest.fixture(scope="module")
def skewed_posterior():
    """A 1-D prior (0.7 N(-1, 0.3^2) + 0.3 N(1.5, 0.5^2)) observed at y = 0.2, sigma = 0.6: a
    two-mode posterior whose mean and median differ by ~0.2; 200,000 exact draws."""
    prior = GaussianMixture(torch.tensor([0.7, 0.3], dtype=F64), torch.tensor([[-1.0], [1.5]], dtype=F64),
                            torch.tensor([[[0.09]], [[0.25]]], dtype=F64))
    post = prior.posterior(torch.tensor([[0.2]], dtype=F64), 0.6)
    xs = post.sample(200_000, generator=gen(11))[:, 0]  # (200000, 1)
    return post, xs


def test_squared_error_estimates_the_posterior_mean_and_l1_the_median(skewed_posterior):
    from scipy.stats import gaussian_kde

    post, xs = skewed_posterior
    mean, median = float(post.mean()[0, 0]), float(post.median()[0, 0])
    n = len(xs)
    se_mean = float(xs.std()) / n**0.5
    se_median = 1 / (2 * float(gaussian_kde(xs[:20_000, 0].numpy())(median)[0]) * n**0.5)  # 1 / (2 f(m) sqrt n)
    assert abs(mean - median) > 30 * max(se_mean, se_median)  # the two targets are far apart
    c_mse = _minimiser(denoising_loss, xs)
    c_l1 = _minimiser(l1_denoising_loss, xs)
    assert abs(c_mse - mean) < Z * se_mean and abs(c_l1 - median) < Z * se_median
    # and the exact median is the CDF's root
    prior_cdf = (post.weights[0] * torch.special.ndtr((median - post.means[0, :, 0]) / post.covs[:, 0, 0].sqrt())).sum()
    assert abs(float(prior_cdf) - 0.5) < 1e-12


def test_charbonnier_estimates_neither_the_mean_nor_the_median(skewed_posterior):
    post, xs = skewed_posterior
    mean, median = float(post.mean()[0, 0]), float(post.median()[0, 0])
    c = _minimiser(charbonnier_denoising_loss, xs, eps=0.3)
    gap = abs(mean - median)
    assert min(mean, median) + 0.1 * gap < c < max(mean, median) - 0.1 * gap  # strictly between, apart from both
    assert abs(_minimiser(charbonnier_denoising_loss, xs, eps=1e-4) - median) < 0.02 * gap  # eps -> 0: L1


def test_the_edge_aware_loss_still_estimates_the_posterior_mean():
    """A positive-definite quadratic form of the error: over 2-D posterior draws its minimiser is
    their mean, exactly (any lam), not the coordinate-wise median."""
    from scipy.optimize import minimize

    prior = GaussianMixture(torch.tensor([0.6, 0.4], dtype=F64), torch.tensor([[-1.0, 0.5], [1.2, -0.8]], dtype=F64),
                            torch.tensor([[[0.2, 0.05], [0.05, 0.1]], [[0.3, -0.1], [-0.1, 0.4]]], dtype=F64))
    xs = prior.posterior(torch.tensor([[0.1, 0.0]], dtype=F64), 0.7).sample(20_000, generator=gen(12))[:, 0]

    def risk(c, lam):
        out = torch.as_tensor(c, dtype=F64)
        return float(edge_aware_denoising_loss(lambda y, s: out.expand_as(y), xs, 1e-12, gen(0), lam=lam).mean())

    for lam in (0.0, 5.0):
        c = minimize(risk, x0=[0.0, 0.0], args=(lam,), method="BFGS", options={"gtol": 1e-12}).x
        torch.testing.assert_close(torch.as_tensor(c), xs.mean(0), atol=1e-6, rtol=0)
    assert float((xs.mean(0) - xs.median(0).values).abs().max()) > 0.05  # the median is elsewhere


def test_edge_aware_loss_adds_the_squared_differences_of_the_error():
    x = torch.zeros(1, 1, 2, 3, dtype=F64)
    out = torch.tensor([[[[0.0, 1.0, 3.0], [2.0, 2.0, 2.0]]]], dtype=F64)
    # |r|^2 = 22; horizontal differences 1, 2, 0, 0; vertical 2, 1, -1: 5 + 6 = 11
    loss = edge_aware_denoising_loss(lambda y, s: out, x, 1e-12, gen(0), lam=2.0)
    torch.testing.assert_close(loss, torch.tensor([(22 + 2 * 11) / 6], dtype=F64))


def test_flow_matching_is_the_denoising_loss_weighted_by_one_over_t_squared(gm, models):
    """Per sample, with the same noise: the velocity form of conditional flow matching equals the
    denoising loss at sigma = t / (1 - t) over t^2, to rounding; over t (a wrong power) it does not."""
    x = gm.sample(512, generator=gen(20))
    t = torch.rand(512, generator=gen(21), dtype=F64) * 0.98 + 0.01
    for model in models:
        with torch.no_grad():
            flow = flow_matching_loss(model, x, t, gen(22))
            weighted = denoising_loss(model, x, t / (1 - t), gen(22))
        torch.testing.assert_close(flow, weighted / t**2, rtol=1e-10, atol=1e-12)
        assert not torch.allclose(flow, weighted / t, rtol=0.1)


def test_conditional_minus_marginal_flow_matching_is_a_constant(gm, models):
    r"""Lipman et al. (2023), Theorem 2: the conditional objective and the marginal one, against the
    exact velocity :math:`u^\star = (x_t - D^\star) / t` of the mixture, differ by a constant: the
    paired difference of the two settings' gaps has mean 0 within Monte Carlo error."""
    from scoredae.mixtures import MixtureDenoiser

    x = gm.sample(50_000, generator=gen(23))
    t = torch.rand(50_000, generator=gen(24), dtype=F64) * 0.9 + 0.05
    exact = MixtureDenoiser(gm)

    def gap(model):
        with torch.no_grad():
            conditional = flow_matching_loss(model, x, t, gen(25))
            noise = torch.randn(x.shape, generator=gen(25), dtype=F64)  # the same draw
            x_t, sigma = (1 - t[:, None]) * x + t[:, None] * noise, t / (1 - t)
            marginal = ((exact(x_t / (1 - t[:, None]), sigma) - model(x_t / (1 - t[:, None]), sigma)) / t[:, None])
        return conditional - marginal.square().mean(1)

    first, second = (gap(m) for m in models)
    assert abs(z_score(first - second)) <= Z
    assert abs(z_score(flow_matching_loss(models[0], x, t, gen(25)).detach()
                       - flow_matching_loss(models[1], x, t, gen(25)).detach())) > 10  # the objectives differ
