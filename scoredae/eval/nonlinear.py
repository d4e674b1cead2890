r"""Nonlinear measurements with exact answers: on a 2-D Gaussian mixture the posterior of any
:math:`y = f(x) + \sigma_y n` is known on a fine grid (quadrature),

.. math::
    p(x \mid y) \propto p(x)\, \mathcal N\big(y; f(x), \sigma_y^2 I\big),

its mass per cell the density at the cell's centre times the cell's area, normalised. The prior is
the 2-D slice of the grid problem (:func:`~scoredae.eval.exact_posterior.grid_mixture_problem`):
25 unit-variance components at :math:`(8i, 8j)`, weights squared normals. Three forwards, each a
differentiable ``f(x)`` on batches (B, 2), for the samplers that accept one (DPS, DAPS, RED-diff,
PnP-DM, DPnP):

* ``"radius"``: :math:`f(x) = \lVert x \rVert`, a ring of solutions through the modes at that radius;
* ``"phase"``: :math:`f(x) = |a^\top x|`, the phase retrieval of one coefficient: two strips, the
  sign lost;
* ``"saturation"``: :math:`f(x) = \tanh(a^\top x / 8)`, a sensor that saturates: sharp near
  :math:`a^\top x = 0`, nearly blind beyond two grid spacings.

A sampler is measured by the total variation between its histogram and the exact cell masses
(on 2 x 2 bins, about a standard deviation of a component), and by the sliced Wasserstein distance to as many grid draws, each beside the
floor of two sets of exact draws of the same size.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..mixtures import GaussianMixture
from ..rng import seeded
from .exact_posterior import run_counted, sampler_name
from .sample_quality import sliced_wasserstein

#: the forwards of :func:`nonlinear_grid_problem`, by name
FORWARDS = ("radius", "phase", "saturation")
#: the half-width of the square grid, six standard deviations beyond the outer means at 16
EXTENT = 22.0


@dataclass
class GridPosterior:
    """A 2-D density on the centres ``points`` (n^2, 2) of a regular grid of square cells of side
    ``step``, as the mass of each cell ``masses`` (n^2,)."""

    points: torch.Tensor
    masses: torch.Tensor
    step: float

    def sample(self, m: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """m draws, shape (m, 1, 2) as :meth:`~scoredae.mixtures.MixturePosterior.sample`'s for one
        observation: a cell by its mass, then a uniform point in it."""
        cells = torch.multinomial(self.masses, m, replacement=True, generator=generator)
        jitter = torch.rand(m, 2, generator=generator, dtype=self.points.dtype) - 0.5
        return (self.points[cells] + self.step * jitter)[:, None]

    def bin_masses(self, width: float = 2.0) -> torch.Tensor:
        """The masses summed over square bins of side ``width`` (a multiple of the cell), flattened."""
        return torch.bincount(_bins(self.points, width), weights=self.masses, minlength=_n_bins(width) ** 2)


def _n_bins(width: float) -> int:
    return round(2 * EXTENT / width)


def _bins(points: torch.Tensor, width: float) -> torch.Tensor:
    """The flat index of the bin of each point (n, 2); points outside the grid go to the nearest edge bin."""
    n = _n_bins(width)
    ij = ((points + EXTENT) / width).floor().long().clamp(0, n - 1)
    return ij[:, 0] * n + ij[:, 1]


@dataclass
class NonlinearProblem:
    """A 2-D prior, ``y = A(x) + noise_sigma * n`` with ``A`` a differentiable callable, the clean
    ``x``, and the grid posterior."""

    name: str
    prior: GaussianMixture
    A: Callable[[torch.Tensor], torch.Tensor]
    noise_sigma: float
    y: torch.Tensor  # (1, 1)
    x: torch.Tensor  # (1, 2)
    sigma_max: float = 50.0
    n_grid: int = 880
    posterior: GridPosterior = field(init=False)

    def __post_init__(self):
        step = 2 * EXTENT / self.n_grid
        t = -EXTENT + step * (torch.arange(self.n_grid, dtype=self.x.dtype) + 0.5)
        points = torch.cartesian_prod(t, t)
        log_like = -0.5 * ((self.A(points) - self.y) ** 2).sum(1) / self.noise_sigma**2
        self.posterior = GridPosterior(points, torch.softmax(self.prior.log_prob(points) + log_like, 0), step)


def nonlinear_grid_problem(forward: str, seed: int = 0, *, noise_sigma: float | None = None) -> NonlinearProblem:
    """The problem of the module docstring with forward ``forward`` (one of :data:`FORWARDS`), drawn
    from ``seed``: the weights, the direction ``a``, the clean ``x`` and the noise; ``noise_sigma``
    0.5 for ``"radius"`` and ``"phase"``, 0.05 for ``"saturation"`` unless given."""
    if forward not in FORWARDS:
        raise ValueError(f"forward: expected one of {FORWARDS}, got {forward!r}")
    gen = torch.Generator().manual_seed(seed)
    f64 = torch.float64
    means = torch.tensor([[8.0 * i, 8.0 * j] for i in range(-2, 3) for j in range(-2, 3)], dtype=f64)
    weights = torch.randn(25, generator=gen, dtype=f64) ** 2
    prior = GaussianMixture(weights / weights.sum(), means, 1.0)
    a = torch.randn(2, generator=gen, dtype=f64)
    a = a / a.norm()
    f = {"radius": lambda x: x.norm(dim=1, keepdim=True),
         "phase": lambda x: (x @ a).abs()[:, None],
         "saturation": lambda x: torch.tanh(x @ a / 8)[:, None]}[forward]
    sigma_y = noise_sigma if noise_sigma is not None else (0.05 if forward == "saturation" else 0.5)
    x = prior.sample(1, generator=gen)
    y = f(x) + sigma_y * torch.randn(1, 1, generator=gen, dtype=f64)
    return NonlinearProblem(forward, prior, f, sigma_y, y, x)


def grid_tv(posterior: GridPosterior, samples: torch.Tensor, width: float = 2.0) -> float:
    """Total variation between the histogram of ``samples`` (n, 2) and the exact masses on bins of side ``width``."""
    counts = torch.bincount(_bins(samples, width), minlength=_n_bins(width) ** 2).to(samples.dtype)
    return float((counts / len(samples) - posterior.bin_masses(width)).abs().sum() / 2)


def evaluate_nonlinear(sampler: Callable, problem: NonlinearProblem, n: int = 1024, steps: int = 100, seed: int = 0,
                       *, name: str | None = None, denoiser=None, pairs: int = 8) -> dict:
    """One row for ``sampler`` on ``problem``: :func:`grid_tv` and the sliced Wasserstein distance
    to ``n`` grid draws, each beside its floor (the median over ``pairs`` pairs of exact draws),
    with the counts and seconds of :func:`~scoredae.eval.exact_posterior.run_counted`; NaN where
    the sampler diverged."""
    name = name or sampler_name(sampler)
    reference = seeded(seed, 1)
    exact = problem.posterior.sample(n, generator=reference)[:, 0]
    pairs_drawn = problem.posterior.sample(2 * n * pairs, generator=reference)[:, 0].reshape(pairs, 2, n, 2)
    floor = {"tv_floor": statistics.median(grid_tv(problem.posterior, a) for a, _ in pairs_drawn),
             "sw_floor": statistics.median(sliced_wasserstein(a, b, generator=seeded(seed, 3)) for a, b in pairs_drawn)}
    result, row = run_counted(sampler, problem, n, steps, seed, name, denoiser)
    row = {"forward": problem.name, **row, **floor}
    if result is None:
        return {**row, "tv": math.nan, "sw": math.nan}
    samples = result if isinstance(result, torch.Tensor) else result.samples
    return {**row, "tv": grid_tv(problem.posterior, samples),
            "sw": sliced_wasserstein(samples, exact, generator=seeded(seed, 3))}


def nonlinear_samplers() -> dict[str, Callable]:
    """The samplers that accept a differentiable ``forward(x)``, at their defaults."""
    from ..inverse import daps, dpnp, dps, pnp_dm, red_diff

    return {"dps": dps, "daps": daps, "red_diff": red_diff, "pnp_dm": pnp_dm, "dpnp": dpnp}
