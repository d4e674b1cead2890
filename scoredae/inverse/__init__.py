"""Inverse problems :math:`y = A x + \\sigma_y n`: linear operators (a matrix, a deepinv physics or a
pair of callables), PnP-ULA, the likelihood scores :math:`\\nabla \\log p(y \\mid x_\\sigma)` the
diffusion posterior samplers approximate, those samplers (DPS, PiGDM, TMPD, DDRM, DiffPIR),
MCMC inside the diffusion (DAPS, PnP-DM, DPnP), projection (DDNM), optimisation (RED-diff, MGPS, DCPS), the particle samplers (TDS, and MCGdiff and FPS in the
operator's spectral domain) and Kadkhodaie-Simoncelli's
constrained ascent.

Every sampler with a diffusion prior has one signature,
``name(denoiser, y, forward, noise_sigma, x_T, sigmas, *, generator=None, ...)``, and the checks of
:func:`~scoredae.inverse.inputs.posterior_inputs`.
"""

from .annealed_mcmc import daps, dpnp, pnp_dm
from .constrained import kadkhodaie_simoncelli_constrained
from .diffusion_prior import ancestral_posterior, ddrm, diffpir, dps, pigdm, tmpd
from .divide_conquer import dcps
from .filtering import FilterState, fps, mcgdiff
from .likelihood_scores import dps_likelihood_score, pigdm_likelihood_score, tmpd_likelihood_score
from .operators import LinearOperator, linear_operator
from .particles import SMCState, importance_effective_size, twisted_diffusion
from .pnp_ula import posterior_langevin
from .projection import ddnm
from .variational import mgps, red_diff

__all__ = [
    "FilterState",
    "LinearOperator",
    "SMCState",
    "ancestral_posterior",
    "daps",
    "dcps",
    "ddnm",
    "ddrm",
    "diffpir",
    "dpnp",
    "dps",
    "dps_likelihood_score",
    "fps",
    "importance_effective_size",
    "kadkhodaie_simoncelli_constrained",
    "linear_operator",
    "mcgdiff",
    "mgps",
    "pigdm",
    "pigdm_likelihood_score",
    "pnp_dm",
    "posterior_langevin",
    "red_diff",
    "tmpd",
    "tmpd_likelihood_score",
    "twisted_diffusion",
]
