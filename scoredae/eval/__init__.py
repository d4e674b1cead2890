"""Evaluation: denoising tables, distance to the Bayes-optimal denoiser and score, sample quality, and
posterior samplers against exact posteriors (one row per sampler, the leaderboard)."""

from .bayes import bayes_gap, score_error
from .denoising import denoising_metrics, empirical_mmse, evaluate_psnr, picture_metrics, psnr
from .exact_posterior import evaluate, grid_mixture_problem
from .leaderboard import leaderboard_rows, levels_for_budget, shipped_leaderboard
from .sample_quality import (
    accuracy,
    frechet_distance,
    max_sliced_wasserstein,
    mnist_sample_quality,
    sliced_wasserstein,
)

__all__ = ["accuracy", "bayes_gap", "denoising_metrics", "empirical_mmse", "evaluate", "evaluate_psnr",
           "frechet_distance", "grid_mixture_problem", "leaderboard_rows", "levels_for_budget", "max_sliced_wasserstein",
           "mnist_sample_quality",
           "picture_metrics", "psnr", "score_error", "shipped_leaderboard", "sliced_wasserstein"]
