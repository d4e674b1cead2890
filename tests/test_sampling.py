"""Langevin samplers against exact targets: ULA's stationary law on Gaussians, MALA on a bimodal
mixture, Song & Ermon's mode-weight toy, PnP-ULA against exact mixture posteriors.

Tolerances are 5 Monte Carlo standard errors, from many independent chains (final states only, so
the draws are independent) or from the ESS of one run; each test also checks that a factor-2
error (e.g. sqrt(eta) noise, which halves the variance) lies outside its tolerance.
"""

import deepinv
import pytest
import torch
from scipy import stats

from scoredae import GaussianMixture, MixtureDenoiser, TweedieScore
from scoredae.inverse import posterior_langevin
from scoredae.sampling import (
    SamplerDivergedError,
    annealed_langevin,
    effective_sample_size,
    geometric_sigmas,
    mala,
    ula,
)

F64 = torch.float64
N_CHAINS = 4000


def mixture(weights, means, covs) -> GaussianMixture:
    return GaussianMixture(torch.tensor(weights, dtype=F64), torch.tensor(means, dtype=F64), covs)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def gaussian_score(mu, precision):
    return lambda x: -(x - mu) @ precision  # precision symmetric


def cov_standard_errors(samples: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """Standard error of each entry of the sample covariance of iid rows: sd((x_i - m_i)(x_j - m_j)) / sqrt(N)."""
    centred = samples - mean
    products = centred[:, :, None] * centred[:, None, :]  # (N, d, d)
    return products.std(0) / len(samples) ** 0.5


@pytest.mark.parametrize("step", [0.05, 1.0])
def test_ula_stationary_variance_matches_exact_formula(step):
    """ULA on N(0, s^2) is AR(1) with stationary variance s^2 / (1 - h / (2 s^2)); with sqrt(h)
    noise it would be half of that. At h = 1, s^2 = 1.5 the O(h) bias is visible and positive."""
    s2 = 1.5
    x0 = torch.zeros(N_CHAINS, 1, dtype=F64)
    n_steps = int(12 * s2 / step)  # contraction (1 - h / s^2)^n < e^-12 in variance
    result = ula(lambda x: -x / s2, x0, step, n_steps, generator=gen(0))
    exact = s2 / (1 - step / (2 * s2))
    var = float(result.samples.var())
    se = exact * (2 / (N_CHAINS - 1)) ** 0.5
    assert abs(var - exact) < 5 * se < exact / 2  # the sqrt(eta)-noise chain (exact / 2) fails
    if step == 1.0:
        assert var - s2 > 5 * se  # the bias is visible, and an inflation


def test_ula_welford_statistics_with_ess_standard_error():
    """One run of 32 chains: the streaming pooled variance over kept steps matches the exact ULA
    variance within 5 standard errors computed from the ESS of (x - m)^2; the ESS of the chain
    itself matches the AR(1) value MN (1 - phi) / (1 + phi), phi = 1 - h / s^2."""
    s2, step, burn_in = 2.0, 0.4, 200
    x0 = torch.zeros(32, 1, dtype=F64)
    result = ula(lambda x: -x / s2, x0, step, 4200, burn_in=burn_in, record_every=1, generator=gen(1))
    draws = result.trajectory[:, burn_in + 1 :, 0]  # kept steps, (32, 4000)
    torch.testing.assert_close(result.pooled_var[0], draws.var(correction=0), rtol=1e-10, atol=0)
    exact = s2 / (1 - step / (2 * s2))
    squares = (draws - draws.mean()) ** 2
    se = float(squares.std()) / float(effective_sample_size(squares[..., None])[0]) ** 0.5
    assert abs(float(result.pooled_var[0]) - exact) < 5 * se < exact / 2
    phi = 1 - step / s2
    ess_exact = draws.numel() * (1 - phi) / (1 + phi)
    assert abs(float(effective_sample_size(draws[..., None])[0]) / ess_exact - 1) < 0.15


def test_ula_2d_gaussian_mean_covariance_and_bias():
    """N(mu, Sigma) in 2D. Small step: mean and covariance of the final states match (mu, Sigma)
    within 5 SE. Large step: they match the exact ULA law, covariance (P - h P^2 / 2)^{-1} with
    P = Sigma^{-1}, which is inflated w.r.t. Sigma by more than 5 SE."""
    mu = torch.tensor([1.0, -2.0], dtype=F64)
    sigma = torch.tensor([[1.0, 0.6], [0.6, 2.0]], dtype=F64)
    precision = torch.linalg.inv(sigma)
    x0 = torch.zeros(N_CHAINS, 2, dtype=F64)
    for step, n_steps in [(0.01, 3000), (0.8, 60)]:
        samples = ula(gaussian_score(mu, precision), x0, step, n_steps, generator=gen(2)).samples
        exact_cov = torch.linalg.inv(precision - step / 2 * precision @ precision)
        se_mean = (exact_cov.diagonal() / N_CHAINS).sqrt()
        assert torch.all((samples.mean(0) - mu).abs() < 5 * se_mean)
        se_cov = cov_standard_errors(samples, mu)
        assert torch.all((torch.cov(samples.T) - exact_cov).abs() < 5 * se_cov)
        assert torch.all(5 * se_cov.diagonal() < exact_cov.diagonal() / 2)
    assert torch.all(exact_cov.diagonal() - sigma.diagonal() > 5 * se_cov.diagonal())


BIMODAL = {"weights": [0.3, 0.7], "means": [-2.0, 1.5], "sds": [0.5, 0.8]}


def bimodal_cdf(x, weights=BIMODAL["weights"]):
    return sum(w * stats.norm.cdf(x, m, s) for w, m, s in zip(weights, BIMODAL["means"], BIMODAL["sds"]))


def test_mala_bimodal_mixture_passes_ks_test():
    gm = mixture(BIMODAL["weights"], [[m] for m in BIMODAL["means"]], [s**2 for s in BIMODAL["sds"]])
    g = gen(3)
    x0 = 12 * torch.rand(2000, 1, generator=g, dtype=F64) - 6  # overdispersed start in [-6, 6]
    result = mala(gm.log_prob, gm.score, x0, 0.3, 1000, generator=g)
    draws = result.samples[:, 0].numpy()
    assert stats.kstest(draws, bimodal_cdf).pvalue > 0.01
    assert stats.kstest(draws, lambda x: bimodal_cdf(x, weights=[0.5, 0.5])).pvalue < 1e-6  # the test has power
    assert 0.6 < result.state.acceptance_rate < 0.99


def test_mala_is_exact_where_ula_is_biased():
    """N(0, 1) at h = 1: ULA's variance is 1 / (1 - 1/2) = 2, MALA's is exactly 1."""
    x0 = torch.zeros(N_CHAINS, 1, dtype=F64)
    result = mala(lambda x: -0.5 * x[:, 0] ** 2, lambda x: -x, x0, 1.0, 200, generator=gen(4))
    se = (2 / (N_CHAINS - 1)) ** 0.5
    assert abs(float(result.samples.var()) - 1) < 5 * se < 0.5
    assert 0.3 < result.state.acceptance_rate < 0.95
    assert result.trajectory is None and result.n_steps == 200


SONG_ERMON = mixture([0.2, 0.8], [[-5.0, -5.0], [5.0, 5.0]], 1.0)


def test_annealed_langevin_recovers_mode_weights_plain_langevin_does_not():
    """Song & Ermon 2019, the toy of Fig. 3: from uniform points in [-8, 8]^2, plain Langevin with
    the exact score keeps the 50/50 split of its start; annealed Langevin (sigma 20 -> 1, 10
    levels, 100 steps each, eps = 0.1) finds 0.2 / 0.8. SE of a weight at N = 4000: 0.0063."""
    g = gen(5)
    x0 = 16 * torch.rand(N_CHAINS, 2, generator=g, dtype=F64) - 8
    plain = ula(SONG_ERMON.score, x0, 0.05, 1000, generator=g).samples
    annealed = annealed_langevin(SONG_ERMON.score, x0, geometric_sigmas(20, 1, 10), 100, 0.1, generator=g).samples
    weight_plain = float((plain.sum(1) > 0).to(F64).mean())  # mass near (5, 5)
    weight_annealed = float((annealed.sum(1) > 0).to(F64).mean())
    assert abs(weight_annealed - 0.8) < 0.03
    assert abs(weight_plain - 0.5) < 0.05


def test_annealed_langevin_final_denoise_and_steps():
    """final_denoise returns x + sigma_L^2 s(x, sigma_L) of the last Langevin state."""
    x0 = torch.zeros(8, 2, dtype=F64)
    sigmas = [2.0, 1.0, 0.5]
    kw = {"record_every": 1, "generator": gen(6)}
    plain = annealed_langevin(SONG_ERMON.score, x0, sigmas, 5, 0.1, **kw)
    denoised = annealed_langevin(SONG_ERMON.score, x0, sigmas, 5, 0.1, final_denoise=True, **{**kw, "generator": gen(6)})
    last = plain.trajectory[:, -1]
    assert plain.n_steps == 15 and plain.trajectory.shape == (8, 16, 2)
    torch.testing.assert_close(denoised.samples, last + 0.25 * SONG_ERMON.score(last, 0.5))
    torch.testing.assert_close(geometric_sigmas(20, 1, 10)[[0, -1]], torch.tensor([20.0, 1.0], dtype=F64))


POSTERIOR_PRIOR = mixture([0.4, 0.6], [[-1.0, 0.0], [1.0, 1.0]], torch.tensor([[0.5, 0.3], [0.4, 0.6]], dtype=F64))


@pytest.mark.parametrize("A, y", [([[1.0, -0.5]], [[0.5]]), ([[1.0, 0.5], [0.0, 1.0]], [[0.5, 1.5]])])
def test_posterior_langevin_matches_exact_mixture_posterior(A, y):
    """y = A x + 0.5 n with a mixture prior: mean and covariance of 2000 independent chains (final
    states) match GaussianMixture.posterior within 5 SE; the ULA bias at h = 0.005 is below 1 SE."""
    A, y, noise = torch.tensor(A, dtype=F64), torch.tensor(y, dtype=F64), 0.5
    post = POSTERIOR_PRIOR.posterior(y, noise, A)
    mean, cov = post.mean()[0], post.cov()[0]
    g = gen(7)
    x0 = POSTERIOR_PRIOR.sample(2000, generator=g)
    samples = posterior_langevin(POSTERIOR_PRIOR.score, y, A, noise, x0, 0.005, 1500, generator=g).samples
    assert torch.all((samples.mean(0) - mean).abs() < 5 * (cov.diagonal() / 2000).sqrt())
    se_cov = cov_standard_errors(samples, mean)
    assert torch.all((torch.cov(samples.T) - cov).abs() < 5 * se_cov)
    assert torch.all(5 * se_cov.diagonal() < cov.diagonal() / 2)


def test_posterior_langevin_with_tweedie_score_equals_exact_score():
    """The prior score TweedieScore(MixtureDenoiser(gm)) at prior_sigma drives the same chain as
    the closed-form gm.score(x, prior_sigma), and the statistics target gm.noised(prior_sigma)'s posterior."""
    A, y, noise, prior_sigma = torch.tensor([[1.0, -0.5]], dtype=F64), torch.tensor([[0.5]], dtype=F64), 0.5, 0.3
    x0 = POSTERIOR_PRIOR.sample(1000, generator=gen(8))
    run = lambda score: posterior_langevin(
        score, y, A, noise, x0, 0.01, 600, prior_sigma=prior_sigma, burn_in=300, generator=gen(9))
    tweedie, exact = run(TweedieScore(MixtureDenoiser(POSTERIOR_PRIOR))), run(POSTERIOR_PRIOR.score)
    torch.testing.assert_close(tweedie.samples, exact.samples, rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(tweedie.pooled_var, exact.pooled_var, rtol=1e-8, atol=1e-8)
    post = POSTERIOR_PRIOR.noised(prior_sigma).posterior(y, noise, A)
    mean, cov = post.mean()[0], post.cov()[0]
    assert torch.all((tweedie.samples.mean(0) - mean).abs() < 5 * (cov.diagonal() / 1000).sqrt())


def image_mixture() -> GaussianMixture:
    """A d = 4 mixture seen as (1, 2, 2) images in [0, 1]."""
    return mixture([0.5, 0.5], [[0.2, 0.8, 0.3, 0.7], [0.8, 0.2, 0.6, 0.4]], 0.04)


def test_annealed_langevin_on_images_equals_points():
    """(B, 1, 2, 2) images with the Tweedie score of MixtureDenoiser give the same chain as the
    points (B, 4) with the exact score."""
    gm = image_mixture()
    x0 = torch.rand(64, 4, generator=gen(10), dtype=F64)
    sigmas = geometric_sigmas(1.0, 0.05, 5)
    images = annealed_langevin(TweedieScore(MixtureDenoiser(gm)), x0.reshape(64, 1, 2, 2), sigmas, 20, 1e-3,
                               final_denoise=True, generator=gen(11))
    points = annealed_langevin(gm.score, x0, sigmas, 20, 1e-3, final_denoise=True, generator=gen(11))
    assert images.samples.shape == (64, 1, 2, 2)
    torch.testing.assert_close(images.samples.reshape(64, 4), points.samples, rtol=1e-7, atol=1e-7)


def test_posterior_langevin_with_deepinv_inpainting_and_pair_equals_matrix():
    """A deepinv Inpainting mask on (B, 1, 2, 2), the pair (A, A_adjoint) and the matrix diag(mask)
    drive the same chain; its pooled statistics match the exact posterior of the masked problem."""
    gm, noise, prior_sigma = image_mixture(), 0.1, 0.05
    mask = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=F64)
    physics = deepinv.physics.Inpainting(img_size=(1, 2, 2), mask=mask.reshape(1, 2, 2).float())
    physics.mask = physics.mask.to(F64)
    y = torch.tensor([[0.25, 0.0, 0.3, 0.0]], dtype=F64)  # observed pixels 0 and 2: near the first mode
    x0 = torch.full((256, 1, 2, 2), 0.5, dtype=F64)
    score = TweedieScore(MixtureDenoiser(gm))
    kw = {"prior_sigma": prior_sigma, "burn_in": 100, "clip": (-1.0, 2.0)}
    step = 0.5 / (1 / noise**2 + 1 / (0.04 + prior_sigma**2))  # half the inverse Lipschitz constant
    runs = [
        posterior_langevin(score, y.reshape(1, 1, 2, 2), forward, noise, x0, step, 400, generator=gen(12), **kw)
        for forward in (physics, (lambda x: mask.reshape(1, 2, 2) * x,) * 2)
    ]
    flat = posterior_langevin(gm.score, y, torch.diag(mask), noise, x0.reshape(256, 4), step, 400,
                              generator=gen(12), **kw)
    for run in runs:
        torch.testing.assert_close(run.samples.reshape(256, 4), flat.samples, rtol=1e-7, atol=1e-7)
    post = gm.noised(prior_sigma).posterior(y, noise, torch.diag(mask))
    exact_mean, exact_var = post.mean()[0], post.cov()[0].diagonal()
    se = (exact_var / 256).sqrt()  # final states of independent chains
    assert torch.all((flat.samples.mean(0) - exact_mean).abs() < 5 * se)
    assert runs[0].pooled_mean.shape == (1, 2, 2)


def test_common_keywords_burn_in_thinning_trajectory_callback():
    x0 = torch.randn(5, 3, generator=gen(13), dtype=F64)
    steps = []
    result = ula(lambda x: -x, x0, 0.1, 40, burn_in=10, thinning=3, record_every=1,
                 callback=lambda t, x: steps.append(t), generator=gen(14))
    kept = result.trajectory[:, 13::3]  # steps 13, 16, ..., 40
    assert result.n_kept == 10 and kept.shape[1] == 10
    torch.testing.assert_close(result.mean, kept.mean(1))
    torch.testing.assert_close(result.var, kept.var(1, correction=0))
    torch.testing.assert_close(result.trajectory[:, 0], x0)
    torch.testing.assert_close(result.trajectory[:, -1], result.samples)
    assert steps == list(range(1, 41))
    sparse = ula(lambda x: -x, x0, 0.1, 40, record_every=7, generator=gen(14))
    assert sparse.trajectory.shape == (5, 6, 3)
    torch.testing.assert_close(sparse.trajectory[:, 1], result.trajectory[:, 7])


def test_same_seed_same_samples():
    x0 = torch.zeros(10, 2, dtype=F64)
    run = lambda seed: mala(SONG_ERMON.log_prob, SONG_ERMON.score, x0, 0.5, 50, generator=gen(seed)).samples
    assert torch.equal(run(15), run(15)) and not torch.equal(run(15), run(16))


def test_divergence_stops_with_a_clear_error():
    x0 = torch.ones(4, 2, dtype=F64)
    with pytest.raises(SamplerDivergedError, match=r"by step \d+.*smaller step size"):
        ula(lambda x: -x, x0, 2.5, 1000, generator=gen(17))  # |1 - h| > 1 grows geometrically
    with pytest.raises(SamplerDivergedError, match="by step 10"):
        ula(lambda x: x * float("nan"), x0, 0.1, 100)
    with pytest.raises(SamplerDivergedError, match="max_norm"):
        ula(lambda x: torch.zeros_like(x), x0, 1.0, 100, max_norm=3.0, generator=gen(18))


@pytest.mark.parametrize("steps", [8, 9, 10, 11, 25])
def test_geometric_growth_is_reported_and_diffusive_growth_is_not(steps):
    """ULA with step 2.5 on N(0, 1) multiplies the state by -1.5 a step: reported whenever the run
    ends, even before the first check (8 steps: 25-fold growth). ULA from 0 towards N(0, 10^2) grows
    too (20-fold in 8 steps), but diffusively, and runs to the end; so does one from 100 down."""
    x0 = torch.randn(64, 1, generator=gen(30), dtype=F64)
    with pytest.raises(SamplerDivergedError, match="grew geometrically"):
        ula(lambda x: -x, x0, 2.5, steps, generator=gen(31))
    wide = ula(lambda x: -x / 100, torch.zeros(64, 1, dtype=F64), 1.0, steps, generator=gen(32))
    assert wide.samples.abs().max() > 2  # it did grow, from 0
    ula(lambda x: -x / 100, 100 + x0, 1.0, steps, generator=gen(33))


def test_transport_samplers_keep_no_statistics_and_states_are_named():
    from scoredae.sampling import (
        KSState,
        MALAState,
        edm_sampler,
        kadkhodaie_simoncelli,
        karras_sigmas,
    )

    denoiser = MixtureDenoiser(SONG_ERMON)
    ode = edm_sampler(denoiser, 20 * torch.randn(8, 2, generator=gen(34), dtype=F64), karras_sigmas(0.01, 20, 5))
    ks = kadkhodaie_simoncelli(denoiser, torch.randn(8, 2, generator=gen(35), dtype=F64), generator=gen(36))
    for result in (ode, ks):
        assert result.mean is None and result.var is None and result.n_kept == 0
        with pytest.raises(ValueError, match="not a stationary chain"):
            _ = result.pooled_mean
    assert isinstance(ks.state, KSState) and bool((ks.state.sigma < 0.01).all())
    with pytest.raises(TypeError, match="burn_in"):  # a transport path has no burn-in to set
        edm_sampler(denoiser, torch.zeros(8, 2, dtype=F64), karras_sigmas(0.01, 20, 5), burn_in=2)
    chain = mala(SONG_ERMON.log_prob, SONG_ERMON.score, torch.zeros(8, 2, dtype=F64), 0.5, 20, generator=gen(37))
    assert isinstance(chain.state, MALAState)
    assert chain.state.acceptance_rate == float(chain.state.accepted.sum()) / (8 * 20)
    torch.testing.assert_close(chain.state.log_prob, SONG_ERMON.log_prob(chain.samples))


def test_bad_arguments_are_refused():
    x0 = torch.zeros(4, 2, dtype=F64)
    score = lambda x: -x
    with pytest.raises(ValueError, match="step_size"):
        ula(score, x0, 0.0, 10)
    with pytest.raises(ValueError, match="n_steps"):
        ula(score, x0, 0.1, 0)
    with pytest.raises(ValueError, match="burn_in"):
        ula(score, x0, 0.1, 10, burn_in=10)
    with pytest.raises(ValueError, match="thinning"):
        ula(score, x0, 0.1, 10, burn_in=5, thinning=6)
    with pytest.raises(ValueError, match="sigmas"):
        annealed_langevin(SONG_ERMON.score, x0, [1.0, 2.0], 10, 0.1)
    with pytest.raises(ValueError, match="y: expected the shape of forward"):
        posterior_langevin(score, torch.zeros(4, 3, dtype=F64), torch.ones(2, 2, dtype=F64), 0.1, x0, 0.1, 10)
    with pytest.raises(ValueError, match="forward: expected an"):
        posterior_langevin(score, torch.zeros(4, 3, dtype=F64), torch.ones(3, 5, dtype=F64), 0.1, x0, 0.1, 10)
    with pytest.raises(TypeError, match="forward"):
        posterior_langevin(score, torch.zeros(4, 2, dtype=F64), "identity", 0.1, x0, 0.1, 10)
    with pytest.raises(ValueError, match="log_prob"):
        mala(lambda x: x, score, x0, 0.1, 10)
    with pytest.raises(ValueError, match="x0"):
        mala(SONG_ERMON.log_prob, SONG_ERMON.score, torch.zeros(4), 0.1, 10)
