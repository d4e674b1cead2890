r"""Training objectives: the MMSE denoising loss and the score-matching family.

Every loss returns one value per sample, shape ``(B,)``; the caller reduces (as in NVlabs/edm's
``training/loss.py``). Points ``x`` have shape ``(B, *S)``; :math:`d = \prod S`.

A denoiser and a score are two parametrisations of one object (Tweedie's formula,
:math:`D(y, \sigma) = y + \sigma^2 s(y, \sigma)`), and their losses agree: with
:math:`y = x + \sigma n`, :math:`D(y) - x = \sigma^2 (s(y) + n / \sigma)`, so

.. math::
    \texttt{denoising\_loss}(D) = \frac{2 \sigma^2}{d}\, \texttt{dsm\_loss}(s)
    \quad (\lambda(\sigma) = \sigma^2), \qquad
    \texttt{denoising\_loss}(D) = \frac{2}{d}\, \texttt{dsm\_loss}(s) \quad (\lambda(\sigma) = \sigma^4).

Flow matching on the linear interpolant is the denoising loss weighted by :math:`(1 + \sigma)^2 / \sigma^2`
(:func:`flow_matching_loss`).

Common random numbers: every noisy loss draws its noise level and noise through :func:`perturb`
(first the levels of a range, then ``n``), so equal generator states give equal noisy points in
:func:`denoising_loss`, :func:`l1_denoising_loss`, :func:`dsm_loss` and :func:`esm_loss`.
"""

from .denoising import (
    charbonnier_denoising_loss,
    denoising_loss,
    edge_aware_denoising_loss,
    l1_denoising_loss,
)
from .flow_matching import flow_matching_loss
from .noise import log_normal_sigmas, log_uniform_sigmas, model_sigma, perturb
from .score_matching import dsm_loss, esm_loss, ism_loss, ssm_loss

__all__ = [
    "charbonnier_denoising_loss",
    "denoising_loss",
    "dsm_loss",
    "edge_aware_denoising_loss",
    "esm_loss",
    "flow_matching_loss",
    "ism_loss",
    "l1_denoising_loss",
    "log_normal_sigmas",
    "log_uniform_sigmas",
    "model_sigma",
    "perturb",
    "ssm_loss",
]
