"""scoredae: denoiser -> MMSE estimator -> Tweedie's formula -> score -> Langevin sampler."""

from .diagnostics import effective_sample_size, split_rhat
from .metrics import bayes_gap, score_error
from .mixtures import GaussianMixture, MixturePosterior
from .objectives import denoising_loss, dsm_loss, esm_loss, ism_loss, l1_denoising_loss, perturb, ssm_loss
from .sampling import (
    SamplerDivergedError,
    SamplerResult,
    annealed_langevin,
    geometric_sigmas,
    mala,
    posterior_langevin,
    ula,
)
from .score import MixtureDenoiser, Score, TweedieScore, denoiser_from_score

__version__ = "0.1.0"

__all__ = [
    "GaussianMixture",
    "MixtureDenoiser",
    "MixturePosterior",
    "SamplerDivergedError",
    "SamplerResult",
    "Score",
    "TweedieScore",
    "annealed_langevin",
    "bayes_gap",
    "denoiser_from_score",
    "denoising_loss",
    "dsm_loss",
    "effective_sample_size",
    "esm_loss",
    "geometric_sigmas",
    "ism_loss",
    "l1_denoising_loss",
    "mala",
    "perturb",
    "posterior_langevin",
    "score_error",
    "split_rhat",
    "ssm_loss",
    "ula",
]
