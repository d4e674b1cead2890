"""Samplers driven by a score: the Langevin family, posterior sampling, the diffusion-era samplers
(EDM's ODE and stochastic sampler, the multistep DPM-Solver++ and iPNDM), and chain diagnostics.

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
from .langevin import MALAState, annealed_langevin, geometric_sigmas, mala, ula
from .loop import LoopSpec, SamplerDivergedError, SamplerResult, run_chain
from .multistep import MultistepState, dpm_solver_pp, ipndm
from .posterior import posterior_langevin

__all__ = [
    "KSState",
    "LoopSpec",
    "MALAState",
    "MultistepState",
    "SamplerDivergedError",
    "SamplerResult",
    "annealed_langevin",
    "bits_per_dim",
    "dpm_solver_pp",
    "edm_sampler",
    "effective_sample_size",
    "geometric_sigmas",
    "ipndm",
    "kadkhodaie_simoncelli",
    "karras_sigmas",
    "mala",
    "ode_derivative",
    "pf_ode_log_likelihood",
    "posterior_langevin",
    "run_chain",
    "split_rhat",
    "ula",
]
