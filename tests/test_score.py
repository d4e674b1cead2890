"""The score interface: Tweedie's formula both ways, the exact mixture denoiser, deepinv interop."""

import deepinv
import pytest
import torch

from scoredae import GaussianMixture, MixtureDenoiser, TweedieScore, denoiser_from_score

F64 = torch.float64


@pytest.fixture
def gm():
    return GaussianMixture(
        torch.tensor([0.3, 0.7], dtype=F64),
        torch.tensor([[0.0, 0.0, 1.0, 1.0], [2.0, -1.0, 0.0, 0.5]], dtype=F64),
        torch.tensor([[0.5, 0.4, 0.3, 0.6], [0.2, 0.2, 0.9, 0.4]], dtype=F64),
    )


def test_tweedie_score_of_exact_denoiser_is_exact_score(gm):
    x = gm.noised(0.4).sample(30, generator=torch.Generator().manual_seed(0))
    score = TweedieScore(MixtureDenoiser(gm))
    torch.testing.assert_close(score(x, 0.4), gm.score(x, 0.4), rtol=1e-10, atol=1e-10)


def test_denoiser_from_score_inverts_tweedie(gm):
    x = gm.noised(0.8).sample(30, generator=torch.Generator().manual_seed(1))
    denoiser = denoiser_from_score(gm.score)
    assert isinstance(denoiser, deepinv.models.Denoiser)
    torch.testing.assert_close(denoiser(x, 0.8), gm.mmse(x, 0.8), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(TweedieScore(denoiser)(x, 0.8), gm.score(x, 0.8), rtol=1e-9, atol=1e-9)


def test_mixture_denoiser_on_images_with_per_sample_sigma(gm):
    """x of shape (B, 1, 2, 2) with d = 4; a (B,) sigma equals per-image calls."""
    g = torch.Generator().manual_seed(2)
    x = gm.noised(1.0).sample(6, generator=g).reshape(6, 1, 2, 2)
    sigma = torch.tensor([0.1, 0.5, 0.5, 1.0, 2.0, 0.1], dtype=F64)
    out = MixtureDenoiser(gm)(x, sigma)
    for i in range(6):
        expected = gm.mmse(x[i].reshape(1, 4), float(sigma[i])).reshape(1, 1, 2, 2)
        torch.testing.assert_close(out[i : i + 1], expected)


def test_deepinv_score_prior_accepts_mixture_denoiser(gm):
    """deepinv's ScorePrior.grad is the gradient of -log p_sigma, i.e. minus our score."""
    x = gm.noised(0.5).sample(8, generator=torch.Generator().manual_seed(3)).reshape(8, 1, 2, 2)
    prior = deepinv.optim.ScorePrior(MixtureDenoiser(gm))
    torch.testing.assert_close(prior.grad(x, 0.5).reshape(8, 4), -gm.score(x.reshape(8, 4), 0.5))


class FixedSigmaDenoiser(torch.nn.Module):
    trained_sigma = 0.5

    def forward(self, x, sigma):
        return 0.5 * x


def test_tweedie_warns_away_from_trained_sigma():
    score, x = TweedieScore(FixedSigmaDenoiser()), torch.ones(2, 3)
    torch.testing.assert_close(score(x, 0.5), (0.5 * x - x) / 0.25)
    with pytest.warns(UserWarning, match="trained at sigma=0.5"):
        score(x, 0.1)


def test_bad_input_is_refused(gm):
    score, x = TweedieScore(MixtureDenoiser(gm)), torch.zeros(2, 4, dtype=F64)
    with pytest.raises(ValueError, match="sigma: expected a finite number > 0"):
        score(x, 0.0)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        score(x, torch.ones(3, dtype=F64))
    with pytest.raises(TypeError, match="callable"):
        TweedieScore(3.0)
    with pytest.raises(TypeError, match="callable"):
        denoiser_from_score("score")
    with pytest.raises(TypeError, match="GaussianMixture"):
        MixtureDenoiser(torch.zeros(3))
    with pytest.raises(ValueError, match=r"prod\(S\) = 4"):
        MixtureDenoiser(gm)(torch.zeros(2, 5, dtype=F64), 0.5)


class ComponentLabels(torch.nn.Module):
    """The exact class-conditional MMSE denoiser of a mixture whose components are the classes:
    E[x | y, c] is component c's posterior mean, E[x | y] the mixture's (no label)."""

    label_conditional = True

    def __init__(self, mixture):
        super().__init__()
        self.mixture = mixture

    def forward(self, x, sigma, class_labels=None):
        if class_labels is None:
            return MixtureDenoiser(self.mixture)(x, sigma)
        m = self.mixture
        component = GaussianMixture(torch.ones(1, dtype=m.weights.dtype), m.means[class_labels][None],
                                    m.covs[class_labels][None])
        return MixtureDenoiser(component)(x, sigma)


@pytest.mark.parametrize("weight", [0.0, 1.0, 3.0])
def test_guidance_is_the_score_of_the_tilted_density(weight):
    """Tweedie's score of the guided denoiser is grad log p_sigma(x) + (1 + w) grad log p_sigma(c | x),
    computed from the mixture's exact noised density by autograd."""
    from scoredae.score import GuidedDenoiser

    g = torch.Generator().manual_seed(0)
    mixture = GaussianMixture(torch.tensor([0.3, 0.7], dtype=F64), torch.tensor([[-1.0, 0.0], [1.5, 1.0]], dtype=F64),
                              torch.tensor([0.2, 0.4], dtype=F64))
    sigma, label = 0.7, 1
    x = 2 * torch.randn(6, 2, generator=g, dtype=F64)
    guided = TweedieScore(GuidedDenoiser(ComponentLabels(mixture), label, weight))(x, sigma)
    noised = mixture.noised(sigma)
    z = x.clone().requires_grad_(True)
    log_p = noised.log_prob(z)
    component = GaussianMixture(torch.ones(1, dtype=F64), mixture.means[label][None],
                                (mixture.covs[label] + sigma**2 * torch.eye(2, dtype=F64))[None])
    log_p_c = mixture.weights[label].log() + component.log_prob(z) - log_p  # log p_sigma(c | x)
    expected = torch.autograd.grad((log_p + (1 + weight) * log_p_c).sum(), z)[0]
    torch.testing.assert_close(guided, expected, atol=1e-10, rtol=1e-10)


def test_guidance_refuses_an_unconditional_model_and_a_negative_weight():
    from scoredae.score import GuidedDenoiser

    mixture = GaussianMixture(torch.tensor([1.0], dtype=F64), torch.zeros(1, 2, dtype=F64), 1.0)
    with pytest.raises(ValueError, match="guidance needs a class-conditional model"):
        GuidedDenoiser(MixtureDenoiser(mixture), 0, 1.0)
    with pytest.raises(ValueError, match=r"weight: expected a guidance weight w >= 0"):
        GuidedDenoiser(ComponentLabels(mixture), 0, -0.5)
