"""Samplers driven by a score: the Langevin family, posterior sampling, the diffusion-era samplers
(EDM's ODE and stochastic sampler, the multistep DPM-Solver++ and iPNDM), posterior sampling with a
diffusion prior (DPS, PiGDM, TMPD, DDRM, DiffPIR and the twisted diffusion sampler), and chain
diagnostics.

Each sampler is a step function on the one shared loop of :mod:`scoredae.sampling.loop`.
"""

from .diagnostics import effective_sample_size, split_rhat
from .diffusion import (
    KSState,
    bits_per_dim,
    edm_sampler,
    kadkhodaie_simoncelli,
    karras_sigmas,
    ode_derivative,
    pf_ode_log_likelihood,
)
from .inverse import ddrm, diffpir, dps, likelihood_guided, pigdm, tmpd
from .langevin import MALAState, annealed_langevin, geometric_sigmas, mala, ula
from .loop import LoopSpec, SamplerDivergedError, SamplerResult, run_chain
from .multistep import MultistepState, dpm_solver_pp, ipndm
from .operators import LinearOperator, linear_operator
from .posterior import posterior_langevin
from .smc import SMCState, twisted_diffusion

__all__ = [
    "KSState",
    "LinearOperator",
    "LoopSpec",
    "MALAState",
    "MultistepState",
    "SMCState",
    "SamplerDivergedError",
    "SamplerResult",
    "annealed_langevin",
    "bits_per_dim",
    "ddrm",
    "diffpir",
    "dpm_solver_pp",
    "dps",
    "edm_sampler",
    "effective_sample_size",
    "geometric_sigmas",
    "ipndm",
    "kadkhodaie_simoncelli",
    "karras_sigmas",
    "likelihood_guided",
    "linear_operator",
    "mala",
    "ode_derivative",
    "pf_ode_log_likelihood",
    "pigdm",
    "posterior_langevin",
    "run_chain",
    "split_rhat",
    "tmpd",
    "twisted_diffusion",
    "ula",
]
