"""GaussianMixture and its posterior against scipy, autograd, quadrature and conjugate formulas."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from scoredae import GaussianMixture

F64 = torch.float64


def mixture_2d(dtype=F64):
    weights = torch.tensor([0.2, 0.5, 0.3], dtype=dtype)
    means = torch.tensor([[-2.0, 0.0], [1.5, 1.0], [0.0, -2.5]], dtype=dtype)
    covs = torch.tensor(
        [[[1.0, 0.4], [0.4, 0.6]], [[0.3, -0.1], [-0.1, 0.8]], [[0.5, 0.0], [0.0, 0.2]]], dtype=dtype
    )
    return GaussianMixture(weights, means, covs)


def bimodal_1d(dtype=F64):
    return GaussianMixture(
        torch.tensor([0.4, 0.6], dtype=dtype),
        torch.tensor([[-2.0], [2.0]], dtype=dtype),
        torch.tensor([0.3, 0.5], dtype=dtype),
    )


def scipy_log_prob(gm, x, sigma=0.0):
    covs = gm.covs.numpy() + sigma**2 * np.eye(gm.dim)
    dens = sum(
        w * stats.multivariate_normal(m, c).pdf(x)
        for w, m, c in zip(gm.weights.numpy(), gm.means.numpy(), covs)
    )
    return np.log(dens)


@pytest.mark.parametrize("sigma", [0.0, 0.7])
def test_log_prob_matches_scipy(sigma):
    gm = mixture_2d()
    x = gm.sample(50, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(gm.log_prob(x, sigma).numpy(), scipy_log_prob(gm, x.numpy(), sigma), rtol=1e-12)


@pytest.mark.parametrize("sigma", [0.0, 0.3, 2.0])
def test_score_matches_autograd_and_finite_differences(sigma):
    gm = mixture_2d()
    x = gm.sample(40, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    (grad,) = torch.autograd.grad(gm.log_prob(x, sigma).sum(), x)
    score = gm.score(x.detach(), sigma)
    torch.testing.assert_close(score, grad, rtol=1e-10, atol=1e-12)
    h = 1e-5
    for i in range(2):
        e = torch.zeros(2, dtype=F64)
        e[i] = h
        fd = (gm.log_prob(x.detach() + e, sigma) - gm.log_prob(x.detach() - e, sigma)) / (2 * h)
        torch.testing.assert_close(score[:, i], fd, rtol=1e-6, atol=1e-7)


def test_covariance_forms_agree():
    means = torch.tensor([[0.0, 0.0], [1.0, 2.0]], dtype=F64)
    w = torch.tensor([0.5, 0.5], dtype=F64)
    x = torch.randn(10, 2, dtype=F64, generator=torch.Generator().manual_seed(2))
    full = GaussianMixture(w, means, 0.7 * torch.eye(2, dtype=F64).repeat(2, 1, 1))
    for covs in (0.7, torch.tensor([0.7, 0.7]), torch.full((2, 2), 0.7)):
        torch.testing.assert_close(GaussianMixture(w, means, covs).log_prob(x), full.log_prob(x))


def test_noised_matches_monte_carlo_convolution():
    """p_sigma(x) = E_z[p(x - sigma z)]: average of the clean density over noise draws."""
    gm, sigma = mixture_2d(), 0.6
    x = torch.tensor([[0.0, 0.0], [1.0, 1.0], [-2.0, 0.5]], dtype=F64)
    z = torch.randn(200_000, 2, dtype=F64, generator=torch.Generator().manual_seed(3))
    dens = torch.stack([gm.log_prob(xi - sigma * z).exp() for xi in x])  # (3, M)
    mc, se = dens.mean(1), dens.std(1) / dens.shape[1] ** 0.5
    exact = gm.noised(sigma).log_prob(x).exp()
    assert torch.all((mc - exact).abs() < 5 * se), (mc, exact, se)
    torch.testing.assert_close(gm.noised(sigma).log_prob(x), gm.log_prob(x, sigma))


def test_posterior_1d_matches_quadrature():
    gm, sigma = bimodal_1d(), 0.8
    y = torch.tensor([[-1.0], [0.3], [2.5]], dtype=F64)
    post = gm.posterior(y, sigma)
    for i, yi in enumerate(y[:, 0].tolist()):

        def joint(x, power=0, yi=yi):
            prior = 0.4 * stats.norm(-2, 0.3**0.5).pdf(x) + 0.6 * stats.norm(2, 0.5**0.5).pdf(x)
            return x**power * prior * stats.norm(x, sigma).pdf(yi)

        z = integrate.quad(joint, -15, 15, epsabs=1e-13)[0]
        mean = integrate.quad(lambda t: joint(t, 1), -15, 15, epsabs=1e-13)[0] / z
        second = integrate.quad(lambda t: joint(t, 2), -15, 15, epsabs=1e-13)[0] / z
        assert post.mean()[i, 0].item() == pytest.approx(mean, rel=1e-8, abs=1e-10)
        assert post.cov()[i, 0, 0].item() == pytest.approx(second - mean**2, rel=1e-7)
        assert post.log_prob(torch.tensor([[0.5]], dtype=F64).expand(3, 1))[i].item() == pytest.approx(
            np.log(joint(0.5) / z), rel=1e-8
        )


def test_posterior_2d_with_matrix_matches_grid():
    gm, sigma = mixture_2d(), 0.5
    A = torch.tensor([[1.0, 0.5]], dtype=F64)
    y = torch.tensor([[0.7]], dtype=F64)
    t = torch.linspace(-7, 7, 701, dtype=F64)
    grid = torch.cartesian_prod(t, t)  # (701^2, 2)
    log_post = gm.log_prob(grid) - 0.5 * ((y[0] - grid @ A.T)[:, 0] / sigma) ** 2
    p = torch.softmax(log_post, 0)
    mean = p @ grid
    cov = (grid - mean).T @ ((grid - mean) * p[:, None])
    post = gm.posterior(y, sigma, A)
    torch.testing.assert_close(post.mean()[0], mean, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(post.cov()[0], cov, rtol=1e-5, atol=1e-6)


def test_posterior_single_gaussian_is_conjugate():
    """K = 1: C = (S^-1 + A^T A / s^2)^-1 and m = C (S^-1 mu + A^T y / s^2)."""
    S = torch.tensor([[1.0, 0.3], [0.3, 0.5]], dtype=F64)
    mu = torch.tensor([0.5, -1.0], dtype=F64)
    A = torch.tensor([[2.0, 1.0], [0.0, 1.0], [1.0, -1.0]], dtype=F64)
    s = 0.4
    y = torch.tensor([[1.0, 0.0, 2.0], [-1.0, 0.5, 0.0]], dtype=F64)
    C = torch.linalg.inv(torch.linalg.inv(S) + A.T @ A / s**2)
    m = (C @ (torch.linalg.solve(S, mu)[:, None] + A.T @ y.T / s**2)).T
    post = GaussianMixture(torch.ones(1, dtype=F64), mu[None], S[None]).posterior(y, s, A)
    torch.testing.assert_close(post.mean(), m)
    torch.testing.assert_close(post.cov(), C.expand(2, 2, 2))
    torch.testing.assert_close(post.mode(), m)


def test_posterior_sample_moments():
    gm, sigma = mixture_2d(), 0.7
    y = torch.tensor([[0.0, 0.0], [1.0, -1.0]], dtype=F64)
    post = gm.posterior(y, sigma)
    draws = post.sample(100_000, generator=torch.Generator().manual_seed(4))  # (m, n, d)
    m = draws.shape[0]
    se = post.cov().diagonal(dim1=-2, dim2=-1).sqrt() / m**0.5
    assert torch.all((draws.mean(0) - post.mean()).abs() < 5 * se)
    assert draws.shape == (100_000, 2, 2)
    # covariance entries: the sample covariance of (a, b) is the mean of the products
    # (a - mean a)(b - mean b), whose standard error is their standard deviation / sqrt(m); it is
    # below a tenth of the variances, so a covariance off by a factor 2 is far outside 5 of them
    centred = draws - draws.mean(0)  # (m, n, d)
    products = centred[..., :, None] * centred[..., None, :]  # (m, n, d, d)
    sample_cov = products.mean(0)
    cov_se = products.std(0) / m**0.5
    assert torch.all((sample_cov - post.cov()).abs() < 5 * cov_se), (sample_cov, post.cov())
    assert torch.all(cov_se < 0.1 * post.cov().diagonal(dim1=-2, dim2=-1).amax(-1)[:, None, None])


@pytest.mark.parametrize("sigma", [0.2, 1.0])
def test_tweedie_identity(sigma):
    gm = mixture_2d()
    y = gm.noised(sigma).sample(100, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(gm.mmse(y, sigma), y + sigma**2 * gm.score(y, sigma), rtol=1e-12, atol=1e-12)


def test_map_is_best_stationary_point():
    gm, sigma = bimodal_1d(), 1.0
    y = torch.tensor([[-0.2], [0.0], [0.1], [3.0]], dtype=F64)
    post = gm.posterior(y, sigma)
    mode = post.mode().requires_grad_(True)
    (grad,) = torch.autograd.grad(post.log_prob(mode).sum(), mode)
    assert grad.abs().max() < 1e-8
    for k in range(gm.n_components):
        assert torch.all(post.log_prob(mode.detach()) >= post.log_prob(post.means[:, k]) - 1e-12)
    # bimodal prior: the mean sits between the modes, the MAP on one of them
    assert abs(post.mean()[1, 0]) < 0.5 < abs(mode[1, 0])


def test_float32_and_far_points_stay_finite():
    gm32 = mixture_2d(torch.float32)
    far = torch.tensor([[1e3, 1e3], [-1e3, 5.0]])
    for sigma in (0.0, 0.5):
        lp, sc = gm32.log_prob(far, sigma), gm32.score(far, sigma)
        assert lp.dtype == torch.float32 and torch.isfinite(lp).all() and torch.isfinite(sc).all()
    gm64 = mixture_2d()
    x = gm64.sample(20, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(gm32.score(x.float(), 0.3), gm64.score(x, 0.3).float(), rtol=1e-4, atol=1e-4)
    assert torch.isfinite(gm64.mmse(far.double(), 0.5)).all()


@settings(max_examples=25, deadline=None)
@given(
    k=st.integers(1, 4),
    d=st.integers(1, 3),
    sigma=st.floats(0.05, 3.0),
    seed=st.integers(0, 2**16),
)
def test_property_tweedie_and_score_autograd(k, d, sigma, seed):
    g = torch.Generator().manual_seed(seed)
    weights = torch.softmax(torch.randn(k, dtype=F64, generator=g), 0)
    means = 3 * torch.randn(k, d, dtype=F64, generator=g)
    root = torch.randn(k, d, d, dtype=F64, generator=g)
    covs = root @ root.transpose(-1, -2) + 0.1 * torch.eye(d, dtype=F64)
    gm = GaussianMixture(weights, means, covs)
    y = gm.noised(sigma).sample(8, generator=g).requires_grad_(True)
    (grad,) = torch.autograd.grad(gm.log_prob(y, sigma).sum(), y)
    torch.testing.assert_close(gm.score(y.detach(), sigma), grad, rtol=1e-8, atol=1e-9)
    torch.testing.assert_close(gm.mmse(y.detach(), sigma), y.detach() + sigma**2 * grad, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(
    "args, match",
    [
        (([0.5, 0.6], [[0.0], [1.0]], 1.0), "sum to 1"),
        (([-0.5, 1.5], [[0.0], [1.0]], 1.0), "non-negative"),
        (([1.0], [[0.0, 1.0]], [[[1.0, 2.0], [0.0, 1.0]]]), "symmetric"),
        (([1.0], [[0.0, 1.0]], [[[1.0, 2.0], [2.0, 1.0]]]), "positive-definite"),
        (([1.0], [[0.0, 1.0]], [[1.0, 1.0, 1.0]]), "covs: expected"),
        (([0.5, 0.5], [[0.0, 1.0]], 1.0), "weights: expected shape"),
        (([1.0], [0.0, 1.0], 1.0), "means: expected shape"),
    ],
)
def test_bad_construction_is_refused(args, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture(*[torch.tensor(a, dtype=F64) for a in args])


def test_bad_calls_are_refused():
    gm = mixture_2d()
    with pytest.raises(ValueError, match="sigma: expected a finite number >= 0"):
        gm.log_prob(torch.zeros(1, 2, dtype=F64), sigma=-1.0)
    with pytest.raises(ValueError, match=r"x: expected shape \(n, 2\)"):
        gm.score(torch.zeros(3, dtype=F64))
    with pytest.raises(ValueError, match="sigma: expected a finite number > 0"):
        gm.posterior(torch.zeros(1, 2, dtype=F64), 0.0)
    with pytest.raises(ValueError, match=r"y: expected shape \(n, 1\)"):
        gm.posterior(torch.zeros(1, 2, dtype=F64), 0.5, A=torch.ones(1, 2, dtype=F64))
    with pytest.raises(ValueError, match=r"A: expected shape \(m, 2\)"):
        gm.posterior(torch.zeros(1, 3, dtype=F64), 0.5, A=torch.ones(3, 3, dtype=F64))
    with pytest.raises(TypeError, match="torch.Tensor"):
        gm.log_prob(np.zeros((1, 2)))


@pytest.mark.parametrize("covs", ["full", "diagonal", "low rank"])
def test_the_posterior_mean_at_a_level_per_row_is_each_rows_own(covs):
    """One level per row, through the spectra, equals one :meth:`mmse` per row to 1e-12; the
    denoiser takes that path for a (B,) sigma."""
    from scoredae.mixtures import LowRank, MixtureDenoiser

    g = torch.Generator().manual_seed(0)
    k, d = 4, 6
    means = torch.randn(k, d, generator=g, dtype=F64)
    shapes = {"full": lambda f: f @ f.mT + 0.1 * torch.eye(d, dtype=F64), "diagonal": lambda f: f[..., 0].square() + 0.1,
              "low rank": lambda f: LowRank(f[..., :2], 0.1 + f[..., 2].square())}
    mixture = GaussianMixture(torch.full((k,), 1 / k, dtype=F64), means,
                              shapes[covs](torch.randn(k, d, d, generator=g, dtype=F64)))
    y = 2 * torch.randn(50, d, generator=g, dtype=F64)
    sigma = torch.rand(50, generator=g, dtype=F64) * 3 + 0.01
    expected = torch.stack([mixture.mmse(y[i:i + 1], float(sigma[i]))[0] for i in range(50)])
    assert torch.allclose(mixture.mmse_per_row(y, sigma), expected, rtol=0, atol=1e-12)
    assert torch.allclose(MixtureDenoiser(mixture)(y, sigma), expected, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="sigma"):
        mixture.mmse_per_row(y, sigma[:3])


def test_the_posterior_mean_per_row_of_a_large_mixture_goes_level_by_level():
    """Where the spectra would not fit in 256 MiB (K = 60, d = 784), the rows go one level at a time."""
    from scoredae.mixtures import LowRank

    g = torch.Generator().manual_seed(1)
    k, d = 60, 784
    mixture = GaussianMixture(torch.full((k,), 1 / k, dtype=F64), torch.randn(k, d, generator=g, dtype=F64),
                              LowRank(torch.randn(k, d, 3, generator=g, dtype=F64), torch.full((k, d), 0.5, dtype=F64)))
    y = torch.randn(3, d, generator=g, dtype=F64)
    sigma = torch.tensor([0.5, 1.0, 0.5], dtype=F64)
    expected = torch.cat([mixture.mmse(y[i:i + 1], float(sigma[i])) for i in range(3)])
    assert torch.allclose(mixture.mmse_per_row(y, sigma), expected, rtol=0, atol=1e-12)
    assert "spectra" not in mixture._cache.entries
