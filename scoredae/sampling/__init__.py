"""Sampling a prior from its score or its denoiser: the Langevin family, EDM's probability-flow ODE
and stochastic sampler, DDIM and DDPM's ancestral sampling, the multistep DPM-Solver++, iPNDM and
UniPC, Kadkhodaie-Simoncelli's coarse-to-fine ascent, the ODE likelihood, chain diagnostics, and
the schedules and predictions of other parametrisations. Posterior sampling for :math:`y = A x + \\sigma_y n`
is :mod:`scoredae.inverse`.

Each sampler is a step function on the one shared loop of :mod:`scoredae.sampling.loop`.
"""

from .ancestral import ancestral_step, ddim
from .coarse_to_fine import KSState, coarse_to_fine_ascent, kadkhodaie_simoncelli
from .diagnostics import effective_sample_size, split_rhat
from .edm import edm_sampler, karras_sigmas, ode_derivative
from .langevin import MALAState, annealed_langevin, geometric_sigmas, mala, ula
from .likelihood import bits_per_dim, pf_ode_log_likelihood
from .loop import LoopSpec, SamplerDivergedError, SamplerResult, run_chain
from .multistep import MultistepState, UniPCState, dpm_solver_pp, ipndm, unipc

__all__ = [
    "KSState",
    "LoopSpec",
    "MALAState",
    "MultistepState",
    "SamplerDivergedError",
    "SamplerResult",
    "UniPCState",
    "ancestral_step",
    "annealed_langevin",
    "bits_per_dim",
    "coarse_to_fine_ascent",
    "ddim",
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
    "run_chain",
    "split_rhat",
    "ula",
    "unipc",
]
