r"""Linear forward operators :math:`y = A x + \sigma_y n` for the posterior samplers, from a matrix, a
deepinv physics or a pair of callables, with the solves the samplers need; and nonlinear forward
models :math:`y = f(x) + \sigma_y n` (:class:`~scoredae.inverse.operators.NonlinearForward`) for the samplers that need only the
gradient of the misfit.

:func:`linear_operator` gives a :class:`LinearOperator` whose ``A`` and ``A_adjoint`` act on batches
``(B, *S)`` of images or points. When :math:`A` has a known singular value decomposition
:math:`A = U \operatorname{diag}(s) V^\top` (a matrix, through ``torch.linalg.svd``, or a
:class:`deepinv.physics.DecomposablePhysics`: masks, circular blurs, denoising), the solves are
closed form in the spectral domain; otherwise they run conjugate gradients on :math:`A A^\top`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import deepinv
import torch
from deepinv.optim.utils import conjugate_gradient

from .._checks import finite, per_row
from ..uncertainty import _forward_mode

_CG_ITERATIONS = 100  # the most conjugate-gradient iterations of a solve with no SVD
_CG_TOLERANCE = 1e-10  # their relative residual


def conjugate_solve(apply: Callable, u: torch.Tensor) -> torch.Tensor:
    """``apply^{-1} u`` for a symmetric positive-definite ``apply``, per sample, by deepinv's
    conjugate gradients (with no 1e-8 added to their denominators, which biases small systems)."""
    return conjugate_gradient(apply, u, max_iter=_CG_ITERATIONS, tol=_CG_TOLERANCE, eps=1e-30)


class LinearOperator:
    r""":math:`A` and :math:`A^\top` on batches, and, when known, its SVD.

    The spectral coordinates are :math:`\bar x = V^\top x`; ``singular`` holds :math:`s`, broadcasting
    against them (zero where :math:`A` sees nothing), and ``spectral_y(y)`` is :math:`U^\top y` laid
    out like :math:`\bar x`, so that :math:`\overline{A x} = s \odot \bar x` there.
    """

    linear = True

    def __init__(self, A: Callable, A_adjoint: Callable, *, pinv: Callable | None = None, spectral=None,
                 gram: Callable | None = None, diagonal: torch.Tensor | None = None):
        self.A, self.A_adjoint = A, A_adjoint
        self.diagonal = diagonal  # d with A x = d * x (a mask, the identity), or None
        self._pinv = pinv
        self._spectral = spectral  # (V_adjoint, V, spectral_y, singular values) or None
        self._gram = gram  # (u, c, shift) -> (c A A^T + shift I)^{-1} u in closed form, or None

    def adjoint_at(self, x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        r""":math:`J^\top r` for the Jacobian of the forward model at ``x``: :math:`A^\top r` here."""
        return self.A_adjoint(r)

    def jvp_at(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        r""":math:`J v` for the Jacobian of the forward model at ``x``: :math:`A v` here."""
        return self.A(v)

    def svd(self) -> tuple[Callable, Callable, Callable, torch.Tensor]:
        """``(V_adjoint, V, spectral_y, s)``; a ValueError when the operator has none."""
        if self._spectral is None:
            raise ValueError("forward: this method needs the SVD of the operator; give an (m, d) matrix or a "
                             "deepinv.physics.DecomposablePhysics (Inpainting, BlurFFT, Denoising, ...)")
        return self._spectral

    def pinv(self, r: torch.Tensor) -> torch.Tensor:
        r""":math:`A^+ r`; for a pair of callables the adjoint, which is :math:`A^+` when :math:`A A^\top = I`."""
        return (self._pinv or self.A_adjoint)(r)

    def gram_solve(self, u: torch.Tensor, scale, shift: float) -> torch.Tensor:
        r""":math:`(c\, A A^\top + \sigma^2 I)^{-1} u` for the scale :math:`c` (a float or a ``(B,)``
        tensor) and the shift :math:`\sigma^2 > 0`; in the spectral domain with an SVD, else by
        conjugate gradients (with no 1e-8 added to their denominators, which biases small systems)."""
        c = torch.as_tensor(scale, dtype=u.dtype, device=u.device)
        c = per_row(c, u) if c.ndim == 1 else c
        if self._gram is not None:
            return self._gram(u, c, shift)
        return conjugate_solve(lambda v: c * self.A(self.A_adjoint(v)) + shift * v, u)


class NonlinearForward:
    r"""A differentiable forward model :math:`y = f(x) + \sigma_y n`, ``f`` acting on batches
    ``(B, *S)``: ``A`` is :math:`f`, and the gradient of a misfit goes through autograd,
    :math:`J_f(x)^\top r` (``adjoint_at``), and :math:`J_f(x) v` by forward mode (``jvp_at``)."""

    linear = False

    def __init__(self, f: Callable):
        self.A = f

    def adjoint_at(self, x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            leaf = x.detach().requires_grad_(True)
            out = self.A(leaf)
            if not (isinstance(out, torch.Tensor) and out.requires_grad):
                raise TypeError("forward: expected a differentiable forward(x), whose output is on the autograd "
                                "graph of x")
            return torch.autograd.grad(out, leaf, r.to(out))[0]

    def jvp_at(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        with _forward_mode():
            return torch.func.jvp(self.A, (x.contiguous(),), (v.contiguous(),))[1]


def spectral_observation(op: LinearOperator, y: torch.Tensor, noise_sigma: float, like: torch.Tensor):
    r"""The observation in the spectral domain of :math:`A = U \operatorname{diag}(s) V^\top`, as the
    SVD-based samplers (DDRM, DDNM) read it: ``(V_adjoint, V, seen, y_bar, nsr)`` with ``seen`` where
    :math:`s_j > 0`, :math:`\bar y_j = (U^\top y)_j / s_j` and the noise of that coordinate,
    :math:`\sigma_y / |s_j|`, on the seen coordinates (0 elsewhere), in the dtype and device of ``like``."""
    v_adjoint, v, spectral_y, s = op.svd()
    s = torch.as_tensor(s).to(dtype=like.dtype, device=like.device)
    seen = s.abs() > 0
    safe = torch.where(seen, s, 1)
    y_bar = torch.where(seen, spectral_y(y) / safe, 0)
    nsr = torch.where(seen, noise_sigma / safe.abs(), 0)
    return v_adjoint, v, seen, y_bar, nsr


def _matrix(A: torch.Tensor, x0: torch.Tensor) -> LinearOperator:
    shape, d = x0.shape[1:], math.prod(x0.shape[1:])
    if A.ndim != 2 or A.shape[1] != d:
        raise ValueError(f"forward: expected an (m, {d}) matrix for x of shape {tuple(x0.shape)}, "
                         f"got shape {tuple(A.shape)}")
    finite("forward", A)
    A = A.to(dtype=x0.dtype, device=x0.device)
    m = A.shape[0]
    U, s, Vh = torch.linalg.svd(A)  # U (m, m), s (min(m, d),), Vh (d, d)
    singular = torch.cat([s, s.new_zeros(d - len(s))])  # (d,)

    def spectral_y(y):  # U^T y, padded (or cut) to d coordinates: (B, d)
        uy = y @ U
        return torch.cat([uy, uy.new_zeros(uy.shape[0], d - m)], 1) if d > m else uy[:, :d]

    s_m = torch.cat([s, s.new_zeros(max(m - len(s), 0))])  # (m,): A A^T = U diag(s_m^2) U^T
    pinv = torch.linalg.pinv(A)  # (d, m)

    def gram(u, c, shift):  # U diag(1 / (c s^2 + shift)) U^T u
        return ((u @ U) / (c.reshape(-1, 1) * s_m**2 + shift)) @ U.T

    return LinearOperator(lambda x: x.reshape(x.shape[0], d) @ A.T,  # (B, d) @ (d, m) -> (B, m)
                          lambda r: (r @ A).reshape(r.shape[0], *shape),
                          pinv=lambda r: (r @ pinv.T).reshape(r.shape[0], *shape),
                          spectral=(lambda x: x.reshape(x.shape[0], d) @ Vh.T,  # V^T x, (B, d)
                                    lambda xbar: (xbar @ Vh).reshape(xbar.shape[0], *shape),
                                    spectral_y, singular),
                          gram=gram)


def _decomposable(physics, x0: torch.Tensor) -> LinearOperator:
    probe = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0), dtype=x0.dtype).to(x0.device)
    if _is_identity(physics.V_adjoint, probe) and _is_identity(physics.U_adjoint, probe):
        return _diagonal(torch.as_tensor(physics.mask).to(x0), physics.A_dagger)

    def gram(u, c, shift):  # U diag(1 / (c |s|^2 + shift)) U^T u
        s = physics.mask
        return physics.U(physics.U_adjoint(u) / (c * (s.conj() * s).real + shift))

    return LinearOperator(physics.A, physics.A_adjoint, pinv=physics.A_dagger,
                          spectral=(physics.V_adjoint, physics.V, physics.U_adjoint, physics.mask)
                          if _real_isometry(physics, x0) else None, gram=gram)


def _diagonal(a: torch.Tensor, pinv: Callable) -> LinearOperator:
    r""":math:`A = \operatorname{diag}(a)` (a mask, the identity), :math:`U = V = I`: every product and
    solve elementwise."""

    def same(x):
        return x

    return LinearOperator(lambda x: a * x, lambda r: a * r, pinv=pinv, spectral=(same, same, same, a),
                          gram=lambda u, c, shift: u / (c * a**2 + shift), diagonal=a)


def _is_identity(transform: Callable, probe: torch.Tensor) -> bool:
    out = transform(probe)
    return out.shape == probe.shape and bool(torch.equal(out, probe))


def _real_isometry(physics, x0: torch.Tensor) -> bool:
    r"""Whether the physics' :math:`V` is a real orthonormal basis, :math:`\lVert V z \rVert =
    \lVert z \rVert` and :math:`V^\top V z = z` on a random probe :math:`z`: masks are; the real
    view of a half Fourier spectrum (``BlurFFT``) is not, so a sampler that draws white noise in
    the spectral domain cannot use it."""
    if torch.is_complex(torch.as_tensor(physics.mask)):
        return False
    z = torch.randn(physics.V_adjoint(x0).shape, generator=torch.Generator().manual_seed(0), dtype=x0.dtype)
    vz = physics.V(z.to(x0.device))
    return bool(torch.allclose(vz.norm(), z.norm().to(vz), rtol=1e-4)
                and torch.allclose(physics.V_adjoint(vz).cpu(), z, rtol=1e-4, atol=1e-5))


def block_average(factor: int) -> LinearOperator:
    r"""Super-resolution's forward operator: the mean of each ``factor`` x ``factor`` block of images
    (B, C, H, W), H and W multiples of ``factor``, with its SVD. With :math:`Q` an orthonormal basis
    of a block's :math:`f^2` pixels whose first vector is :math:`\mathbf 1 / f`, the spectral
    coordinates are :math:`Q^\top` of each block, the one singular value :math:`1 / f` (the mean
    is :math:`(1/f)` times the first coordinate), the others 0; :math:`A A^\top = I / f^2`."""
    f = factor
    first = torch.full((f * f, 1), 1.0 / f, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.cat([first, torch.eye(f * f, dtype=torch.float64)[:, 1:]], 1))
    q = q * torch.sign(q[0, 0])  # the first column +1/f

    def blocks(x):  # (B, C, H, W) -> (B, C, H/f, W/f, f*f)
        b, c, h, w = x.shape
        return x.reshape(b, c, h // f, f, w // f, f).permute(0, 1, 2, 4, 3, 5).reshape(b, c, h // f, w // f, f * f)

    def unblocks(z):  # the inverse of blocks
        b, c, h, w, _ = z.shape
        return z.reshape(b, c, h, w, f, f).permute(0, 1, 2, 4, 3, 5).reshape(b, c, h * f, w * f)

    def v_adjoint(x):
        return blocks(x) @ q.to(x)

    def v(z):
        return unblocks(z @ q.T.to(z))

    def spectral_y(y):  # U = I: y sits in the first coordinate of each block
        return torch.cat([y[..., None], y.new_zeros(*y.shape, f * f - 1)], -1)

    singular = torch.cat([torch.ones(1), torch.zeros(f * f - 1)]).double() / f

    def A(x):
        return blocks(x).mean(-1)

    def A_adjoint(y):  # each block gets y / f^2
        return unblocks(y[..., None].expand(*y.shape, f * f)) / f**2

    return LinearOperator(A, A_adjoint, pinv=lambda y: unblocks(y[..., None].expand(*y.shape, f * f)),
                          spectral=(v_adjoint, v, spectral_y, singular),
                          gram=lambda u, c, shift: u / (c / f**2 + shift))


def linear_operator(forward, x0: torch.Tensor) -> LinearOperator:
    """The :class:`LinearOperator` of an ``(m, d)`` matrix (``x`` flattened to ``(B, d)``), a
    deepinv ``LinearPhysics`` (with its SVD when it is a ``DecomposablePhysics`` whose :math:`V`
    is a real orthonormal basis), or a pair ``(A, A_adjoint)`` of callables; ``x0`` an example batch of the unknown.
    A :class:`LinearOperator` is returned as it is."""
    if isinstance(forward, LinearOperator):
        return forward
    if isinstance(forward, torch.Tensor):
        return _matrix(forward, x0)
    if isinstance(forward, (tuple, list)) and len(forward) == 2 and all(map(callable, forward)):
        return LinearOperator(*forward)
    if isinstance(forward, deepinv.physics.DecomposablePhysics):
        return _decomposable(forward, x0)
    if callable(getattr(forward, "A", None)) and callable(getattr(forward, "A_adjoint", None)):
        return LinearOperator(forward.A, forward.A_adjoint, pinv=getattr(forward, "A_dagger", None))
    if callable(forward):
        raise TypeError("forward: this method needs a linear operator, an (m, d) tensor, a "
                        "deepinv.physics.LinearPhysics or a pair (A, A_adjoint) of callables; a nonlinear "
                        "forward(x) works with dps, daps, red_diff, pnp_dm and dpnp")
    raise TypeError("forward: expected an (m, d) tensor, a deepinv.physics.LinearPhysics or a pair "
                    f"(A, A_adjoint) of callables, got {type(forward).__name__}")


def forward_model(forward, x0: torch.Tensor) -> LinearOperator | NonlinearForward:
    """:func:`linear_operator` of ``forward``, or the :class:`NonlinearForward` of a deepinv
    ``Physics`` that is not linear (its noiseless ``A``) or of any other callable ``forward(x)``."""
    is_linear = isinstance(forward, (LinearOperator, torch.Tensor, deepinv.physics.LinearPhysics, tuple, list))
    if is_linear or not callable(forward):
        return linear_operator(forward, x0)
    return NonlinearForward(forward.A if isinstance(forward, deepinv.physics.Physics) else forward)


def check_observation(y: torch.Tensor, op: LinearOperator | NonlinearForward, x0: torch.Tensor) -> torch.Tensor:
    """``y`` as the shape of ``A(x0)``: one observation per chain, or one broadcast to all; finite."""
    ax0 = op.A(x0)
    try:
        broadcasts = torch.broadcast_shapes(y.shape, ax0.shape) == ax0.shape
    except RuntimeError:
        broadcasts = False
    if not broadcasts:
        raise ValueError(f"y: expected the shape of forward(x), {tuple(ax0.shape)} (or one broadcasting "
                         f"to it), got {tuple(y.shape)}")
    if not bool(torch.isfinite(y).all()):
        raise ValueError("y: expected finite values, got NaN or inf")
    return y.to(x0).expand_as(ax0)
