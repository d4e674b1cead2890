r"""
Diffusion posterior samplers against the exact posterior
========================================================

An observation :math:`y = A x + \sigma_y n` of a point of the 25-mode prior of MCGdiff's benchmark
(means on a grid of spacing 8, identity covariances), here in two dimensions with one measurement:
:math:`y` says where :math:`x` lies along one direction, so the posterior keeps the modes on a
band across the grid, each with its exact weight. A sampler with a diffusion prior needs, at every
level, the noised likelihood :math:`p(y \mid x_\sigma)`; DPS, PiGDM and TMPD replace the
denoising posterior :math:`p(x \mid x_\sigma)` by a Gaussian around Tweedie's mean, DDRM and
DiffPIR work on the measurement directly, the oracle uses the exact
:math:`\nabla \log p(y \mid x_\sigma)` of the mixture, and the twisted diffusion sampler (SMC)
corrects a Gaussian guess with importance weights; MCGdiff and FPS filter particles in the
operator's spectral domain, DAPS, PnP-DM and DPnP run Markov chains on the clean point, RED-diff
optimises, and MGPS and DCPS fit Gaussians to intermediate posteriors. Each gets the exact denoiser
and 100 levels, so what differs is the approximation alone.
"""

# %%
# The prior's modes, 1,000 exact posterior draws, and 1,000 samples of each sampler beside them.
# Each title gives the total variation between the share of samples per mode and the exact
# posterior weights; for the exact draws themselves it is the Monte Carlo floor of 1,000 samples.
import matplotlib.pyplot as plt
import torch

from scoredae.eval.exact_posterior import (
    benchmark_likelihood_scores,
    benchmark_samplers,
    grid_mixture_problem,
    likelihood_score_error,
    mode_tv,
)
from scoredae.inverse.particles import twisted_diffusion
from scoredae.mixtures import MixtureDenoiser
from scoredae.sampling import karras_sigmas

F64 = torch.float64
problem = grid_mixture_problem(2, 1, seed=7)
posterior = problem.posterior
print("exact posterior weights of the heaviest modes:",
      [round(w, 3) for w in posterior.weights[0].sort(descending=True).values[:4].tolist()])
exact = posterior.sample(1000, generator=torch.Generator().manual_seed(3))[:, 0]
sigmas = karras_sigmas(0.002, 100.0, 100)
denoiser = MixtureDenoiser(problem.prior)

samplers = benchmark_samplers(problem)
rows = -(-(1 + len(samplers)) // 4)  # four panels a row: the exact draws, then each sampler
fig, axes = plt.subplots(rows, 4, figsize=(11, 2.9 * rows), sharex=True, sharey=True, squeeze=False)
for ax in axes.flat[1 + len(samplers):]:
    ax.set_axis_off()
for ax, name in zip(axes.flat, ("exact", *samplers)):
    if name == "exact":
        samples = exact
    else:
        gen = torch.Generator().manual_seed(0)
        x_T = problem.prior.noised(100.0).sample(1000, generator=gen)
        samples = samplers[name](denoiser, problem.y, problem.A, problem.noise_sigma, x_T, sigmas, generator=gen).samples
    ax.scatter(*exact.T, s=10, c="0.8")
    ax.scatter(*problem.prior.means.T, s=14, c="tab:blue", marker="+")
    ax.scatter(*samples.T, s=2, c="tab:red", alpha=0.4)
    ax.set_title(f"{name}: mode TV {mode_tv(posterior, samples):.2f}", fontsize=10)
    ax.set_xlim(-22, 22)
    ax.set_ylim(-22, 22)
fig.suptitle("grey: exact posterior draws; blue: the prior's modes; red: the sampler's", fontsize=10)
fig.tight_layout(rect=(0, 0, 1, 0.985))

# %%
# Where the approximations go wrong: the error of each likelihood score against the exact gradient
# of :math:`\log p(y \mid x_\sigma)`, at draws of the noised posterior, level by level. At small
# :math:`\sigma` the denoising posterior is one narrow Gaussian and every Gaussian approximation
# becomes exact (TMPD's, whose covariance is the true :math:`\sigma^2 J_D`, to machine
# precision); at large :math:`\sigma` it spans several modes and all of them are wrong, DPS by
# orders of magnitude: its Dirac at Tweedie's mean ignores the spread that PiGDM and TMPD keep.
levels = torch.logspace(-1.5, 2, 15, dtype=F64)
fig, ax = plt.subplots(figsize=(6, 4))
for name, make in benchmark_likelihood_scores(problem).items():
    error = likelihood_score_error(make, problem, levels, 256, generator=torch.Generator().manual_seed(1))
    ax.loglog(levels, error.clamp(min=1e-16), "o-", label=name)
ax.set_xlabel(r"noise level $\sigma$")
ax.set_ylabel(r"$\mathbb{E}\|g - \nabla \log p(y \mid x_\sigma)\| \,/\, \mathbb{E}\|\nabla \log p(y \mid x_\sigma)\|$")
ax.legend()
ax.set_title("likelihood score error along the diffusion")
fig.tight_layout()

# %%
# The particle sampler's correction is exact only as the particles grow: with 64, 256 and 1,024
# particles, the mode error and its estimate of the evidence :math:`\log p(y)` (exact:
# :meth:`~scoredae.mixtures.GaussianMixture.posterior`'s ``log_evidence``).
evidence = float(posterior.log_evidence[0])
for n in (64, 256, 1024):
    gen = torch.Generator().manual_seed(2)
    result = twisted_diffusion(denoiser, problem.y, problem.A, problem.noise_sigma,
                               problem.prior.noised(100.0).sample(n, generator=gen), sigmas,
                               data_variance=problem.data_variance, generator=gen)
    print(f"{n:5d} particles: mode TV {mode_tv(posterior, result.samples):.3f}, log p(y) "
          f"{float(result.state.log_evidence):.3f} (exact {evidence:.3f}), smallest ESS {float(result.state.ess.min()):.0f}")
