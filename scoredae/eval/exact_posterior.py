r"""Posterior samplers with a diffusion prior, measured against the exact posterior of a Gaussian
mixture.

The problems are MCGdiff's (Cardoso et al. 2024, section 4.1; ``scripts/viz_gaussian.py`` of
gabrielvc/mcg_diff) and TMPD's: 25 identity-covariance components whose means
:math:`(8i, 8j)` for :math:`i, j \in \{-2..2\}` repeat over the pairs of coordinates, weights squared
normals normalised (or equal), :math:`A = U \operatorname{diag}(s) V_{1:d_y}` from the SVD of a
Gaussian matrix with :math:`s` sorted uniform draws, :math:`\sigma_y` a uniform draw times
:math:`\max s`, and :math:`y = A x + \sigma_y n` for a draw :math:`x` of the prior. Everything a
sampler is compared with is closed form (:meth:`~scoredae.mixtures.GaussianMixture.posterior`):

* the sliced Wasserstein distance to as many exact posterior draws, beside the median of the same
  distance between independent pairs of exact draws (the floor of the sample size);
* the total variation between the share of samples per component (each sample given to the
  posterior component of highest responsibility) and the exact posterior weights;
* the share of samples inside the exact central 90% interval of a few linear functionals
  :math:`u^\top x` (0.90 when right);
* the relative error of a likelihood score against the exact :math:`\nabla \log p(y \mid x_\sigma)`
  at draws of the noised posterior, level by level (:func:`likelihood_score_error`).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import deepinv
import torch

from .._checks import finite_number
from ..inverse import (
    ancestral_posterior,
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
    red_diff,
    tmpd,
    twisted_diffusion,
)
from ..inverse.likelihood_scores import (
    dps_likelihood_score,
    pigdm_likelihood_score,
    tmpd_likelihood_score,
)
from ..inverse.operators import linear_operator
from ..mixtures import GaussianMixture, MixtureDenoiser, MixturePosterior, mixture_quantile
from ..rng import seeded
from ..sampling import SamplerDivergedError, karras_sigmas
from .counting import CountingDenoiser
from .sample_quality import max_sliced_wasserstein, sliced_wasserstein

SIGMA_MIN = 0.002


@dataclass
class MixtureProblem:
    """A prior, ``y = A x + noise_sigma * n`` with its clean ``x``, and the exact posterior."""

    prior: GaussianMixture
    A: torch.Tensor
    noise_sigma: float
    y: torch.Tensor  # (1, d_y)
    x: torch.Tensor  # (1, d_x)
    sigma_max: float = 100.0  # the level every chain starts from, at draws of the noised prior
    posterior: MixturePosterior = field(init=False)

    def __post_init__(self):
        self.posterior = self.prior.posterior(self.y, self.noise_sigma, self.A)

    @property
    def data_variance(self) -> float:
        """The prior's variance per coordinate, :math:`\\operatorname{tr} \\operatorname{Cov}(x) / d`."""
        spread = (self.prior.weights[:, None] * (self.prior.means - self.prior.weights @ self.prior.means) ** 2).sum(0)
        return float(spread.mean() + self.prior.covariance.diagonal().mean())


PROTOCOLS = ("mcgdiff", "tmpd", "mgps")


def grid_mixture_problem(d_x: int, d_y: int, seed: int, *, protocol: str = "mcgdiff",
                         noise_sigma: float = 1.0) -> MixtureProblem:
    r"""The 25-component problem of the module docstring in float64, drawn from ``seed``, as each
    paper draws it (``protocol``):

    * ``"mcgdiff"`` (Cardoso et al. 2024; also DCPS's): weights squared normals, normalised;
      :math:`A = U \operatorname{diag}(s) V_{1:d_y}^\top` from the SVD of a Gaussian matrix with
      :math:`s` sorted uniform draws; :math:`\sigma_y` a uniform draw times :math:`\max s`;
    * ``"tmpd"`` (Boys et al. 2023, ``bb515/tmpdjax`` ``gmm.py``): equal weights, the same
      :math:`A`, :math:`\sigma_y` = ``noise_sigma`` (1 in their configuration);
    * ``"mgps"`` (Moufad et al. 2025, ``utils/gmm_utils.py``): weights uniform draws, normalised,
      :math:`A` a Gaussian matrix as drawn, :math:`\sigma_y` = ``noise_sigma``.

    Its chains start at :math:`\sigma_{max} = 100 \sqrt{d_x / 8}`, which grows like the largest
    distance between two means, :math:`90.5 \sqrt{d_x / 8}`. The chains start from the noised prior
    :math:`p_{\sigma_{max}}(x)` where the noised posterior :math:`p_{\sigma_{max}}(x \mid y)` is
    the law they should start from; the scaling keeps the gap between the two
    (:math:`\mathrm{KL}`, at most 0.1 nats at d_x = 8) from growing with the dimension. A start at
    100 for every size leaves 1.6 nats at d_x = 800, and the exactly guided chain then misses the
    exact posterior (4.3 times the sliced Wasserstein floor; at the floor from 1,000)."""
    if d_x < 2 or d_x % 2 or not 1 <= d_y <= d_x:
        raise ValueError(f"d_x, d_y: expected an even d_x >= 2 and 1 <= d_y <= d_x, got {d_x}, {d_y}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol: expected one of {PROTOCOLS}, got {protocol!r}")
    gen = torch.Generator().manual_seed(seed)
    f64 = torch.float64
    grid = torch.tensor([[-8.0 * i, -8.0 * j] for i in range(-2, 3) for j in range(-2, 3)], dtype=f64)
    means = grid.repeat(1, d_x // 2)  # (25, d_x): the pair repeated
    weights = {"mcgdiff": lambda: torch.randn(25, generator=gen, dtype=f64) ** 2,
               "tmpd": lambda: torch.ones(25, dtype=f64),
               "mgps": lambda: torch.rand(25, generator=gen, dtype=f64)}[protocol]()
    prior = GaussianMixture(weights / weights.sum(), means, 1.0)
    A = torch.randn(d_y, d_x, generator=gen, dtype=f64)
    if protocol == "mgps":
        sigma_y = finite_number("noise_sigma", noise_sigma)
    else:
        u, _, vh = torch.linalg.svd(A)
        s = torch.sort(torch.rand(d_y, generator=gen, dtype=f64), descending=True).values
        A = u @ torch.diag(s) @ vh[:d_y]
        sigma_y = (float(torch.rand((), generator=gen, dtype=f64) * s.max()) if protocol == "mcgdiff"
                   else finite_number("noise_sigma", noise_sigma))
    x = prior.sample(1, generator=gen)
    y = x @ A.T + sigma_y * torch.randn(1, d_y, generator=gen, dtype=f64)
    return MixtureProblem(prior, A, sigma_y, y, x, sigma_max=100.0 * math.sqrt(d_x / 8))


def sliced_wasserstein_floor(posterior: MixturePosterior, n: int, seed: int, pairs: int = 8) -> float:
    """The median of :func:`~scoredae.eval.sample_quality.sliced_wasserstein` between ``pairs`` pairs of independent exact draws of
    ``n`` points each (one draw's distance is itself noisy: the mode counts vary from draw to draw)."""
    gen = seeded(seed, 5)
    draws = posterior.sample(2 * n * pairs, generator=gen)[:, 0].reshape(pairs, 2, n, -1)
    return statistics.median(sliced_wasserstein(a, b, generator=seeded(seed, 3)) for a, b in draws)


def component_shares(posterior: MixturePosterior, samples: torch.Tensor) -> torch.Tensor:
    """The share of samples (n, d) whose most responsible posterior component is k, (K,)."""
    owner = posterior.responsibilities(samples).argmax(1)
    return torch.bincount(owner, minlength=posterior.weights.shape[1]).to(samples.dtype) / len(samples)


def mode_tv(posterior: MixturePosterior, samples: torch.Tensor) -> float:
    """Total variation between :func:`component_shares` and the exact posterior weights."""
    return float((component_shares(posterior, samples) - posterior.weights[0]).abs().sum() / 2)


def interval_coverage(posterior: MixturePosterior, samples: torch.Tensor, directions: torch.Tensor,
                      level: float = 0.9) -> torch.Tensor:
    r"""For each direction :math:`u` (d, L), the share of samples inside the exact central ``level``
    interval of :math:`u^\top x`, whose law is the 1-D mixture of means :math:`u^\top m_k` and
    variances :math:`u^\top C_k u` (:func:`~scoredae.mixtures.mixture_quantile`), (L,)."""
    mean = (posterior.means[0] @ directions).T  # (L, K)
    sd = posterior.covariance.quadratic(directions).T.sqrt()
    bounds = [mixture_quantile(posterior.weights[0], mean, sd, q) for q in ((1 - level) / 2, (1 + level) / 2)]
    proj = samples @ directions  # (n, L)
    return ((proj >= bounds[0]) & (proj <= bounds[1])).to(samples.dtype).mean(0)


class PerturbedDenoiser(deepinv.models.Denoiser):
    r"""The exact denoiser perturbed in one controlled way, to tell a sampler's error from the
    denoiser's: ``"bias"`` :math:`D + b \mathbf 1`; ``"sigma"`` :math:`D(x, (1 + \epsilon)\sigma)`, a
    wrong noise level; ``"asymmetric"`` :math:`D + \epsilon W (x - D)` with a fixed antisymmetric
    :math:`W` of unit spectral norm, a Jacobian :math:`J + \epsilon W (I - J)` that is not symmetric."""

    KINDS = ("bias", "sigma", "asymmetric")

    def __init__(self, denoiser, kind: str, size: float, dim: int, seed: int = 0):
        super().__init__()
        if kind not in self.KINDS:
            raise ValueError(f"kind: expected one of {self.KINDS}, got {kind!r}")
        self.denoiser, self.kind, self.size = denoiser, kind, size
        g = torch.randn(dim, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        w = g - g.T
        self.W = w / torch.linalg.matrix_norm(w, ord=2)

    def forward(self, x, sigma, **kwargs):
        if self.kind == "sigma":
            return self.denoiser(x, sigma * (1 + self.size))
        d = self.denoiser(x, sigma)
        if self.kind == "bias":
            return d + self.size
        return d + self.size * (x - d) @ self.W.T.to(x)


def oracle(prior: GaussianMixture) -> Callable:
    r"""A sampler of the benchmark's signature that knows the prior: :func:`~scoredae.inverse.ancestral_posterior`
    with the exact likelihood score :math:`\nabla \log p(y \mid x_\sigma)` of the mixture
    (:meth:`~scoredae.mixtures.GaussianMixture.noised_likelihood`), the floor every approximation
    is measured against: with the exact denoiser it samples the posterior up to the discretisation."""

    def exactly_guided(denoiser, y, forward, noise_sigma, x_T, sigmas, *, generator=None):
        def score_y(x, sigma):
            return prior.noised_likelihood(x, sigma, y, noise_sigma, forward)[1]

        return ancestral_posterior(denoiser, score_y, x_T, sigmas, generator=generator)

    return exactly_guided


def benchmark_samplers(problem: MixtureProblem) -> dict[str, Callable]:
    r"""The samplers the benchmark runs, by name, each with the settings it runs them at: the oracle,
    DPS's Algorithm 1 with :math:`\zeta' = 1` and DPS's Gaussian form, PiGDM and the particle
    sampler with the prior's variance, and TMPD, DDRM, DiffPIR, DDNM, MCGdiff, FPS, DAPS, PnP-DM, DPnP,
    RED-diff, MGPS and DCPS at their defaults."""
    variance = problem.data_variance
    return {"oracle": oracle(problem.prior), "dps": partial(dps, zeta=1.0), "dps-gaussian": dps,
            "pigdm": partial(pigdm, data_variance=variance), "tmpd": tmpd, "ddrm": ddrm, "diffpir": diffpir,
            "ddnm": ddnm, "smc": partial(twisted_diffusion, data_variance=variance), "mcgdiff": mcgdiff, "fps": fps,
            "daps": daps, "pnp_dm": pnp_dm, "dpnp": dpnp, "red_diff": red_diff, "mgps": mgps, "dcps": dcps}


def sampler_name(sampler: Callable) -> str:
    """The name of a sampler, of a ``functools.partial`` of one, or of any callable."""
    return getattr(getattr(sampler, "func", sampler), "__name__", type(sampler).__name__)


def run_counted(sampler: Callable, problem, n: int, steps: int, seed: int, name: str, denoiser=None):
    """``sampler``'s ``n`` chains on ``problem`` (its ``prior``, ``y``, forward ``A``, ``noise_sigma``
    and ``sigma_max``) from draws of the noised prior, on ``steps`` EDM levels, the denoiser (the
    prior's exact one, or ``denoiser``) counted: ``(result, row)``, the row holding the name, the
    counts and the seconds; ``result`` None and the row saying where when the sampler diverged."""
    gen = seeded(seed, 2)
    counted = CountingDenoiser(denoiser or MixtureDenoiser(problem.prior))
    x_T = problem.prior.noised(problem.sigma_max).sample(n, generator=gen)
    sigmas = karras_sigmas(SIGMA_MIN, problem.sigma_max, steps)
    start = time.perf_counter()
    try:
        result = sampler(counted, problem.y, problem.A, problem.noise_sigma, x_T, sigmas, generator=gen)
    except SamplerDivergedError as err:  # a failure mode to report, not to hide
        return None, {"sampler": name, "n": n, "steps": steps, **counted.counts(),
                      "seconds": time.perf_counter() - start, "diverged": str(err).split(":")[0]}
    return result, {"sampler": name, "n": n, "steps": steps, **counted.counts(), "seconds": time.perf_counter() - start}


def evaluate(sampler: Callable, problem: MixtureProblem, n: int = 1024, steps: int = 100, seed: int = 0, *,
             name: str | None = None, denoiser=None, n_directions: int = 4) -> dict:
    """One row of the benchmark for any ``sampler(denoiser, y, forward, noise_sigma, x_T, sigmas, *,
    generator)`` returning its samples (a tensor, or a result with ``samples``): its ``n`` samples on ``steps`` EDM levels from ``problem.sigma_max`` (the exact
    mixture denoiser, or ``denoiser``) against ``n`` exact posterior draws: sliced Wasserstein and
    its floor, the max-sliced distance of the authors' scripts
    (:func:`~scoredae.eval.sample_quality.max_sliced_wasserstein`), mode total variation, the lowest
    and highest interval coverage, seconds, the counts, and for a particle sampler (a ``state`` with ``log_evidence``) the error of its log
    evidence. A sampler that diverges gets a row saying where, its measures NaN. The exact draws
    and the directions come from ``seed`` alone, the same for every sampler."""
    name = name or sampler_name(sampler)
    reference = seeded(seed, 1)
    exact = problem.posterior.sample(n, generator=reference)[:, 0]
    directions = torch.randn(problem.prior.dim, n_directions, generator=reference, dtype=exact.dtype)
    result, row = run_counted(sampler, problem, n, steps, seed, name, denoiser)
    if result is None:
        return {**row, **dict.fromkeys(("sw", "max_sw", "sw_floor", "mode_tv", "coverage_min", "coverage_max"), math.nan)}
    samples = result if isinstance(result, torch.Tensor) else result.samples
    coverage = interval_coverage(problem.posterior, samples, directions / directions.norm(dim=0))
    row = {**row, "sw": sliced_wasserstein(samples, exact, generator=seeded(seed, 3)),
           "max_sw": max_sliced_wasserstein(samples, exact, generator=seeded(seed, 6)),
           "sw_floor": sliced_wasserstein_floor(problem.posterior, n, seed),
           "mode_tv": mode_tv(problem.posterior, samples),
           "coverage_min": float(coverage.min()), "coverage_max": float(coverage.max())}
    if hasattr(getattr(result, "state", None), "log_evidence"):  # a particle sampler
        row["evidence_error"] = float(result.state.log_evidence - problem.posterior.log_evidence[0])
        row["min_ess"] = float(result.state.ess.min())
    return row


def benchmark_likelihood_scores(problem: MixtureProblem) -> dict[str, Callable]:
    """The likelihood scores of :mod:`scoredae.inverse.likelihood_scores` by name, each as
    ``make(denoiser, y, op, noise_sigma)`` with the benchmark's settings (PiGDM with the prior's variance)."""
    return {"dps": dps_likelihood_score, "pigdm": partial(pigdm_likelihood_score, data_variance=problem.data_variance),
            "tmpd": tmpd_likelihood_score}


def likelihood_score_error(make: Callable, problem: MixtureProblem, sigmas, n: int = 256, *, denoiser=None,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    r"""The relative error :math:`\mathbb E \lVert g - g^\star \rVert / \mathbb E \lVert g^\star \rVert`
    of the likelihood score ``make(denoiser, y, op, noise_sigma)`` (e.g.
    :func:`~scoredae.inverse.tmpd_likelihood_score`) against the exact
    :math:`g^\star = \nabla \log p(y \mid x_\sigma)` at ``n`` draws of the noised posterior
    :math:`x_\sigma = x + \sigma n`, :math:`x \sim p(x \mid y)`, at each level of ``sigmas`` (all > 0)."""
    denoiser = denoiser or MixtureDenoiser(problem.prior)
    op = linear_operator(problem.A, problem.x)
    score_y = make(denoiser, problem.y.expand(n, -1), op, problem.noise_sigma)
    errors = []
    for sigma in [float(s) for s in sigmas]:
        x0 = problem.posterior.sample(n, generator=generator)[:, 0]
        x = x0 + sigma * torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
        exact = problem.prior.noised_likelihood(x, sigma, problem.y, problem.noise_sigma, problem.A)[1]
        g = score_y(x, sigma)[1]
        errors.append(float((g - exact).norm(dim=1).mean() / exact.norm(dim=1).mean()))
    return torch.tensor(errors)


def rounded(row: dict, digits: int = 4) -> dict:
    """The row with its floats to ``digits`` significant digits, for tables and JSON."""
    return {k: (float(f"{v:.{digits}g}") if isinstance(v, float) and math.isfinite(v) else v) for k, v in row.items()}
