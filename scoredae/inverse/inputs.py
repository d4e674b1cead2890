"""The checks every posterior sampler with a diffusion prior starts with, written once: the
denoiser's range, the chains, the noise level of the observation, the operator, the observation
and the levels, each refused with an error that names the argument."""

from __future__ import annotations

import torch

from .._checks import decreasing_levels, finite_number
from ..sampling.loop import check_chain_inputs
from ..score import require_every_level
from .operators import (
    LinearOperator,
    NonlinearForward,
    check_observation,
    forward_model,
    linear_operator,
)


def posterior_inputs(denoiser, y, forward, noise_sigma, x_T, sigmas, generator, method: str, *,
                     noiseless: bool = False, nonlinear: bool = False
                     ) -> tuple[LinearOperator | NonlinearForward, torch.Tensor, float, list[float]]:
    r"""The shared prologue of ``method(denoiser, y, forward, noise_sigma, x_T, sigmas, ...)``: returns
    the operator, ``y`` broadcast to the chains, :math:`\sigma_y` as a float and the levels.

    ``noise_sigma`` is a finite number (a Python number or a one-element tensor) > 0, or >= 0 with
    ``noiseless`` (the methods that handle :math:`\sigma_y = 0`); ``x_T`` a finite floating tensor of
    chains; a matrix ``forward`` finite, or with ``nonlinear`` any differentiable ``forward(x)``;
    ``y`` finite and of the shape of ``forward(x_T)``; ``sigmas`` decreasing to 0."""
    require_every_level(denoiser, method)
    check_chain_inputs(x_T, generator, name="x_T")
    try:
        noise_sigma = finite_number("noise_sigma", noise_sigma, allow_zero=noiseless)
    except ValueError as err:
        needs = "sigma_y >= 0" if noiseless else "a Gaussian likelihood, sigma_y > 0"
        raise ValueError(f"{err}; {method} needs {needs}") from None
    op = forward_model(forward, x_T) if nonlinear else linear_operator(forward, x_T)
    levels = decreasing_levels("sigmas", sigmas, final_zero=True)
    return op, check_observation(y, op, x_T), noise_sigma, levels
