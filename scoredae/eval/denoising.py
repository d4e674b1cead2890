r"""Denoising quality on a fixed noisy test subset: PSNR and SSIM (deepinv's metrics).

The noisy inputs are :math:`y_i = x_i + \sigma n_i` with :math:`n` drawn on the CPU from a fixed
seed, so every model (and every device) sees the same noise. PSNR is the mean over images of
:math:`10 \log_{10}(1 / \mathrm{MSE}_i)` (peak 1), as :class:`deepinv.metric.PSNR` computes it.

:func:`empirical_mmse` is deepinv's exact posterior mean under the empirical prior
:math:`p(x) = \frac1N \sum_k \delta(x - x_k)` of the training images (:class:`deepinv.models.MMSE`),
the reference a denoiser is compared to.
"""

from __future__ import annotations

import deepinv
import torch

from ..rng import seeded

NOISE_SEED = 1234


def psnr(estimate: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    r"""PSNR in dB of each image of ``estimate`` (B, C, H, W) against ``clean``,
    :math:`10 \log_{10}(1 / \mathrm{MSE})` (peak 1, :class:`deepinv.metric.PSNR`), shape ``(B,)``."""
    return deepinv.metric.PSNR()(estimate, clean)


def noisy_subset(images: torch.Tensor, sigma: float, seed: int = NOISE_SEED) -> torch.Tensor:
    """``images + sigma * n`` with noise from a fixed seed (drawn on the CPU, so any device agrees)."""
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(seed))
    return images + sigma * noise.to(images.device)


@torch.no_grad()
def denoising_metrics(
    denoiser, clean: torch.Tensor, sigma: float, ssim: bool = True, batch_size: int = 250,
    seed: int = NOISE_SEED,
) -> dict[str, float]:
    """Mean PSNR (dB) and SSIM of ``denoiser(y, sigma)`` against ``clean`` (N, C, H, W).

    ``denoiser=None`` scores the noisy input itself.
    """
    noisy = noisy_subset(clean, sigma, seed)
    metrics = {"psnr": deepinv.metric.PSNR()}
    if ssim:
        metrics["ssim"] = deepinv.metric.SSIM()
    values = {k: [] for k in metrics}
    for i in range(0, len(clean), batch_size):
        y, x = noisy[i : i + batch_size], clean[i : i + batch_size]
        out = y if denoiser is None else denoiser(y, sigma).float()
        for k, metric in metrics.items():
            values[k].append(metric(out, x))
    return {k: float(torch.cat(v).mean()) for k, v in values.items()}


@torch.no_grad()
def picture_metrics(denoiser, pictures: list[torch.Tensor], sigma: float, *, seed: int = NOISE_SEED,
                    tile: int | None = 256, progress: bool = False) -> list[dict[str, float]]:
    """PSNR (dB) and SSIM of each picture (C, H, W) in [0, 1], of any size, denoised at ``sigma``.

    Picture ``i`` is noised as ``x + sigma * n`` with ``n`` drawn on the CPU from ``(seed, i)``, so
    every denoiser sees the same noise. ``denoiser=None`` scores the noisy input; a scoredae
    network runs through :func:`~scoredae.nets.tiling.denoise_image` (padding, and tiles of
    ``tile`` pixels); any other denoiser (e.g. :class:`deepinv.models.BM3D`) is called as
    ``denoiser(y, sigma)`` on the whole picture. The output is clipped to [0, 1] before scoring.
    """
    from ..nets.base import ImageDenoiser
    from ..nets.tiling import denoise_image

    psnr, ssim = deepinv.metric.PSNR(), deepinv.metric.SSIM()
    scores = []
    for i, x in enumerate(pictures):
        x = x[None]  # (1, C, H, W)
        y = x + sigma * torch.randn(x.shape, generator=seeded(seed, i)).to(x.device, x.dtype)
        if denoiser is None:
            out = y
        elif isinstance(denoiser, ImageDenoiser):
            out = denoise_image(denoiser, y, sigma, tile=tile, progress=progress)
        else:
            out = denoiser(y, sigma)
        out = out.float().clamp(0, 1)
        scores.append({"psnr": float(psnr(out, x)), "ssim": float(ssim(out, x))})
    return scores


def evaluate_psnr(denoiser, clean: torch.Tensor, sigma: float, seed: int = NOISE_SEED) -> float:
    """Mean PSNR in dB of the denoised fixed-seed noisy ``clean`` images (see :func:`denoising_metrics`)."""
    return denoising_metrics(denoiser, clean, sigma, ssim=False, seed=seed)["psnr"]


def empirical_mmse(train_images: torch.Tensor) -> deepinv.models.MMSE:
    """deepinv's exact MMSE denoiser for the empirical prior of ``train_images`` (N, C, H, W)."""
    return deepinv.models.MMSE(dataloader=train_images, device=train_images.device)
