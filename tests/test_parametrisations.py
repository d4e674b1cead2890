"""Schedules and predictions: each schedule's times against its levels and derivatives against
autograd, every conversion round trip, and the fields of a Gaussian mixture in closed form: the
epsilon and score models built from the noised mixture's density give its exact denoiser, and the
velocity satisfies the continuity equation of the mixture's path."""

import pytest
import torch

from scoredae import GaussianMixture
from scoredae.mixtures import MixtureDenoiser
from scoredae.sampling.parametrisations import (
    PREDICTIONS,
    DenoiserPrediction,
    DiscreteVP,
    LinearInterpolant,
    PredictionDenoiser,
    VarianceExploding,
    VariancePreserving,
    denoised_from,
    prediction_from,
)

F64 = torch.float64
CONTINUOUS = {"ve": VarianceExploding(), "vp linear": VariancePreserving("linear"),
              "vp cosine": VariancePreserving("cosine"), "flow": LinearInterpolant()}
SCHEDULES = {**CONTINUOUS, "ddpm": DiscreteVP.from_betas("linear"), "ddpm cosine": DiscreteVP.from_betas("cosine"),
             "scaled linear": DiscreteVP.from_betas("scaled_linear", beta_start=0.00085, beta_end=0.012)}


def mixture():
    return GaussianMixture(torch.tensor([0.3, 0.7], dtype=F64), torch.tensor([[-1.0, 0.5], [1.5, -0.5]], dtype=F64),
                           torch.tensor([[[0.3, 0.1], [0.1, 0.2]], [[0.2, -0.05], [-0.05, 0.4]]], dtype=F64))


def times(schedule, n=7):
    lo, hi = schedule.t_range
    return torch.linspace(lo, hi, n, dtype=F64)


@pytest.mark.parametrize("name", SCHEDULES)
def test_the_time_of_a_level_inverts_the_level_of_a_time(name):
    schedule = SCHEDULES[name]
    t = times(schedule)
    sigma = schedule.sigma(t)
    assert bool((sigma.diff() > 0).all())
    torch.testing.assert_close(schedule.time(sigma), t, rtol=1e-9, atol=1e-9)
    if isinstance(schedule, VariancePreserving | DiscreteVP):
        torch.testing.assert_close(schedule.alpha(t) ** 2 + schedule.noise(t) ** 2, torch.ones_like(t))


def test_a_discrete_schedule_is_ddpms_at_the_integers():
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=F64)
    alpha_bar = torch.cumprod(1 - betas, 0)
    schedule = DiscreteVP.from_betas("linear")
    i = torch.tensor([0.0, 1.0, 500.0, 999.0], dtype=F64)
    torch.testing.assert_close(schedule.alpha(i) ** 2, alpha_bar[i.long()], rtol=1e-12, atol=0)
    half = schedule.sigma(torch.tensor(10.5, dtype=F64))  # the geometric mean between the integers
    torch.testing.assert_close(half, (schedule.sigma(i.new_tensor(10.0)) * schedule.sigma(i.new_tensor(11.0))).sqrt())


@pytest.mark.parametrize("name", ["vp linear", "vp cosine", "flow", "ve"])
def test_the_derivatives_are_autograds(name):
    schedule = CONTINUOUS[name]
    t = times(schedule)[1:-1].requires_grad_()
    for value, derivative in zip((schedule.alpha, schedule.noise), schedule.derivatives(t.detach())):
        out = value(t)  # VE's alpha is the constant 1: no graph
        grad = torch.autograd.grad(out.sum(), t)[0] if out.requires_grad else torch.zeros_like(t)
        torch.testing.assert_close(grad, derivative, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("prediction", PREDICTIONS)
def test_every_prediction_round_trips(name, prediction):
    schedule = SCHEDULES[name]
    if prediction == "velocity" and name not in CONTINUOUS:
        with pytest.raises(ValueError, match="velocity"):
            prediction_from(prediction, torch.zeros(3, 2, dtype=F64), torch.ones(3, 2, dtype=F64), times(schedule)[1:4],
                            schedule)
        return
    gen = torch.Generator().manual_seed(0)
    x_t, x0 = torch.randn(2, 5, 2, generator=gen, dtype=F64)
    t = times(schedule)[1:6]
    out = prediction_from(prediction, x0, x_t, t, schedule)
    torch.testing.assert_close(denoised_from(prediction, out, x_t, t, schedule), x0, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", CONTINUOUS)
@pytest.mark.parametrize("prediction", ["epsilon", "score"])
def test_a_model_of_the_noised_mixtures_density_is_its_exact_denoiser(name, prediction):
    """The law of x_t is the mixture of means alpha mu_k and covariances alpha^2 Sigma_k + s^2 I:
    its score (closed form, no denoiser involved), as a score or epsilon model, gives back the
    mixture's exact denoiser at sigma = s / alpha."""
    schedule, gm = CONTINUOUS[name], mixture()

    def model(x_t, t):
        alpha, s = schedule.alpha(t), schedule.noise(t)
        law = GaussianMixture(gm.weights, alpha * gm.means, alpha**2 * gm.covs + s**2 * torch.eye(2, dtype=F64))
        score = law.log_prob_and_score(x_t)[1]
        return score if prediction == "score" else -s * score

    denoiser = PredictionDenoiser(model, schedule, prediction)
    x = 2 * torch.randn(6, 2, generator=torch.Generator().manual_seed(1), dtype=F64)
    for t in times(schedule, 4)[1:]:
        sigma = float(schedule.sigma(t))
        torch.testing.assert_close(denoiser(x, sigma), MixtureDenoiser(gm)(x, sigma), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", CONTINUOUS)
def test_the_velocity_carries_the_mixtures_path(name):
    r"""The velocity from the exact denoiser satisfies the continuity equation of
    :math:`p_t`, :math:`\partial_t \log p_t + \nabla \cdot u + u \cdot \nabla \log p_t = 0`, with
    :math:`\partial_t` by central differences of the closed-form density and the divergence by autograd."""
    schedule, gm = CONTINUOUS[name], mixture()
    velocity = DenoiserPrediction(MixtureDenoiser(gm), schedule, "velocity")

    def log_p(x_t, t):
        alpha, s = schedule.alpha(t), schedule.noise(t)
        law = GaussianMixture(gm.weights, alpha * gm.means, alpha**2 * gm.covs + s**2 * torch.eye(2, dtype=F64))
        return law.log_prob_and_score(x_t)

    x = 2 * torch.randn(5, 2, generator=torch.Generator().manual_seed(2), dtype=F64)
    for t in times(schedule, 5)[1:-1]:
        h = 1e-5 * float(t)
        d_t = (log_p(x, t + h)[0] - log_p(x, t - h)[0]) / (2 * h)
        xr = x.clone().requires_grad_()
        u = velocity(xr, t)
        div = sum(torch.autograd.grad(u[:, i].sum(), xr, retain_graph=True)[0][:, i] for i in range(2))
        residual = (d_t + div + (u * log_p(x, t)[1]).sum(1)).detach()
        assert float(residual.abs().max()) < 1e-5 * float(d_t.abs().max() + 1)


def test_on_the_ve_schedule_the_velocity_is_the_edm_ode():
    from scoredae.sampling import ode_derivative

    gm, x = mixture(), torch.randn(4, 2, generator=torch.Generator().manual_seed(3), dtype=F64)
    u = DenoiserPrediction(MixtureDenoiser(gm), VarianceExploding(), "velocity")(x, 0.7)
    torch.testing.assert_close(u, ode_derivative(MixtureDenoiser(gm), x, 0.7))


def test_bad_conversions_are_refused_by_name():
    with pytest.raises(ValueError, match="prediction"):
        PredictionDenoiser(lambda x, t: x, LinearInterpolant(), "noise")
    denoiser = PredictionDenoiser(lambda x, t: x, LinearInterpolant(), "sample")
    with pytest.raises(ValueError, match="sigma: 2000"):
        denoiser(torch.zeros(2, 3), 2000.0)
    with pytest.raises(ValueError, match="model: its output"):
        PredictionDenoiser(lambda x, t: x[:, :2], LinearInterpolant(), "sample")(torch.zeros(2, 3), 1.0)
    with pytest.raises(ValueError, match="alphas_cumprod"):
        DiscreteVP(torch.tensor([0.5, 0.9]))
    with pytest.raises(ValueError, match="kind"):
        VariancePreserving("sigmoid")
    with pytest.raises(ValueError, match="t_min"):
        LinearInterpolant(0.0, 0.5)
