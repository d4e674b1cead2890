"""Samplers driven by a score: the Langevin family, posterior sampling, the diffusion-era samplers
(EDM's ODE and stochastic sampler), and chain diagnostics.

Each sampler is a step function on the one shared loop of :mod:`scoredae.sampling.loop`.
"""

from .diagnostics import effective_sample_size, split_rhat
from .diffusion import (
    bits_per_dim,
    edm_sampler,
    kadkhodaie_simoncelli,
    karras_sigmas,
    pf_ode_log_likelihood,
)
from .langevin import annealed_langevin, geometric_sigmas, mala, ula
from .loop import SamplerDivergedError, SamplerResult
from .posterior import posterior_langevin

__all__ = [
    "SamplerDivergedError",
    "SamplerResult",
    "annealed_langevin",
    "bits_per_dim",
    "edm_sampler",
    "effective_sample_size",
    "geometric_sigmas",
    "kadkhodaie_simoncelli",
    "karras_sigmas",
    "mala",
    "pf_ode_log_likelihood",
    "posterior_langevin",
    "split_rhat",
    "ula",
]
