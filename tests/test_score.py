"""The score interface: Tweedie's formula both ways, the exact mixture denoiser, deepinv interop."""

import deepinv
import pytest
import torch

from scoredae import GaussianMixture, MixtureDenoiser, Score, TweedieScore, denoiser_from_score

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
    assert isinstance(score, Score)
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
