r"""What the diffusion posterior samplers approximate: the noised likelihood :math:`p(y \mid x_\sigma)`.

For :math:`y = A x_0 + \sigma_y n` and :math:`x_\sigma = x_0 + \sigma n'`, Bayes' rule at every level
gives the score of the noised posterior,
:math:`\nabla \log p_\sigma(x_\sigma \mid y) = \nabla \log p_\sigma(x_\sigma) + \nabla \log p(y \mid x_\sigma)`,
and, multiplied by :math:`\sigma^2` (Tweedie's formula), its denoiser
:math:`D_y(x, \sigma) = D(x, \sigma) + \sigma^2 \nabla \log p(y \mid x)`. The exact
:math:`p(y \mid x_\sigma) = \int \mathcal N(y; A x_0, \sigma_y^2 I)\, p(x_0 \mid x_\sigma)\, dx_0` needs
the whole denoising posterior :math:`p(x_0 \mid x_\sigma)` (closed form for a Gaussian mixture:
:meth:`~scoredae.mixtures.GaussianMixture.noised_likelihood`); each method replaces it by a Gaussian
around the MMSE estimate :math:`D = \mathbb E[x_0 \mid x_\sigma]` and keeps the gradient through
:math:`D` only (its covariance held fixed):

.. math::
    p(y \mid x_\sigma) \approx \mathcal N\big(y;\, A D(x_\sigma, \sigma),\, \sigma_y^2 I + A \Sigma A^\top\big),
    \qquad
    \nabla \log p(y \mid x_\sigma) \approx J_D^\top A^\top \big(\sigma_y^2 I + A \Sigma A^\top\big)^{-1}
    \big(y - A D\big),

with :math:`\Sigma = 0` for DPS (Chung et al. 2023, eq. 11-16: :math:`p(x_0 \mid x_t)` a Dirac at the
Tweedie mean), :math:`\Sigma = r_\sigma^2 I`, :math:`r_\sigma^2 = \sigma^2 \sigma_{data}^2 / (\sigma^2 +
\sigma_{data}^2)` for PiGDM (Song et al. 2023, eq. 7-8, the posterior variance of a Gaussian prior
of variance :math:`\sigma_{data}^2`), and :math:`\Sigma = \sigma^2 J_D`, the true posterior covariance
(second-order Tweedie, :mod:`scoredae.uncertainty`), for TMPD (Boys et al. 2023, eq. 9-11). Each
``*_guidance`` returns ``guide(x, sigma) -> (D(x, sigma), gradient)`` from one denoiser call and
one vector-Jacobian product (TMPD adds the Jacobian-vector products of its covariance).
"""

from __future__ import annotations

import torch

from ..uncertainty import denoise_with_pullback, jacobian_vp
from .operators import LinearOperator, conjugate_solve

TMPD_COVARIANCES = ("full", "row_sum")


def gaussian_posterior_variance(sigma: float, data_variance: float) -> float:
    r""":math:`r_\sigma^2 = \sigma^2 \sigma_{data}^2 / (\sigma^2 + \sigma_{data}^2)`, the variance of
    :math:`x_0 \mid x_\sigma` for a prior :math:`\mathcal N(m, \sigma_{data}^2 I)` (PiGDM's :math:`r_t^2`;
    0 when ``data_variance`` is 0)."""
    return sigma**2 * data_variance / (sigma**2 + data_variance)


def _flat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1)


def dps_likelihood_score(denoiser, y: torch.Tensor, op: LinearOperator, noise_sigma: float):
    r"""DPS's :math:`\nabla \log p(y \mid x_\sigma) \approx J_D^\top A^\top (y - A D) / \sigma_y^2`;
    for a nonlinear forward model :math:`f`, :math:`J_D^\top J_f(D)^\top (y - f(D)) / \sigma_y^2`."""

    def guide(x, sigma):
        denoised, pullback = denoise_with_pullback(denoiser, x, sigma)
        return denoised, pullback(op.adjoint_at(denoised, y - op.A(denoised)) / noise_sigma**2)

    return guide


def pigdm_likelihood_score(denoiser, y: torch.Tensor, op: LinearOperator, noise_sigma: float, data_variance: float):
    r"""PiGDM's :math:`J_D^\top A^\top (r_\sigma^2 A A^\top + \sigma_y^2 I)^{-1} (y - A D)`,
    :math:`r_\sigma^2 = \sigma^2 \sigma_{data}^2 / (\sigma^2 + \sigma_{data}^2)`."""

    def guide(x, sigma):
        denoised, pullback = denoise_with_pullback(denoiser, x, sigma)
        r2 = gaussian_posterior_variance(sigma, data_variance)
        return denoised, pullback(op.A_adjoint(op.gram_solve(y - op.A(denoised), r2, noise_sigma**2)))

    return guide


def tmpd_likelihood_score(denoiser, y: torch.Tensor, op: LinearOperator, noise_sigma: float, covariance: str = "full"):
    r"""TMPD's :math:`J_D^\top A^\top (\sigma_y^2 I + \sigma^2 A J_D A^\top)^{-1} (y - A D)`.

    ``covariance="full"`` builds :math:`A J_D A^\top` from the :math:`m` products :math:`J_D A^\top e_j`
    (one Jacobian-vector product per measurement; for few measurements), ``"row_sum"`` replaces
    :math:`J_D` by the diagonal of its row sums :math:`J_D \mathbf 1` (one product; Boys et al. 2023,
    section 4, for large images), the solve then elementwise for a diagonal :math:`A` (a mask) and by
    conjugate gradients otherwise. The Jacobian-vector products run before the pullback's graph is
    built, so that the two are never held at once."""
    if covariance not in TMPD_COVARIANCES:
        raise ValueError(f"covariance: expected one of {TMPD_COVARIANCES}, got {covariance!r}")

    def guide(x, sigma):
        solve = _covariance_solver(denoiser, x, sigma, y, op, noise_sigma, covariance)
        denoised, pullback = denoise_with_pullback(denoiser, x, sigma)
        return denoised, pullback(op.A_adjoint(solve(y - op.A(denoised))))

    return guide


def _covariance_solver(denoiser, x, sigma, y, op: LinearOperator, noise_sigma: float, covariance: str):
    r"""``r -> (sigma_y^2 I + sigma^2 A Sigma A^T)^{-1} r`` per chain with TMPD's covariance
    :math:`\Sigma` at ``(x, sigma)``: the full :math:`m \times m` matrix from the columns
    :math:`A J_D A^\top e_j` (its symmetric part: a covariance is symmetric), or the row-sum diagonal."""
    if covariance == "row_sum":
        diag = (sigma**2 * jacobian_vp(denoiser, x, sigma, torch.ones_like(x))).clamp(min=0)  # a variance, >= 0
        if op.diagonal is not None:  # A = diag(a): the solve is elementwise
            return lambda r: r / (noise_sigma**2 + op.diagonal**2 * diag)
        return lambda r: conjugate_solve(lambda v: noise_sigma**2 * v + op.A(diag * op.A_adjoint(v)), r)
    b, m = y.shape[0], _flat(y).shape[1]
    basis = torch.eye(m, dtype=x.dtype, device=x.device)[:, None, :].expand(m, b, m)  # (m, B, m)
    back = torch.stack([op.A_adjoint(e.reshape(y.shape)) for e in basis])  # A^T e_j, (m, B, *S)
    columns = jacobian_vp(denoiser, x, sigma, back)  # J A^T e_j, (m, B, *S)
    ajat = torch.stack([_flat(op.A(c)) for c in columns], dim=-1)  # (B, m, m): [:, :, j] = A J A^T e_j
    gram = noise_sigma**2 * torch.eye(m, dtype=x.dtype, device=x.device) + sigma**2 * 0.5 * (ajat + ajat.mT)
    return lambda r: torch.linalg.solve(gram, _flat(r)).reshape(r.shape)
