r"""What an MMSE denoiser knows beyond the mean: the posterior covariance from its Jacobian
(second-order Tweedie), its principal directions, and a self-check that needs no clean image.

For :math:`y = x + \sigma n` and the MMSE denoiser :math:`D(y) = \mathbb E[x \mid y]`,
differentiating Tweedie's formula :math:`D(y) = y + \sigma^2 \nabla \log p_\sigma(y)` gives

.. math::
    \operatorname{Cov}[x \mid y] = \sigma^2 J_D(y) = \sigma^2 \big(I + \sigma^2 \nabla^2 \log p_\sigma(y)\big),

so the Jacobian of a trained denoiser carries the uncertainty of its own answer (Manor & Michaeli
2024). Averaging over :math:`y`, :math:`\mathbb E \lVert D(y) - x \rVert^2 = \sigma^2\, \mathbb E \operatorname{tr} J_D(y)`
for the MMSE denoiser; Stein's unbiased risk estimate (SURE, Stein 1981)
:math:`\lVert D(y) - y \rVert^2 - d \sigma^2 + 2 \sigma^2 \operatorname{tr} J_D(y)` estimates any
denoiser's squared error without the clean image. Comparing the three is a check of "is this
network an MMSE estimator?" (:func:`tweedie_consistency`).

Every Jacobian product is exact, by forward-mode (``torch.func.jvp``) or reverse-mode
(``torch.autograd.grad``) automatic differentiation; no finite differences. Attention runs on PyTorch's
composite operations there, since its fused kernels have no forward-mode derivative.
"""

from __future__ import annotations

import contextlib
import math
import warnings

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from ._checks import positive, positive_int
from .rng import rademacher, randn


def _call(denoiser, sigma):
    def apply(z: torch.Tensor) -> torch.Tensor:
        return denoiser(z, sigma)

    return apply


def _differentiable(error: Exception, denoiser) -> ValueError:
    return ValueError(f"denoiser: {type(denoiser).__name__} cannot be differentiated by torch "
                      f"({type(error).__name__}: {str(error).splitlines()[0][:200]}); the Jacobian needs a "
                      f"denoiser made of differentiable torch operations")


@contextlib.contextmanager
def _forward_mode():
    """No reverse-mode graph (forward mode needs none), and attention on composite operations: the
    fused attention kernels and the transformer layers' fast path have no forward-mode derivative.
    torch's forward mode scripts its decompositions with ``torch.jit.script`` on first use, whose
    deprecation warning concerns torch itself: silenced here, for that message and module only."""
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning,
                                    module=r"torch\.jit\._script")
            yield
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)


def jacobian_vp(denoiser, y: torch.Tensor, sigma, v: torch.Tensor) -> torch.Tensor:
    r""":math:`J_D(y)\, v`, the Jacobian of ``denoiser(., sigma)`` at ``y`` (B, ...) times ``v``, by
    forward-mode AD: ``v`` the shape of ``y``, or ``(K, *y.shape)`` for K vectors (one result each)."""
    if v.shape == y.shape:
        return jacobian_vp(denoiser, y, sigma, v[None])[0]
    if v.shape[1:] != y.shape:
        raise ValueError(f"v: expected the shape of y {tuple(y.shape)} or (K, *y.shape), got {tuple(v.shape)}")
    out = []
    for vector in v:
        try:
            with _forward_mode():
                _, jv = torch.func.jvp(_call(denoiser, sigma), (y,), (vector.to(y),))
        except (RuntimeError, TypeError, NotImplementedError) as err:
            raise _differentiable(err, denoiser) from err
        out.append(jv.detach())
    return torch.stack(out)


def denoise_with_pullback(denoiser, y: torch.Tensor, sigma):
    r"""``(D(y, sigma), v -> J_D(y)^T v)``: the denoiser's output and its vector-Jacobian product by
    reverse-mode AD (the graph of one call, freed by the one pullback it serves; plain autograd, a
    third faster on CPU than ``torch.func.vjp`` for a convolutional network)."""
    leaf = y.detach().requires_grad_(True)
    try:
        with torch.enable_grad():
            out = denoiser(leaf, sigma)
        if not (isinstance(out, torch.Tensor) and out.requires_grad):
            raise TypeError("its output is not a tensor on the autograd graph of its input")
    except (RuntimeError, TypeError, NotImplementedError) as err:
        raise _differentiable(err, denoiser) from err

    def pullback(v: torch.Tensor) -> torch.Tensor:
        return torch.autograd.grad(out, leaf, v.to(out))[0]

    return out.detach(), pullback


def jacobian_transpose_vp(denoiser, y: torch.Tensor, sigma, v: torch.Tensor) -> torch.Tensor:
    r""":math:`J_D(y)^\top v` by reverse-mode AD, ``v`` the shape of ``y``."""
    return denoise_with_pullback(denoiser, y, sigma)[1](v)


def _basis(y: torch.Tensor) -> torch.Tensor:
    """The d unit vectors of one sample's space, for every sample at once: (d, B, *S)."""
    d = y[0].numel()
    eye = torch.eye(d, dtype=y.dtype, device=y.device)
    return eye[:, None, :].expand(d, y.shape[0], d).reshape(d, *y.shape)


def posterior_covariance(denoiser, y: torch.Tensor, sigma: float) -> torch.Tensor:
    r"""The dense posterior covariance :math:`\sigma^2 \frac12 (J + J^\top)` of each sample, (B, d, d),
    from the d columns :math:`J e_i` (one JVP each): for small dimensions (points, small images).

    The covariance is symmetric, and so is the Jacobian of the exact MMSE denoiser (the Hessian of
    :math:`\log p_\sigma` is); a learned Jacobian is only nearly so, and its symmetric part is the
    covariance it implies.
    """
    sigma = positive("sigma", sigma)
    d = y[0].numel()
    columns = jacobian_vp(denoiser, y, sigma, _basis(y)).reshape(d, y.shape[0], d)  # (i, B, :) = J e_i
    jac = columns.permute(1, 2, 0)  # (B, d, d): J[b, :, i] = J e_i
    return sigma**2 * 0.5 * (jac + jac.transpose(1, 2))


def principal_components(denoiser, y: torch.Tensor, sigma: float, k: int, n_iter: int = 50,
                         generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The top-``k`` eigenvalues (posterior variances along each direction) and eigenvectors of the
    posterior covariance :math:`\sigma^2 \frac12 (J + J^\top)` of each sample, by subspace iteration:
    :math:`V \leftarrow \operatorname{orth}\big(\tfrac12 (J V + J^\top V)\big)` ``n_iter`` times (one
    JVP and one VJP per vector), then the Rayleigh-Ritz eigenpairs of :math:`V^\top C V`.

    The symmetric part is used because it is the covariance a learned (nearly symmetric) Jacobian
    implies, and because its eigenpairs are real; for the exact MMSE denoiser it is the Jacobian.

    :returns: the eigenvalues ``(B, k)``, decreasing, and the orthonormal eigenvectors ``(B, k, *S)``.
    """
    sigma = positive("sigma", sigma)
    d = y[0].numel()
    positive_int("n_iter", n_iter)
    if not 1 <= positive_int("k", k) <= d:
        raise ValueError(f"k: expected 1 <= k <= d = {d}, got {k}")
    b = y.shape[0]

    def covariance_times(v: torch.Tensor) -> torch.Tensor:  # (k, B, *S) -> (k, B, *S)
        jv = jacobian_vp(denoiser, y, sigma, v)
        jtv = torch.stack([jacobian_transpose_vp(denoiser, y, sigma, u) for u in v])
        return sigma**2 * 0.5 * (jv + jtv)

    def orthonormal(v: torch.Tensor) -> torch.Tensor:  # columns of (B, d, k) per sample
        return torch.linalg.qr(v.reshape(k, b, d).permute(1, 2, 0))[0]  # (B, d, k)

    basis = orthonormal(randn((k, *y.shape), generator, dtype=y.dtype, device=y.device))
    for _ in range(n_iter):
        images = basis.permute(2, 0, 1).reshape(k, *y.shape)
        basis = orthonormal(covariance_times(images))
    images = basis.permute(2, 0, 1).reshape(k, *y.shape)
    projected = basis.transpose(1, 2) @ covariance_times(images).reshape(k, b, d).permute(1, 2, 0)  # (B, k, k)
    values, rotation = torch.linalg.eigh(0.5 * (projected + projected.transpose(1, 2)))
    values, rotation = values.flip(-1), rotation.flip(-1)  # decreasing
    vectors = (basis @ rotation).transpose(1, 2).reshape(b, k, *y.shape[1:])
    return values, vectors


def posterior_variance(denoiser, y: torch.Tensor, sigma: float, n_probes: int = 32,
                       generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The per-pixel posterior variance :math:`\sigma^2 \operatorname{diag} J` by probing:
    :math:`\operatorname{diag} J = \mathbb E[v \odot J v]` for Rademacher :math:`v` (Bekas et al. 2007),
    averaged over ``n_probes`` probes.

    :returns: ``(variance, standard error)``, each the shape of ``y``: the mean over the probes and its
        Monte Carlo standard error (the probes' standard deviation over :math:`\sqrt{n}`).
    """
    sigma = positive("sigma", sigma)
    probes = rademacher(positive_int("n_probes", n_probes), y, generator)
    samples = sigma**2 * probes * jacobian_vp(denoiser, y, sigma, probes)  # (n, B, *S)
    error = samples.std(0) / math.sqrt(n_probes) if n_probes > 1 else torch.full_like(y, math.inf)
    return samples.mean(0), error


def jacobian_trace(denoiser, y: torch.Tensor, sigma, probes: torch.Tensor | None = None) -> torch.Tensor:
    r""":math:`\operatorname{tr} J_D(y)` per sample (B,): exact from the d basis vectors (``probes``
    None, d JVPs), or Hutchinson's unbiased :math:`\frac1K \sum_k v_k^\top J v_k` over ``probes``
    ``(K, *y.shape)``, e.g. Rademacher vectors."""
    vectors = _basis(y) if probes is None else probes
    products = (vectors * jacobian_vp(denoiser, y, sigma, vectors)).reshape(len(vectors), y.shape[0], -1).sum(2)
    return products.sum(0) if probes is None else products.mean(0)


def _trace(denoiser, y: torch.Tensor, sigma: float, n_probes: int | None, generator) -> torch.Tensor:
    """tr J per sample, exact (n_probes None) or with ``n_probes`` fresh Rademacher probes."""
    probes = None if n_probes is None else rademacher(positive_int("n_probes", n_probes), y, generator)
    return jacobian_trace(denoiser, y, sigma, probes)


def _sure(out: torch.Tensor, y: torch.Tensor, trace: torch.Tensor, sigma: float) -> torch.Tensor:
    """SURE per sample from the output, the noisy input and tr J."""
    d = y[0].numel()
    return (out - y).reshape(y.shape[0], -1).square().mean(1) - sigma**2 + 2 * sigma**2 * trace / d


def sure(denoiser, y: torch.Tensor, sigma: float, n_probes: int | None = 1,
         generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Stein's unbiased estimate of the per-pixel squared error of ``denoiser`` at each noisy ``y``
    (B, ...), without the clean image:
    :math:`\frac1d \lVert D(y) - y \rVert^2 - \sigma^2 + \frac{2 \sigma^2}{d} \operatorname{tr} J_D(y)`,
    the trace exact (``n_probes=None``, d JVPs) or by Hutchinson with ``n_probes`` Rademacher probes
    (still unbiased). Returns (B,)."""
    sigma = positive("sigma", sigma)
    with torch.no_grad():
        out = denoiser(y, sigma)
    return _sure(out, y, _trace(denoiser, y, sigma, n_probes, generator), sigma)


def tweedie_consistency(denoiser, images: torch.Tensor, sigma: float, *, n_probes: int | None = 1,
                        generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    r"""For each clean image (B, ...) noised once at ``sigma``: the true per-pixel squared error
    ``"mse"``, ``"sure"`` (:func:`sure`), and ``"trace"`` :math:`= \sigma^2 \operatorname{tr} J / d`,
    which equals the expected squared error exactly for the MMSE denoiser. Over many images,
    ``sure / mse`` tends to 1 for any denoiser and ``trace / mse`` to 1 for the MMSE one only: the
    ratio says how far a network is from the posterior mean. Each value (B,)."""
    sigma = positive("sigma", sigma)
    y = images + sigma * randn(images.shape, generator, dtype=images.dtype, device=images.device)
    with torch.no_grad():
        out = denoiser(y, sigma)
    trace = _trace(denoiser, y, sigma, n_probes, generator)
    return {"mse": (out - images).reshape(y.shape[0], -1).square().mean(1),
            "sure": _sure(out, y, trace, sigma),
            "trace": sigma**2 * trace / y[0].numel()}


def consistency_summary(values: dict[str, torch.Tensor]) -> dict[str, float]:
    r"""The means of :func:`tweedie_consistency`'s per-image values over n images, and the ratios
    ``"sure/mse"`` and ``"trace/mse"`` of those means, each ratio :math:`r = \bar a / \bar m` with its
    standard error ``"sure/mse se"``, ``"trace/mse se"``: :math:`\operatorname{sd}(a_i - r\, m_i) / (\sqrt n\, \bar m)`
    (the delta method). ``trace/mse`` within a few standard errors of 1 is what the MMSE denoiser gives."""
    mse = values["mse"]
    summary = {key: float(v.mean()) for key, v in values.items()}
    for key in ("sure", "trace"):
        ratio = summary[key] / summary["mse"]
        spread = float((values[key] - ratio * mse).std()) if len(mse) > 1 else math.inf
        summary[f"{key}/mse"] = ratio
        summary[f"{key}/mse se"] = spread / (math.sqrt(len(mse)) * summary["mse"])
    return summary
