"""scoredae: denoiser -> MMSE estimator -> Tweedie's formula -> score -> Langevin sampler."""

__version__ = "0.1.0"
