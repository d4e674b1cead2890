r"""The covariances of a mixture's components, each structure with its own closed forms.

* :class:`FullCovariance`: any :math:`K` matrices :math:`\Sigma_k`, held by their Cholesky factors:
  :math:`O(d^3)` per component and level, :math:`O(d^2)` per point.
* :class:`DiagonalPlusLowRank`: :math:`\Sigma_k = \operatorname{diag}(\delta_k) + W_k M_k W_k^\top`
  with :math:`W_k` of :math:`q \ll d` columns and :math:`M_k` symmetric (not necessarily definite):
  isotropic and diagonal components (:math:`q = 0`), and every posterior and noised form of them,
  which stay in the family. With :math:`N_k = W_k^\top \Delta_k^{-1} W_k` and
  :math:`P_k = M_k (I + N_k M_k)^{-1}`, the Woodbury identity and the matrix determinant lemma give

  .. math::
      \Sigma_k^{-1} &= \Delta_k^{-1} - \Delta_k^{-1} W_k P_k W_k^\top \Delta_k^{-1}, \\
      \log\det \Sigma_k &= \textstyle\sum_i \log \delta_{ki} + \log\det(I + M_k N_k),

  :math:`O(d q^2)` per component and level and :math:`O(d q)` per point; no :math:`d \times d` matrix
  is formed.

* :class:`LowRank`: factor analysers, :math:`\Sigma_k = F_k F_k^\top + \operatorname{diag}(\psi_k)`,
  the case :math:`M_k = I`, checked as given.

Both structures answer the same questions: ``quadratic_and_solve`` (:math:`r^\top \Sigma_k^{-1} r` and
:math:`\Sigma_k^{-1} r`), ``at_shared_means`` (the same for means shared by all points, without a
residual per component), ``log_det``, ``plus`` (:math:`\Sigma_k + s I`), ``condition`` (the
posterior given :math:`y = A x + \sigma n`), ``draw``, and the dense matrices on request.
"""

from __future__ import annotations

from functools import cached_property

import torch

from .._checks import finite


def _symmetric(m: torch.Tensor) -> torch.Tensor:
    return 0.5 * (m + m.transpose(-1, -2))


class FullCovariance:
    """K full covariance matrices (K, d, d), factorised on first use."""

    def __init__(self, matrices: torch.Tensor):
        self.matrices = matrices

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrices.shape[0], self.matrices.shape[-1]

    @property
    def nbytes(self) -> int:
        return 2 * self.matrices.numel() * self.matrices.element_size()

    def to(self, device=None, dtype=None) -> FullCovariance:
        return FullCovariance(self.matrices.to(device, dtype))

    @cached_property
    def _factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        chol, info = torch.linalg.cholesky_ex(self.matrices)
        if bool((info != 0).any()):
            raise ValueError("covariances must be symmetric positive-definite (Cholesky failed)")
        eye = torch.eye(chol.shape[-1], dtype=chol.dtype, device=chol.device).expand_as(chol)
        return chol, torch.linalg.solve_triangular(chol, eye, upper=False)  # L_k, L_k^{-1}

    @property
    def log_det(self) -> torch.Tensor:
        """:math:`\\log\\det \\Sigma_k = 2 \\sum_i \\log (L_k)_{ii}`, (K,)."""
        return 2 * torch.log(torch.diagonal(self._factors[0], dim1=-2, dim2=-1)).sum(-1)

    def quadratic_and_solve(self, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For residuals r (..., K, d): r^T Sigma_k^{-1} r (..., K) and Sigma_k^{-1} r (..., K, d),
        through z = L_k^{-1} r."""
        inv = self._factors[1]
        z = torch.einsum("ked,...kd->...ke", inv, r)
        return z.pow(2).sum(-1), torch.einsum("kde,...kd->...ke", inv, z)

    def at_shared_means(self, x: torch.Tensor, means: torch.Tensor):
        """For points x (..., d) and means (K, d) shared by all of them: the quadratic forms (..., K)
        and ``score(r)``, :math:`-\\sum_k r_k \\Sigma_k^{-1}(x - \\mu_k)` (..., d) for weights r (..., K);
        through :math:`L_k^{-1} x - L_k^{-1} \\mu_k`, one product of x with all K factors at once."""
        inv = self._factors[1]
        k, d, _ = inv.shape
        z = (x @ inv.reshape(k * d, d).T).reshape(*x.shape[:-1], k, d) - torch.einsum("ked,kd->ke", inv, means)

        def score(r: torch.Tensor) -> torch.Tensor:
            return -((r.unsqueeze(-1) * z).reshape(*x.shape[:-1], k * d) @ inv.reshape(k * d, d))

        return z.pow(2).sum(-1), score

    def precision(self) -> torch.Tensor:
        """The precision matrices :math:`\\Sigma_k^{-1} = L_k^{-\\top} L_k^{-1}`, (K, d, d)."""
        inv = self._factors[1]
        return inv.transpose(-1, -2) @ inv

    def plus(self, s: float) -> FullCovariance:
        eye = torch.eye(self.shape[1], dtype=self.matrices.dtype, device=self.matrices.device)
        return FullCovariance(self.matrices + s * eye)

    def dense(self) -> torch.Tensor:
        return self.matrices

    def diagonal(self) -> torch.Tensor:
        return torch.diagonal(self.matrices, dim1=-2, dim2=-1)

    def quadratic(self, u: torch.Tensor) -> torch.Tensor:
        """u^T Sigma_k u for the columns of u (d, L), shape (K, L)."""
        return torch.einsum("dl,kde,el->kl", u, self.matrices, u)

    def draw(self, eps: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """``L_{idx} eps`` for standard normal ``eps`` (..., d) and component indices ``idx`` (...):
        one product per component drawn, over its own rows, never the (..., d, d) gather."""
        chol, flat, rows_of = self._factors[0], eps.reshape(-1, eps.shape[-1]), idx.reshape(-1)
        out = torch.empty_like(flat)
        for k in torch.unique(rows_of).tolist():
            rows = rows_of == k
            out[rows] = flat[rows] @ chol[k].T
        return out.reshape(eps.shape)

    def condition(self, A: torch.Tensor | None, sigma: float):
        r"""The terms of the posterior given :math:`y = A x + \sigma n` (:math:`A = I` when None) that do
        not depend on :math:`y`: the evidence covariances :math:`G_k = A \Sigma_k A^\top + \sigma^2 I`,
        the gain :math:`r \mapsto \Sigma_k A^\top G_k^{-1} r` and the posterior covariances
        :math:`\Sigma_k - \Sigma_k A^\top G_k^{-1} A \Sigma_k`."""
        if A is None:
            A = torch.eye(self.shape[1], dtype=self.matrices.dtype, device=self.matrices.device)
        sat = self.matrices @ A.T  # (K, d, m)
        gram = _symmetric(A @ sat) + sigma**2 * torch.eye(A.shape[0], dtype=A.dtype, device=A.device)
        gain = torch.linalg.solve(gram, sat.transpose(-1, -2)).transpose(-1, -2)  # (K, d, m)
        posterior = FullCovariance(_symmetric(self.matrices - gain @ sat.transpose(-1, -2)))
        return FullCovariance(gram), lambda resid: torch.einsum("kdm,...km->...kd", gain, resid), posterior


class DiagonalPlusLowRank:
    r""":math:`\Sigma_k = \operatorname{diag}(\delta_k) + W_k M_k W_k^\top`: ``diagonal`` (K, d) > 0,
    ``factors`` (K, d, q) and ``middle`` (K, q, q) symmetric; no factors is the diagonal case."""

    def __init__(self, diagonal: torch.Tensor, factors: torch.Tensor | None = None,
                 middle: torch.Tensor | None = None):
        k, d = diagonal.shape
        if factors is None:
            factors = diagonal.new_zeros(k, d, 0)
            middle = diagonal.new_zeros(k, 0, 0)
        if not bool((diagonal > 0).all()):
            raise ValueError("covariances must be positive-definite: a variance is <= 0")
        self.delta, self.factors, self.middle = diagonal, factors, middle

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.delta.shape)

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.delta, self.factors, self.middle))

    def to(self, device=None, dtype=None) -> DiagonalPlusLowRank:
        return DiagonalPlusLowRank(*(t.to(device, dtype) for t in (self.delta, self.factors, self.middle)))

    @cached_property
    def _woodbury(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        r""":math:`\Delta^{-1} W` (K, d, q), :math:`P = (I + M N)^{-1} M` (K, q, q), :math:`\log\det\Sigma` (K,)."""
        scaled = self.factors / self.delta[..., None]
        inner = torch.eye(self.middle.shape[-1], dtype=self.delta.dtype, device=self.delta.device)
        inner = inner + self.middle @ (self.factors.transpose(-1, -2) @ scaled)
        sign, log_abs = torch.linalg.slogdet(inner)
        if not bool((sign > 0).all()):
            raise ValueError("covariances must be positive-definite (a determinant is <= 0)")
        p = _symmetric(torch.linalg.solve(inner, self.middle))
        return scaled, p, self.delta.log().sum(-1) + log_abs

    @property
    def log_det(self) -> torch.Tensor:
        return self._woodbury[2]

    def quadratic_and_solve(self, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """r^T Sigma_k^{-1} r (..., K) and Sigma_k^{-1} r (..., K, d) by the Woodbury identity."""
        scaled, p, _ = self._woodbury
        a = r / self.delta
        b = torch.einsum("kdq,...kd->...kq", self.factors, a)
        pb = torch.einsum("kqp,...kp->...kq", p, b)
        return (r * a).sum(-1) - (b * pb).sum(-1), a - torch.einsum("kdq,...kq->...kd", scaled, pb)

    def at_shared_means(self, x: torch.Tensor, means: torch.Tensor):
        r""":meth:`FullCovariance.at_shared_means` without a residual per component: with
        :math:`U_k = \Delta_k^{-1} W_k` and :math:`b_k = U_k^\top (x - \mu_k)`, the forms are
        :math:`x^2 \cdot \delta_k^{-1} - 2 x \cdot \mu_k \delta_k^{-1} + \mu_k^2 \cdot \delta_k^{-1} - b_k^\top P_k b_k`
        and :math:`\Sigma_k^{-1}(x - \mu_k) = \Delta_k^{-1}(x - \mu_k) - U_k P_k b_k`: products of x
        with (d, K) and (d, K q) matrices, never an (..., K, d) array."""
        scaled, p, _ = self._woodbury
        inv = 1 / self.delta
        k, d = inv.shape
        q = self.middle.shape[-1]
        weighted = means * inv
        quad = x.square() @ inv.T - 2 * (x @ weighted.T) + (means * weighted).sum(-1)
        u = scaled.permute(1, 0, 2).reshape(d, k * q)
        b = (x @ u).reshape(*x.shape[:-1], k, q) - torch.einsum("kdq,kd->kq", scaled, means)
        pb = torch.einsum("kqp,...kp->...kq", p, b)

        def score(r: torch.Tensor) -> torch.Tensor:
            low_rank = (r.unsqueeze(-1) * pb).reshape(*x.shape[:-1], k * q) @ u.T
            return -(x * (r @ inv) - r @ weighted - low_rank)

        return quad - (b * pb).sum(-1), score

    def plus(self, s: float) -> DiagonalPlusLowRank:
        return DiagonalPlusLowRank(self.delta + s, self.factors, self.middle)

    def dense(self) -> torch.Tensor:
        return torch.diag_embed(self.delta) + self.factors @ self.middle @ self.factors.transpose(-1, -2)

    def diagonal(self) -> torch.Tensor:
        return self.delta + torch.einsum("kdq,kqp,kdp->kd", self.factors, self.middle, self.factors)

    def quadratic(self, u: torch.Tensor) -> torch.Tensor:
        wu = torch.einsum("kdq,dl->kql", self.factors, u)
        return self.delta @ u.square() + (wu * (self.middle @ wu)).sum(1)

    def draw(self, eps: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        r"""A draw of :math:`\mathcal N(0, \Sigma_{idx})` from standard normal ``eps`` (..., d):
        :math:`\Delta^{1/2}\big(I + B (\sqrt{1 + \Lambda} - 1) B^\top\big) \epsilon`, the symmetric
        square root of :math:`I + \Delta^{-1/2} W M W^\top \Delta^{-1/2} = I + B \Lambda B^\top`,
        :math:`B = Q E` from :math:`\Delta^{-1/2} W = Q R` and :math:`R M R^\top = E \Lambda E^\top`."""
        root = self.delta.sqrt()
        q, r = torch.linalg.qr(self.factors / root[..., None])
        lam, e = torch.linalg.eigh(_symmetric(r @ self.middle @ r.transpose(-1, -2)))
        basis, stretch = q @ e, (1 + lam).clamp_min(0).sqrt() - 1  # (K, d, q), (K, q)
        coef = stretch[idx] * torch.einsum("...dq,...d->...q", basis[idx], eps)
        return root[idx] * (eps + torch.einsum("...dq,...q->...d", basis[idx], coef))

    def apply(self, v: torch.Tensor) -> torch.Tensor:
        """:math:`\\Sigma_k v_k` for vectors v (..., K, d)."""
        low = torch.einsum("kqp,kdp,...kd->...kq", self.middle, self.factors, v)
        return self.delta * v + torch.einsum("kdq,...kq->...kd", self.factors, low)

    def condition(self, A: torch.Tensor | None, sigma: float):
        r"""The posterior terms of :meth:`FullCovariance.condition`, staying in the family.

        When :math:`A` selects and scales coordinates (at most one nonzero in each row and each column:
        the identity, masks), :math:`A^\top A = \operatorname{diag}(a)` and the posterior's precision :math:`\Sigma_k^{-1} + A^\top A / \sigma^2 =
        B_k^{-1} - U_k P_k U_k^\top`, with :math:`B_k = \operatorname{diag}\big(\delta_k \sigma^2 /
        (\sigma^2 + a \delta_k)\big)`, :math:`U_k = \Delta_k^{-1} W_k` and :math:`V_k = B_k U_k`,
        inverts by Woodbury into

        .. math::
            C_k = B_k + V_k P_k (I - U_k^\top V_k P_k)^{-1} V_k^\top,

        still of rank :math:`q`; the evidence :math:`A \Sigma_k A^\top + \sigma^2 I =
        \operatorname{diag}(A^{\circ 2} \delta_k + \sigma^2) + (A W_k) M_k (A W_k)^\top` stays in the
        family in :math:`\mathbb R^m`, and the gain is :math:`r \mapsto C_k A^\top r / \sigma^2`.
        Any other :math:`A` (m, d): :math:`G_k = A \Sigma_k A^\top + \sigma^2 I` (m x m, dense), and the
        posterior :math:`\Sigma_k - S_k G_k^{-1} S_k^\top`, :math:`S_k = \Sigma_k A^\top`, is
        :math:`\Delta_k + [W_k, S_k] \operatorname{blockdiag}(M_k, -G_k^{-1}) [W_k, S_k]^\top`, of rank
        :math:`q + m`; where :math:`q + m \ge d` (a blur, :math:`m = d`) the low rank would be larger
        than the matrix, and the posterior is formed as full matrices."""
        if A is None or _scaled_selection(A):
            return self._condition_selection(A, sigma)
        aw = A @ self.factors  # (K, m, q)
        sat = self.delta[:, :, None] * A.T + self.factors @ (self.middle @ aw.transpose(-1, -2))  # (K, d, m)
        gram = _symmetric(A @ sat) + sigma**2 * torch.eye(A.shape[0], dtype=A.dtype, device=A.device)
        gram_inv = _symmetric(torch.cholesky_inverse(torch.linalg.cholesky(gram)))
        k, q, m = self.middle.shape[0], self.middle.shape[-1], A.shape[0]
        middle = self.delta.new_zeros(k, q + m, q + m)
        middle[:, :q, :q], middle[:, q:, q:] = self.middle, -gram_inv
        gain = sat @ gram_inv  # (K, d, m)
        if q + m >= A.shape[1]:
            posterior = FullCovariance(_symmetric(self.dense() - gain @ sat.transpose(-1, -2)))
            return FullCovariance(gram), lambda resid: torch.einsum("kdm,...km->...kd", gain, resid), posterior
        posterior = DiagonalPlusLowRank(self.delta, torch.cat([self.factors, sat], dim=-1), middle)
        return FullCovariance(gram), lambda resid: torch.einsum("kdm,...km->...kd", gain, resid), posterior

    def _condition_selection(self, A: torch.Tensor | None, sigma: float):
        """:meth:`condition` for A that selects and scales coordinates (None: the identity), in precision form."""
        scaled, p, _ = self._woodbury
        a = 1.0 if A is None else A.square().sum(0)
        beta = self.delta * sigma**2 / (sigma**2 + a * self.delta)
        bu = beta[..., None] * scaled
        eye = torch.eye(p.shape[-1], dtype=p.dtype, device=p.device)
        middle = _symmetric(torch.linalg.solve(eye - p @ (scaled.transpose(-1, -2) @ bu), p))
        posterior = DiagonalPlusLowRank(beta, bu, middle)
        if A is None:
            return self.plus(sigma**2), lambda resid: posterior.apply(resid) / sigma**2, posterior
        evidence = DiagonalPlusLowRank(self.delta @ A.square().T + sigma**2, A @ self.factors, self.middle)
        return evidence, lambda resid: posterior.apply(resid @ A) / sigma**2, posterior


def _scaled_selection(A: torch.Tensor) -> bool:
    """At most one nonzero in each row and each column of A: A^T A and A Delta A^T are diagonal."""
    nonzero = A != 0
    return bool((nonzero.sum(0) <= 1).all() and (nonzero.sum(1) <= 1).all())


class LowRank(DiagonalPlusLowRank):
    r"""Factor analysers, :math:`\Sigma_k = F_k F_k^\top + \operatorname{diag}(\psi_k)`: ``factors``
    :math:`F` (K, d, r) with :math:`r \le d` and ``diagonal`` :math:`\psi` (K, d) > 0. Every exact
    quantity goes through the Woodbury identity and the determinant lemma of
    :class:`DiagonalPlusLowRank` (with :math:`M_k = I`): :math:`O(K d r)` per point and
    :math:`O(K d r^2)` per level, never a :math:`d \times d` matrix."""

    def __init__(self, factors: torch.Tensor, diagonal: torch.Tensor):
        factors, diagonal = torch.as_tensor(factors), torch.as_tensor(diagonal)
        if factors.ndim != 3:
            raise ValueError(f"factors: expected shape (K, d, r), got {tuple(factors.shape)}")
        k, d, r = factors.shape
        if diagonal.shape != (k, d):
            raise ValueError(f"diagonal: expected shape ({k}, {d}) to match factors (K, d, r) = "
                             f"{tuple(factors.shape)}, got {tuple(diagonal.shape)}")
        if r > d:
            raise ValueError(f"factors: rank r = {r} is larger than the dimension d = {d}; use r <= d "
                             "(or full covariances)")
        finite("factors", factors)
        finite("diagonal", diagonal)
        if not bool((diagonal > 0).all()):
            raise ValueError(f"diagonal: every variance must be > 0, got minimum {float(diagonal.min()):.3g}")
        eye = torch.eye(r, dtype=factors.dtype, device=factors.device).expand(k, r, r)
        super().__init__(diagonal.to(factors.dtype), factors, eye.clone())

    def to(self, device=None, dtype=None) -> LowRank:
        return LowRank(self.factors.to(device, dtype), self.delta.to(device, dtype))


def as_covariance(covs, k: int, d: int, like: torch.Tensor) -> FullCovariance | DiagonalPlusLowRank:
    """The covariance of K components in R^d from a covariance object, full (K, d, d) matrices,
    diagonal (K, d) variances, isotropic (K,) variances or one float."""
    if isinstance(covs, (FullCovariance, DiagonalPlusLowRank)):  # LowRank among them
        if covs.shape != (k, d):
            raise ValueError(f"covs: expected {k} components in dimension {d}, got {covs.shape}")
        return covs.to(like.device, like.dtype)
    c = torch.as_tensor(covs, dtype=like.dtype, device=like.device)
    finite("covs", c)
    if c.ndim == 0 or c.shape == (k,):
        return DiagonalPlusLowRank(c.reshape(-1, 1).expand(k, d).clone())
    if c.shape == (k, d):
        return DiagonalPlusLowRank(c.clone())
    if c.shape != (k, d, d):
        raise ValueError(f"covs: expected a float, or shape ({k},), ({k}, {d}) or ({k}, {d}, {d}), "
                         f"got {tuple(c.shape)}")
    if not torch.allclose(c, c.transpose(-1, -2), rtol=1e-6, atol=1e-10):
        raise ValueError("covs: covariance matrices must be symmetric")
    return FullCovariance(c)
