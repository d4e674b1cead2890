r"""Sampling from trained denoisers: the recipes behind ``scoredae sample``.

Each recipe turns a denoiser into a score with Tweedie's formula,
:math:`s(x, \sigma) = (D(x, \sigma) - x) / \sigma^2`, and hands it to a sampler of
:mod:`scoredae.sampling`:

* :func:`langevin_at_level`: ULA on :math:`p_\sigma` at one level: the one a fixed-sigma model was
  trained at, or any level of a noise-conditional model's range. Started near the data (a noisy
  digit or photograph) it explores plausible reconstructions; started from pure noise it fails,
  because far from the data the denoiser never saw a training example and its score is
  unreliable there.
* :func:`annealed_generation`: annealed Langevin (Song & Ermon 2019, Algorithm 1) with a
  noise-conditional model, from noise to digits.
* :func:`diffusion_generation`: EDM's Heun or Euler ODE (Karras et al. 2022), with optional churn,
  or Kadkhodaie & Simoncelli's coarse-to-fine ascent, from noise to digits in tens to hundreds of
  denoiser calls.

Posterior sampling for inverse problems, with the same models, is in :mod:`scoredae.recipes.posterior`.

The method names are those of ``scoredae sample --method`` (:mod:`scoredae.recipes.names`, with
the default steps of each); each recipe's defaults are in its signature, and the command line
passes on only what the user gave.
"""

from __future__ import annotations

import math

import torch

from .._checks import positive, positive_int
from ..data.mnist import IMAGE_SHAPE, MNIST_PIXELS
from ..rng import Generator, rand, randn
from ..sampling import (
    SamplerResult,
    annealed_langevin,
    dpm_solver_pp,
    edm_sampler,
    geometric_sigmas,
    ipndm,
    kadkhodaie_simoncelli,
    karras_sigmas,
    ula,
    unipc,
)
from ..score import GuidedDenoiser, TweedieScore, require_every_level, trained_sigma
from .names import DEFAULT_STEPS, DIFFUSION_METHODS

#: NCSN's MNIST setting (Song & Ermon 2019, Sec. 5 and App. B.1), on a 1 -> 0.01 geometric ladder
ANNEALED_DEFAULTS = {"sigma_max": 1.0, "sigma_min": 0.01, "n_levels": 10, "n_steps_each": DEFAULT_STEPS["annealed"],
                     "eps": 2e-5}
#: the probability-flow ODE solvers of :func:`diffusion_generation`: (sampler, its options)
ODE_SOLVERS = {"heun": (edm_sampler, {"solver": "heun"}), "euler": (edm_sampler, {"solver": "euler"}),
               "dpm++2m": (dpm_solver_pp, {"order": 2}), "dpm++3m": (dpm_solver_pp, {"order": 3}),
               "ipndm": (ipndm, {"order": 4}), "unipc": (unipc, {"order": 2})}


def sampling_level(denoiser, sigma: float | None = None) -> float:
    r"""The level to sample :math:`p_\sigma` at: ``sigma``, or a fixed-sigma model's own level (which
    is the only one it takes); a noise-conditional model needs it given."""
    fixed = trained_sigma(denoiser)
    if sigma is None and fixed is None:
        raise ValueError("sigma: a noise-conditional denoiser needs the level to sample p_sigma at")
    if fixed is not None and sigma is not None and sigma != fixed:
        raise ValueError(f"sigma: this denoiser was trained at sigma = {fixed:g} only, got {sigma:g}")
    return positive("sigma", fixed if sigma is None else sigma)


def chain_starts(x: torch.Tensor, n: int, sigma: float, *, start: str = "noisy", generator: Generator = None):
    """``n`` initial states near the image ``x`` (1, C, H, W): ``x + sigma z`` (``start="noisy"``), or
    uniform noise on [0, 1] (``"noise"``, far from every image); on the device of ``x``."""
    shape = (positive_int("n", n), *x.shape[1:])
    if start == "noisy":
        return x + sigma * randn(shape, generator, device=x.device, dtype=x.dtype)
    if start == "noise":
        return rand(shape, generator, device=x.device, dtype=x.dtype)
    raise ValueError(f"start: expected 'noisy' or 'noise', got {start!r}")


@torch.no_grad()
def langevin_at_level(
    denoiser,
    x0: torch.Tensor,
    *,
    sigma: float | None = None,
    n_steps: int = DEFAULT_STEPS["langevin"],
    step_size: float | None = None,
    generator: Generator = None,
    progress: bool = False,
) -> SamplerResult:
    r"""ULA targeting :math:`p_\sigma` with the Tweedie score of ``denoiser`` at ``sigma``: by
    default the level a fixed-sigma model was trained at; a noise-conditional model needs it given
    (:func:`sampling_level`).

    The default step is :math:`\eta = 0.05\,\sigma^2`, a small fraction of the local curvature
    scale :math:`\sigma^2` of :math:`p_\sigma`.
    """
    sigma = sampling_level(denoiser, sigma)
    score = TweedieScore(denoiser)
    step = 0.05 * sigma**2 if step_size is None else step_size
    return ula(lambda x: score(x, sigma), x0, step, n_steps, generator=generator, progress=progress)


@torch.no_grad()
def annealed_generation(
    denoiser,
    n: int,
    *,
    sigma_max: float = ANNEALED_DEFAULTS["sigma_max"],
    sigma_min: float = ANNEALED_DEFAULTS["sigma_min"],
    n_levels: int = ANNEALED_DEFAULTS["n_levels"],
    n_steps_each: int = ANNEALED_DEFAULTS["n_steps_each"],
    eps: float = ANNEALED_DEFAULTS["eps"],
    shape: tuple[int, ...] = IMAGE_SHAPE,
    device: torch.device | str = "cpu",
    generator: Generator = None,
    record_every: int | None = None,
    progress: bool = False,
) -> SamplerResult:
    r"""``n`` images of ``shape`` by annealed Langevin from uniform noise, with a final Tweedie
    denoising step, on ``device`` (where ``generator`` draws: a :class:`torch.Generator`, or
    :class:`~scoredae.rng.RowGenerators` so that sample ``i`` depends on ``(seed, i)`` alone).

    Step sizes :math:`\alpha_i = \epsilon\, \sigma_i^2 / \sigma_L^2` on the geometric ladder
    :math:`\sigma_1 = ` ``sigma_max`` :math:`> \dots > \sigma_L = ` ``sigma_min``; the defaults are
    NCSN's MNIST setting (10 levels, 100 steps each, :math:`\epsilon = 2 \times 10^{-5}`).
    ``record_every`` keeps the chains' states every that many steps in ``trajectory``.
    """
    positive_int("n", n)
    require_every_level(denoiser, "annealed sampling")
    x0 = rand((n, *shape), generator, device=device)
    return annealed_langevin(
        TweedieScore(denoiser),
        x0,
        geometric_sigmas(sigma_max, sigma_min, n_levels),
        n_steps_each,
        eps,
        final_denoise=True,
        generator=generator,
        record_every=record_every,
        progress=progress,
    )


def denoiser_calls(method: str, steps: int, guided: bool = False) -> int:
    """The denoiser calls of ``steps`` steps of an ODE ``method``: Heun's ``2 steps - 1`` (the last
    step is Euler's), one a step for the others; twice as many with guidance."""
    return (2 * steps - 1 if method == "heun" else steps) * (2 if guided else 1)


def steps_for_calls(method: str, nfe: int, guided: bool = False) -> int:
    """The most steps of ``method`` that fit in ``nfe`` denoiser calls (two steps at least)."""
    per_call = 2 if guided else 1
    steps = (nfe // per_call + 1) // 2 if method == "heun" else nfe // per_call
    if steps < 2:
        least = denoiser_calls(method, 2, guided)
        raise ValueError(f"nfe: {method}{' with guidance' if guided else ''} needs at least {least} denoiser calls "
                         f"(two steps), got {nfe}")
    return steps


def _ode_steps(method: str, steps: int | None, nfe: int | None, guided: bool) -> int:
    """The steps of an ODE ``method``: ``steps``, as many as ``nfe`` calls allow, or the default."""
    if steps is not None and nfe is not None:
        raise ValueError("steps, nfe: give the steps or the denoiser calls, not both")
    return steps_for_calls(method, nfe, guided) if nfe is not None else (steps or DEFAULT_STEPS[method])


def _churn(method: str, churn: float, steps: int, sigma_max: float) -> dict:
    r"""EDM's churn options: none for ``churn = 0``; else ``churn`` and :math:`S_{tmax}` below
    :math:`\sigma_{\max} / (1 + \gamma)`, so that the raised level stays within the model's range."""
    if not churn:
        return {}
    if method not in ("heun", "euler"):
        raise ValueError(f"churn: only EDM's heun and euler take churn, not {method}")
    return {"churn": churn, "s_max": sigma_max / (1 + min(churn / steps, math.sqrt(2) - 1))}


@torch.no_grad()
def diffusion_generation(
    denoiser,
    n: int,
    *,
    method: str = "heun",
    steps: int | None = None,
    nfe: int | None = None,
    churn: float = 0.0,
    class_labels=None,
    guidance: float = 0.0,
    data_mean: float = MNIST_PIXELS[0],
    data_std: float = MNIST_PIXELS[1],
    shape: tuple[int, ...] = IMAGE_SHAPE,
    device: torch.device | str = "cpu",
    generator: Generator = None,
    record_every: int | None = None,
    progress: bool = False,
) -> SamplerResult:
    r"""``n`` images of ``shape`` by the diffusion-era samplers over a noise-conditional model's range
    :math:`[\sigma_{\min}, \sigma_{\max}]`:

    * the probability-flow ODE solvers of :data:`ODE_SOLVERS`: EDM's ``"heun"`` and ``"euler"``
      (:func:`~scoredae.sampling.edm.edm_sampler`, with ``churn``), and the multistep
      ``"dpm++2m"``, ``"dpm++3m"``, ``"ipndm"`` and ``"unipc"`` (:mod:`scoredae.sampling.multistep`), on
      :func:`~scoredae.sampling.edm.karras_sigmas` (``steps`` levels, then 0; default the
      method's :data:`~scoredae.recipes.names.DEFAULT_STEPS`, or as many as ``nfe`` denoiser calls
      allow, :func:`steps_for_calls`), from the Gaussian fit of
      :math:`p_{\sigma_{\max}}`, :math:`\mathcal N(\text{data\_mean}, (\text{data\_std}^2 + \sigma_{\max}^2) I)`
      (MNIST's pixel statistics by default): exact only when :math:`\sigma_{\max}` dwarfs the data;
      churn is applied where it keeps the raised level :math:`\hat t` within the range;
    * ``"ks"``: :func:`~scoredae.sampling.coarse_to_fine.kadkhodaie_simoncelli` from
      :math:`\mathcal N(0.5, \sigma_0^2 I)` down to :math:`\max(\sigma_{\min}, 0.01)`, with
      :math:`\sigma_0 = \min(\sigma_{\max}, 1)`: their start and stop for images in [0, 1] (the
      algorithm decides how many steps it takes).

    With ``class_labels`` (an int, or int64 (n,)) a class-conditional model samples those classes,
    with classifier-free ``guidance`` :math:`w \ge 0` (:class:`~scoredae.score.GuidedDenoiser`;
    a guided call costs two denoiser calls).
    """
    positive_int("n", n)
    require_every_level(denoiser, f"{method} generation")
    if method not in DIFFUSION_METHODS:
        raise ValueError(f"method: expected one of {DIFFUSION_METHODS}, got {method!r}")
    if class_labels is not None:
        denoiser = GuidedDenoiser(denoiser, class_labels, guidance)
    elif guidance:
        raise ValueError("guidance: give the class_labels to guide towards")
    guided = class_labels is not None and guidance > 0
    sigma_min, sigma_max = denoiser.sigma_range
    if method == "ks":
        if steps is not None or nfe is not None:
            raise ValueError("steps, nfe: Kadkhodaie-Simoncelli decides its own number of steps; give neither")
        return kadkhodaie_simoncelli(denoiser, (n, *shape), sigma_start=min(sigma_max, 1.0),
                                     sigma_stop=max(sigma_min, 0.01),
                                     generator=generator, record_every=record_every, progress=progress)
    steps = _ode_steps(method, steps, nfe, guided)
    sampler, options = ODE_SOLVERS[method]
    x_T = data_mean + math.sqrt(data_std**2 + sigma_max**2) * randn((n, *shape), generator, device=device)
    return sampler(denoiser, x_T, karras_sigmas(sigma_min, sigma_max, steps), generator=generator,
                   record_every=record_every, progress=progress, **options, **_churn(method, churn, steps, sigma_max))
