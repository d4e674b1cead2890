"""scoredae: denoiser -> MMSE estimator -> Tweedie's formula -> score -> Langevin sampler."""

from .mixtures import GaussianMixture, MixturePosterior
from .score import MixtureDenoiser, Score, TweedieScore, denoiser_from_score

__version__ = "0.1.0"

__all__ = [
    "GaussianMixture",
    "MixtureDenoiser",
    "MixturePosterior",
    "Score",
    "TweedieScore",
    "denoiser_from_score",
]
