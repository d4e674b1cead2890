"""Evaluation: denoising tables, distance to the Bayes-optimal denoiser and score, sample quality."""

from .bayes import bayes_gap, score_error
from .denoising import denoising_metrics, empirical_mmse, evaluate_psnr, picture_metrics, psnr
from .sample_quality import accuracy, frechet_distance, mnist_sample_quality, sliced_wasserstein

__all__ = ["accuracy", "bayes_gap", "denoising_metrics", "empirical_mmse", "evaluate_psnr", "frechet_distance",
           "mnist_sample_quality", "picture_metrics", "psnr", "score_error", "sliced_wasserstein"]
