r"""Posterior sampling from trained denoisers: the inverse-problem recipes behind
``scoredae sample --method {posterior, dps, pigdm, tmpd, ddrm, diffpir, smc} --task NAME``.

An observation :math:`y = A x + \sigma_y n` of an image :math:`x` comes from a :class:`Task` of
:data:`TASKS` (denoising, inpainting a box, super-resolution by 2 x 2 block averages, a Gaussian
deblur), and a recipe draws samples of :math:`p(x \mid y)`:

* :func:`posterior_sampling`: PnP-ULA (Laumont et al. 2022) at one level of the prior, a stationary
  chain whose second half gives the posterior mean and per-pixel standard deviation;
* :func:`diffusion_posterior`: the samplers with a diffusion prior of
  :mod:`scoredae.inverse.diffusion_prior` and :mod:`scoredae.inverse.particles`, each chain (or particle) one
  draw, over the model's noise range.

:func:`posterior_summary` gives what both are judged by: the samples' mean and standard deviation,
the PSNR of the mean, and the share of clean pixels inside the samples' central 90% interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import deepinv
import torch

from .._checks import positive, positive_int
from ..data.mnist import IMAGE_SHAPE, MNIST_PIXELS
from ..eval.denoising import psnr
from ..inverse import (
    daps,
    dcps,
    ddnm,
    ddrm,
    diffpir,
    dpnp,
    dps,
    fps,
    mcgdiff,
    mgps,
    pigdm,
    pnp_dm,
    posterior_langevin,
    red_diff,
    tmpd,
    twisted_diffusion,
)
from ..inverse.diffusion_prior import data_proximal
from ..inverse.operators import LinearOperator, block_average, check_observation, linear_operator
from ..rng import Generator, randn, seeded
from ..sampling import SamplerResult, geometric_sigmas, karras_sigmas
from ..score import TweedieScore, require_every_level, trained_sigma
from .names import DEFAULT_STEPS


def box_mask(size: int = 12, top: int = 8, left: int = 8, shape: tuple[int, int, int] = IMAGE_SHAPE) -> torch.Tensor:
    """A ``shape`` mask of ones with a ``size`` x ``size`` box of zeros (the missing pixels)."""
    _, h, w = shape
    if not (0 <= top and 0 <= left and top + size <= h and left + size <= w and size > 0):
        raise ValueError(f"box of size {size} at ({top}, {left}) does not fit a {h} x {w} image")
    mask = torch.ones(shape)
    mask[:, top : top + size, left : left + size] = 0
    return mask


def _inpainting(shape) -> LinearOperator:
    _, h, w = shape
    size = max(1, round(12 * h / 28))  # MNIST's 12 x 12 box, scaled to the image
    mask = box_mask(size, round(8 * h / 28), round(8 * w / 28), shape)
    return linear_operator(deepinv.physics.Inpainting(img_size=shape, mask=mask), torch.zeros(1, *shape))


def _deblurring(shape) -> LinearOperator:
    kernel = deepinv.physics.functional.gaussian_blur(psf_size=None, sigma=(1.0, 1.0))
    return linear_operator(deepinv.physics.BlurFFT(img_size=shape, filter=kernel), torch.zeros(1, *shape))


@dataclass(frozen=True)
class Task:
    r"""An inverse problem :math:`y = A x + \sigma_y n`: ``operator(shape)`` builds :math:`A` for
    images of ``shape`` (C, H, W), ``noise_sigma`` is :math:`\sigma_y`."""

    description: str
    noise_sigma: float
    operator: Callable[[tuple[int, int, int]], LinearOperator]


#: the tasks of ``scoredae sample --task NAME``
TASKS: dict[str, Task] = {
    "denoise": Task("y = x + 0.3 n", 0.3,
                    lambda shape: linear_operator(deepinv.physics.Denoising(), torch.zeros(1, *shape))),
    "inpaint": Task("a box of 12 x 12 pixels (per 28) missing, y = M x + 0.05 n", 0.05, _inpainting),
    "super-resolution": Task("2 x 2 block means, y = A x + 0.02 n", 0.02, lambda shape: block_average(2)),
    "deblur": Task("a circular Gaussian blur of width 1 pixel, y = k * x + 0.02 n", 0.02, _deblurring),
}


def observe(task: str, x: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, LinearOperator, float]:
    """The observation of image ``x`` (1, C, H, W) under ``TASKS[task]``, its noise drawn from
    ``seed``: ``(y, operator, noise_sigma)``, on the device of ``x``."""
    if task not in TASKS:
        raise ValueError(f"task: expected one of {sorted(TASKS)}, got {task!r}")
    t = TASKS[task]
    op = t.operator(tuple(x.shape[1:]))
    clean = op.A(x)
    noise = torch.randn(clean.shape, generator=seeded(seed, -1, device=x.device), device=x.device, dtype=x.dtype)
    return clean + t.noise_sigma * noise, op, t.noise_sigma


#: the level of the smoothed prior a warm start begins at (:func:`posterior_sampling`)
WARM_START_SIGMA = 0.5


@torch.no_grad()
def posterior_sampling(
    denoiser,
    y: torch.Tensor,
    *,
    noise_sigma: float,
    forward=None,
    shape: tuple[int, int, int] = IMAGE_SHAPE,
    n_chains: int = 8,
    prior_sigma: float | None = None,
    n_steps: int = DEFAULT_STEPS["posterior"],
    step_size: float | None = None,
    warm_start: bool | None = None,
    warm_start_sigma: float = WARM_START_SIGMA,
    generator: Generator = None,
    progress: bool = False,
) -> SamplerResult:
    r"""PnP-ULA for one observation ``y`` (1, ...) of :math:`y = A x + \sigma_y n`, images of
    ``shape``; ``forward`` :math:`A` as :func:`~scoredae.inverse.operators.linear_operator` takes it
    (None: the identity, plain denoising).

    ``n_chains`` chains start at :math:`A^+ y` and run ``n_steps``, the second half kept; the result's
    ``pooled_mean`` and ``pooled_var.sqrt()`` are the per-pixel posterior mean and standard
    deviation. The prior score is the Tweedie score at ``prior_sigma`` (default: the model's
    trained sigma, or 0.05 for a noise-conditional model). The default step is a third of the
    inverse Lipschitz bound :math:`1 / (1/\sigma_y^2 + 1/\sigma_\text{prior}^2)` (Laumont et al.
    2022, Sec. 4.1; :math:`\lVert A \rVert \le 1` for every task).

    With a warm start (``warm_start``: by default for a noise-conditional model, which alone has
    the levels for it), the chains first run ``n_steps // 4`` steps at each of three geometric
    levels from ``warm_start_sigma`` down towards ``prior_sigma``: a smoother prior lets them cross
    between modes (e.g. fill a missing box with different strokes) before the final run, which
    alone is too local to do so.
    """
    positive_int("n_chains", n_chains)
    positive("noise_sigma", noise_sigma)
    if step_size is not None:
        positive("step_size", step_size)
    if prior_sigma is None:
        prior_sigma = trained_sigma(denoiser) or 0.05
    warm_start = trained_sigma(denoiser) is None if warm_start is None else warm_start
    example = torch.zeros(1, *shape, dtype=y.dtype, device=y.device)
    op = linear_operator((lambda x: x, lambda r: r) if forward is None else forward, example)
    if y.shape[0] != 1:
        raise ValueError(f"y: expected one observation (1, ...), got shape {tuple(y.shape)}")
    check_observation(y, op, example)
    observations = y.expand(n_chains, *y.shape[1:])

    def run(x0: torch.Tensor, level: float, steps: int, burn_in: int) -> SamplerResult:
        step = step_size if step_size is not None else 1 / (3 * (1 / noise_sigma**2 + 1 / level**2))
        return posterior_langevin(TweedieScore(denoiser), observations, op, noise_sigma, x0, step, steps,
                                  prior_sigma=level, clip=(-0.5, 1.5), burn_in=burn_in, generator=generator,
                                  progress=progress)

    x = op.pinv(observations).clone()
    if warm_start:
        require_every_level(denoiser, "a warm start")
        for level in geometric_sigmas(positive("warm_start_sigma", warm_start_sigma), prior_sigma, 4)[:-1].tolist():
            x = run(x, level, max(1, n_steps // 4), 0).samples
    return run(x, prior_sigma, n_steps, n_steps // 2)


#: the samplers with a diffusion prior of :func:`diffusion_posterior`, by ``--method`` name
DIFFUSION_POSTERIOR = {"dps": dps, "pigdm": pigdm, "tmpd": tmpd, "ddrm": ddrm, "diffpir": diffpir,
                       "smc": twisted_diffusion, "ddnm": ddnm, "mcgdiff": mcgdiff, "fps": fps, "daps": daps,
                       "pnp_dm": pnp_dm, "dpnp": dpnp, "red_diff": red_diff, "mgps": mgps, "dcps": dcps}
PARTICLE_METHODS = ("smc", "mcgdiff", "fps")  # n particles for the one observation


@torch.no_grad()
def diffusion_posterior(denoiser, y: torch.Tensor, *, noise_sigma: float, forward, method: str = "smc",
                        n: int = 8, steps: int | None = None, shape: tuple[int, int, int] = IMAGE_SHAPE,
                        data_mean: float = MNIST_PIXELS[0], data_std: float = MNIST_PIXELS[1],
                        start: str = "noise", generator: Generator = None, progress: bool = False) -> SamplerResult:
    r"""``n`` draws of :math:`p(x \mid y)` for one observation ``y`` (1, ...) by ``method`` of
    :data:`DIFFUSION_POSTERIOR`, on ``steps`` :func:`~scoredae.sampling.edm.karras_sigmas`
    levels of the model's range (then 0), each sampler with the options for images: DPS their Algorithm 1
    (:math:`\zeta' = 1`), PiGDM and the particle sampler the data variance :math:`\text{data\_std}^2`,
    TMPD the row-sum covariance, PnP-DM's and DPnP's couplings in units of ``data_std`` (PnP-DM from
    :math:`2\,\text{data\_std}` to :math:`0.02\,\text{data\_std}`, DPnP the authors' 0.4 and 0.16 for
    a spread of 0.5; both kept within the model's noise range), the others their defaults. The particle samplers (``smc``, ``mcgdiff``, ``fps``)
    run ``n`` particles for the one observation; the others ``n`` independent chains. MCGdiff, FPS,
    DDRM and DDNM need the operator's SVD.

    ``start="noise"`` draws the initial states from the Gaussian fit
    :math:`\mathcal N(\text{data\_mean}, (\text{data\_std}^2 + \sigma_{\max}^2) I)` of
    :math:`p_{\sigma_{\max}}`, right when :math:`\sigma_{\max}` dwarfs the data; ``"observation"``
    from :math:`\hat x + \sigma_{\max} z`, :math:`\hat x = m + A^\top (A A^\top + \rho I)^{-1}
    (y - A m)`, :math:`\rho = \sigma_y^2 / \text{data\_std}^2`, the posterior mean under the white
    prior :math:`\mathcal N(m, \text{data\_std}^2 I)` (a Wiener filter), for a model whose range
    stops low (the colour models' :math:`\sigma_{\max} = 0.2`).
    """
    if method not in DIFFUSION_POSTERIOR:
        raise ValueError(f"method: expected one of {sorted(DIFFUSION_POSTERIOR)}, got {method!r}")
    positive_int("n", n)
    require_every_level(denoiser, method)
    if y.shape[0] != 1:
        raise ValueError(f"y: expected one observation (1, ...), got shape {tuple(y.shape)}")
    options = {"dps": {"zeta": 1.0}, "pigdm": {"data_variance": data_std**2}, "tmpd": {"covariance": "row_sum"},
               "smc": {"data_variance": data_std**2},
               "pnp_dm": {"rho_max": 2 * data_std, "rho_min": 0.02 * data_std},
               "dpnp": {"eta_max": 0.8 * data_std, "eta_min": 0.32 * data_std}}.get(method, {})
    sigma_min, sigma_max = denoiser.sigma_range
    options = {k: min(max(v, sigma_min), sigma_max) if k[:3] in ("rho", "eta") else v for k, v in options.items()}
    if start == "noise":
        x_T = data_mean + math.sqrt(data_std**2 + sigma_max**2) * randn((n, *shape), generator, device=y.device)
    elif start == "observation":
        op = linear_operator(forward, torch.zeros(1, *shape, dtype=y.dtype, device=y.device))
        wiener = data_proximal(op, torch.full((1, *shape), data_mean, dtype=y.dtype, device=y.device), y,
                               noise_sigma**2 / data_std**2)
        x_T = wiener + sigma_max * randn((n, *shape), generator, device=y.device)
    else:
        raise ValueError(f"start: expected 'noise' or 'observation', got {start!r}")
    sampler = DIFFUSION_POSTERIOR[method]
    return sampler(denoiser, y.expand(n, *y.shape[1:]), forward, noise_sigma, x_T.to(y.dtype),
                   karras_sigmas(sigma_min, sigma_max, positive_int("steps", steps or DEFAULT_STEPS[method])), generator=generator,
                   progress=progress, **options)


def posterior_summary(samples: torch.Tensor, truth: torch.Tensor, level: float = 0.9) -> dict:
    """The samples' (n, C, H, W) per-pixel ``mean`` and ``std``, the PSNR (dB, peak 1) of the mean
    against ``truth`` (1, C, H, W), and ``coverage``: the share of the clean pixels inside the
    samples' central ``level`` interval (``level`` when the samples are the posterior's)."""
    if samples.shape[0] < 2:
        raise ValueError(f"samples: the spread and intervals need at least 2 samples, got {samples.shape[0]}")
    mean, std = samples.mean(0, keepdim=True), samples.std(0, keepdim=True)
    lo, hi = torch.quantile(samples, torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=samples.dtype,
                                                  device=samples.device), dim=0)
    return {"mean": mean, "std": std, "psnr": float(psnr(mean, truth)),
            "coverage": float(((truth >= lo) & (truth <= hi)).to(samples.dtype).mean())}
