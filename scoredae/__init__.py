"""scoredae: denoiser -> MMSE estimator -> Tweedie's formula -> score -> Langevin sampler.

The public names below are imported on first use (PEP 562), so ``import scoredae`` is instant and
``from scoredae import ula`` loads only what ``ula`` needs. Each stage of the chain is a subpackage:
:mod:`scoredae.sampling`, :mod:`scoredae.nets`, :mod:`scoredae.data`, :mod:`scoredae.train`,
:mod:`scoredae.eval`; the exact math is in :mod:`scoredae.mixtures`, :mod:`scoredae.score` and
:mod:`scoredae.objectives`.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "GaussianMixture": "mixtures",
    "MixtureDenoiser": "mixtures",
    "MixturePosterior": "mixtures",
    "TweedieScore": "score",
    "denoiser_from_score": "score",
    "trained_sigma": "score",
    "denoising_loss": "objectives",
    "dsm_loss": "objectives",
    "esm_loss": "objectives",
    "ism_loss": "objectives",
    "l1_denoising_loss": "objectives",
    "perturb": "objectives",
    "ssm_loss": "objectives",
    "SamplerDivergedError": "sampling",
    "SamplerResult": "sampling",
    "annealed_langevin": "sampling",
    "effective_sample_size": "sampling",
    "geometric_sigmas": "sampling",
    "mala": "sampling",
    "posterior_langevin": "inverse",
    "split_rhat": "sampling",
    "ula": "sampling",
    "RowGenerators": "rng",
    "ToyDenoiser": "nets",
    "load_pretrained": "nets",
    "train_toy": "train",
    "bayes_gap": "eval",
    "score_error": "eval",
}

__all__ = sorted(_EXPORTS)  # noqa: PLE0605 - the names of the table above


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'scoredae' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
