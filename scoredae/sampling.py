r"""Langevin samplers: ULA, MALA, annealed Langevin and PnP-ULA, one Langevin step and one loop.

Every sampler here is a step function ``step(x, aux, t) -> (x, aux)`` built on the Langevin move

.. math::
    x \leftarrow x + \eta\, g(x) + \sqrt{2\eta}\, z, \qquad z \sim \mathcal N(0, I),

with the drift :math:`g` a score, plus the shared loop :func:`_run`, which owns burn-in, thinning,
the streaming (Welford) mean and variance, the recorded trajectory, the callback, the progress bar
and the divergence checks. Chains are the leading dimension of ``x0``; any trailing shape works
(points ``(B, d)`` or images ``(B, C, H, W)``). All work stays on the device of ``x0``.

Common keyword arguments of every sampler:

* ``generator``: the :class:`torch.Generator` of all draws (on the device of ``x0``);
* ``burn_in``: steps discarded before the statistics start (default 0);
* ``thinning``: after burn-in, every ``thinning``-th state enters the statistics (default 1);
* ``record_every``: keep the state every ``k`` steps in ``trajectory`` (None: no trajectory);
* ``callback``: ``callback(step, x)`` after every step;
* ``progress``: show a tqdm progress bar (off by default);
* ``max_norm``: divergence bound on the per-chain root-mean-square of the state (default
  :math:`10^6 (1 + \max_b \operatorname{rms}(x_{0,b}))`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

_CHECK_EVERY = 10  # steps between divergence checks (each costs one device-to-host sync)
_NORM_FACTOR = 1e6  # default max_norm, relative to 1 + the initial root-mean-square


class SamplerDivergedError(RuntimeError):
    """A chain left the finite range or its norm exceeded ``max_norm``."""


@dataclass
class SamplerResult:
    """What a sampler returns.

    :ivar samples: final states, the shape of ``x0``.
    :ivar mean: per-chain mean over the kept steps (after burn-in, thinned), the shape of ``x0``.
    :ivar var: per-chain variance (divisor ``n_kept``) over the kept steps, the shape of ``x0``.
    :ivar n_kept: number of kept steps per chain.
    :ivar acceptance_rate: MALA's fraction of accepted proposals over chains and steps; None otherwise.
    :ivar trajectory: ``(B, n_steps // record_every + 1, *S)``: ``x0``, then the state every
        ``record_every`` steps; None when not recorded.
    :ivar n_steps: number of steps run.
    """

    samples: torch.Tensor
    mean: torch.Tensor
    var: torch.Tensor
    n_kept: int
    acceptance_rate: float | None
    trajectory: torch.Tensor | None
    n_steps: int

    @property
    def pooled_mean(self) -> torch.Tensor:
        """Mean over chains and kept steps, shape ``x0.shape[1:]``."""
        return self.mean.mean(0)

    @property
    def pooled_var(self) -> torch.Tensor:
        """Variance over chains and kept steps (divisor ``B * n_kept``), shape ``x0.shape[1:]``:
        the mean within-chain variance plus the variance of the chain means."""
        return self.var.mean(0) + self.mean.var(0, correction=0)


def _check_positive(name: str, value, integer: bool = False) -> None:
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if not (ok and math.isfinite(value) and value > 0):
        kind = "a positive integer" if integer else "a finite number > 0"
        raise ValueError(f"{name}: expected {kind}, got {value!r}")


def _langevin_move(x: torch.Tensor, drift: torch.Tensor, eta: float, generator) -> torch.Tensor:
    r""":math:`x + \eta\, g + \sqrt{2\eta}\, z`, the Euler-Maruyama step of :math:`dX = g\,dt + \sqrt 2\, dW`."""
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return torch.add(x, drift, alpha=eta).add_(noise, alpha=math.sqrt(2 * eta))


def _check_inputs(x0, generator) -> None:
    if not isinstance(x0, torch.Tensor) or x0.ndim < 2 or not x0.is_floating_point():
        raise ValueError(f"x0: expected a floating tensor (chains, *shape), got {getattr(x0, 'shape', x0)!r}")
    if generator is not None and generator.device.type != x0.device.type:
        raise ValueError(f"generator: expected a torch.Generator on the device of x0 ({x0.device}), "
                         f"got one on {generator.device}")


def _rms_max(x: torch.Tensor) -> torch.Tensor:
    """The largest per-chain root-mean-square of x (B, *S), a 0-d tensor (NaN if any entry is NaN)."""
    return x.reshape(x.shape[0], -1).square().mean(1).sqrt().max()


def _run(step, x, aux, n_steps, *, burn_in=0, thinning=1, record_every=None, callback=None,
         progress=False, max_norm=None, hint=""):
    """The shared loop: ``step(x, aux, t)`` for t = 1..n_steps; returns (x, aux, stats, trajectory)."""
    _check_positive("n_steps", n_steps, integer=True)
    _check_positive("thinning", thinning, integer=True)
    if record_every is not None:
        _check_positive("record_every", record_every, integer=True)
    if not (isinstance(burn_in, int) and 0 <= burn_in < n_steps):
        raise ValueError(f"burn_in: expected an integer in [0, n_steps={n_steps}), got {burn_in!r}")
    if thinning > n_steps - burn_in:
        raise ValueError(f"thinning: expected at most n_steps - burn_in = {n_steps - burn_in} so that "
                         f"a step is kept, got {thinning}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback: expected a callable callback(step, x), got {type(callback).__name__}")
    bound = _NORM_FACTOR * (1 + float(_rms_max(x))) if max_norm is None else float(max_norm)
    if not bound > 0:
        raise ValueError(f"max_norm: expected a number > 0, got {max_norm!r}")
    trajectory = None
    if record_every is not None:
        trajectory = x.new_empty((x.shape[0], n_steps // record_every + 1, *x.shape[1:]))  # (B, R, *S)
        trajectory[:, 0] = x
    mean, m2, n_kept = torch.zeros_like(x), torch.zeros_like(x), 0
    for t in tqdm(range(1, n_steps + 1), disable=not progress, desc="Langevin"):
        x, aux = step(x, aux, t)
        if t > burn_in and (t - burn_in) % thinning == 0:  # Welford's update
            n_kept += 1
            delta = x - mean
            mean.add_(delta, alpha=1.0 / n_kept)
            m2.addcmul_(delta, x - mean)
        if trajectory is not None and t % record_every == 0:
            trajectory[:, t // record_every] = x
        if t % _CHECK_EVERY == 0 or t == n_steps:
            size = float(_rms_max(x))
            if not size <= bound:  # also catches NaN and inf
                raise SamplerDivergedError(
                    f"the chain diverged by step {t} (checked every {_CHECK_EVERY} steps): state "
                    f"root-mean-square {size:.3g} > max_norm={bound:.3g}; try a smaller step size{hint}"
                )
        if callback is not None:
            callback(t, x)
    return x, aux, (mean, m2 / n_kept, n_kept), trajectory


def _result(x, stats, trajectory, n_steps, acceptance_rate=None) -> SamplerResult:
    mean, var, n_kept = stats
    return SamplerResult(x, mean, var, n_kept, acceptance_rate, trajectory, n_steps)


@torch.no_grad()
def ula(score: Callable, x0: torch.Tensor, step_size: float, n_steps: int, *,
        generator: torch.Generator | None = None, **common) -> SamplerResult:
    r"""Unadjusted Langevin algorithm (Roberts & Tweedie 1996; Durmus & Moulines 2017):

    .. math::
        x_{k+1} = x_k + \eta\, \nabla \log \pi(x_k) + \sqrt{2\eta}\, z_k, \qquad z_k \sim \mathcal N(0, I),

    the Euler-Maruyama discretisation of :math:`dX_t = \nabla \log \pi(X_t)\,dt + \sqrt 2\, dW_t`,
    whose stationary law is :math:`\pi`. The noise must be :math:`\sqrt{2\eta}`: with
    :math:`\sqrt{\eta}` the same iteration discretises :math:`dX = \nabla \log \pi\,dt + dW`, whose
    stationary law is :math:`\propto \pi^2` (for a Gaussian: half the variance). The chain itself is
    biased by :math:`O(\eta)`: on :math:`\mathcal N(0, s^2)` its stationary variance is
    :math:`s^2 / (1 - \eta / (2 s^2))`.

    :param score: ``score(x) -> grad log pi(x)``, the shape of ``x``.
    :param x0: initial states ``(B, *S)``, one chain per row.
    :param step_size: :math:`\eta > 0`.
    :param n_steps: number of steps.
    """
    _check_positive("step_size", step_size)
    _check_inputs(x0, generator)

    def step(x, aux, t):
        return _langevin_move(x, score(x), step_size, generator), aux

    x, _, stats, traj = _run(step, x0, None, n_steps, hint=f" (step_size={step_size:g})", **common)
    return _result(x, stats, traj, n_steps)


def _log_q(to: torch.Tensor, frm: torch.Tensor, grad: torch.Tensor, eta: float) -> torch.Tensor:
    r"""Log proposal density up to a constant, :math:`-\lVert x' - x - \eta \nabla \log \pi(x)\rVert^2 / (4\eta)`, (B,)."""
    return -(to - frm - eta * grad).reshape(to.shape[0], -1).square().sum(1) / (4 * eta)


@torch.no_grad()
def mala(log_prob: Callable, score: Callable, x0: torch.Tensor, step_size: float, n_steps: int, *,
         generator: torch.Generator | None = None, **common) -> SamplerResult:
    r"""Metropolis-adjusted Langevin algorithm (Roberts & Tweedie 1996), per chain.

    Propose the Langevin move :math:`x' = x + \eta \nabla \log \pi(x) + \sqrt{2\eta}\, z` and accept
    it with probability

    .. math::
        \min\Big(1, \frac{\pi(x')\, q(x \mid x')}{\pi(x)\, q(x' \mid x)}\Big), \qquad
        q(x' \mid x) = \mathcal N\big(x'; x + \eta \nabla \log \pi(x), 2\eta I\big),

    so that :math:`\pi` is exactly stationary for every :math:`\eta`. ``acceptance_rate`` is the
    fraction of accepted proposals over all chains and steps.

    :param log_prob: ``log_prob(x) -> log pi(x)`` up to a constant, shape ``(B,)``.
    :param score: ``score(x) -> grad log pi(x)``, the shape of ``x``.
    """
    _check_positive("step_size", step_size)
    _check_inputs(x0, generator)
    log_p0 = log_prob(x0)
    if log_p0.shape != x0.shape[:1]:
        raise ValueError(f"log_prob: expected one value per chain, shape {tuple(x0.shape[:1])}, "
                         f"got {tuple(log_p0.shape)}")

    def step(x, aux, t):
        log_p, grad, accepted = aux
        prop = _langevin_move(x, grad, step_size, generator)
        log_p_prop, grad_prop = log_prob(prop), score(prop)
        log_ratio = log_p_prop - log_p + _log_q(x, prop, grad_prop, step_size) - _log_q(prop, x, grad, step_size)
        u = torch.rand(x.shape[0], generator=generator, dtype=x.dtype, device=x.device)
        accept = torch.log(u) < log_ratio  # (B,); a NaN ratio rejects
        rows = accept.reshape(-1, *([1] * (x.ndim - 1)))  # (B, 1, ..., 1)
        return torch.where(rows, prop, x), (
            torch.where(accept, log_p_prop, log_p), torch.where(rows, grad_prop, grad), accepted + accept)

    aux0 = (log_p0, score(x0), torch.zeros(x0.shape[0], dtype=torch.long, device=x0.device))
    x, aux, stats, traj = _run(step, x0, aux0, n_steps, hint=f" (step_size={step_size:g})", **common)
    rate = float(aux[2].sum()) / (x0.shape[0] * n_steps)
    return _result(x, stats, traj, n_steps, acceptance_rate=rate)


def geometric_sigmas(sigma_max: float, sigma_min: float, n: int) -> torch.Tensor:
    r"""The decreasing ladder :math:`\sigma_i = \sigma_\max (\sigma_\min / \sigma_\max)^{(i-1)/(n-1)}`,
    :math:`i = 1..n` (Song & Ermon 2019), float64 of shape ``(n,)``."""
    _check_positive("n", n, integer=True)
    _check_positive("sigma_min", sigma_min)
    if not (isinstance(sigma_max, (int, float)) and sigma_max > sigma_min and n >= 2):
        raise ValueError(f"expected sigma_max > sigma_min and n >= 2, got sigma_max={sigma_max!r}, "
                         f"sigma_min={sigma_min!r}, n={n!r}")
    return torch.logspace(math.log10(sigma_max), math.log10(sigma_min), n, dtype=torch.float64)


@torch.no_grad()
def annealed_langevin(score: Callable, x0: torch.Tensor, sigmas: Sequence[float], n_steps_each: int,
                      eps: float, *, final_denoise: bool = False, generator: torch.Generator | None = None,
                      **common) -> SamplerResult:
    r"""Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1).

    For each level :math:`i = 1..L` of the decreasing ``sigmas``, with
    :math:`\alpha_i = \epsilon\, \sigma_i^2 / \sigma_L^2`, run ``n_steps_each`` steps of

    .. math::
        x_t = x_{t-1} + \frac{\alpha_i}{2}\, s(x_{t-1}, \sigma_i) + \sqrt{\alpha_i}\, z_t,

    i.e. the Langevin move with :math:`\eta = \alpha_i / 2`. With ``final_denoise`` the returned
    ``samples`` are Tweedie's denoised :math:`x + \sigma_L^2 s(x, \sigma_L)` (the final denoising
    step of Jolicoeur-Martineau et al. 2021); ``mean``, ``var`` and ``trajectory`` are over
    the Langevin states, whose steps are numbered ``1 .. L * n_steps_each``.

    :param score: noise-conditional ``score(x, sigma) -> grad log p_sigma(x)``, sigma a float.
    """
    levels = [float(s) for s in torch.as_tensor(sigmas, dtype=torch.float64).reshape(-1)]
    if not levels or not all(s > 0 for s in levels) or any(a <= b for a, b in itertools.pairwise(levels)):
        raise ValueError(f"sigmas: expected a strictly decreasing sequence of positive levels, got {levels}")
    _check_positive("n_steps_each", n_steps_each, integer=True)
    _check_positive("eps", eps)
    _check_inputs(x0, generator)
    etas = [eps * s**2 / levels[-1] ** 2 / 2 for s in levels]  # alpha_i / 2

    def step(x, aux, t):
        i = (t - 1) // n_steps_each
        return _langevin_move(x, score(x, levels[i]), etas[i], generator), aux

    n_steps = len(levels) * n_steps_each
    x, _, stats, traj = _run(step, x0, None, n_steps, hint=f" (eps={eps:g})", **common)
    samples = x + levels[-1] ** 2 * score(x, levels[-1]) if final_denoise else x
    return _result(samples, stats, traj, n_steps)


def _linear_operator(forward, x0: torch.Tensor) -> tuple[Callable, Callable]:
    """(A, A_adjoint) from an (m, d) matrix, a deepinv LinearPhysics, or a pair of callables."""
    if isinstance(forward, torch.Tensor):
        d = math.prod(x0.shape[1:])
        if forward.ndim != 2 or forward.shape[1] != d:
            raise ValueError(f"forward: expected an (m, {d}) matrix for x0 of shape {tuple(x0.shape)}, "
                             f"got shape {tuple(forward.shape)}")
        A = forward.to(dtype=x0.dtype, device=x0.device)
        return (lambda x: x.reshape(x.shape[0], d) @ A.T,  # (B, d) @ (d, m) -> (B, m)
                lambda r: (r @ A).reshape(r.shape[0], *x0.shape[1:]))
    if isinstance(forward, (tuple, list)) and len(forward) == 2 and all(map(callable, forward)):
        return tuple(forward)
    if callable(getattr(forward, "A", None)) and callable(getattr(forward, "A_adjoint", None)):
        return forward.A, forward.A_adjoint
    raise TypeError("forward: expected an (m, d) tensor, a deepinv.physics.LinearPhysics or a pair "
                    f"(A, A_adjoint) of callables, got {type(forward).__name__}")


@torch.no_grad()
def posterior_langevin(prior_score: Callable, y: torch.Tensor, forward, noise_sigma: float,
                       x0: torch.Tensor, step_size: float, n_steps: int, *, prior_sigma: float | None = None,
                       alpha: float = 1.0, clip: tuple[float, float] | None = None,
                       generator: torch.Generator | None = None, **common) -> SamplerResult:
    r"""PnP-ULA (Laumont et al. 2022) for :math:`y = A x + \sigma_y n`:

    .. math::
        x_{k+1} = \Pi_{[a, b]}\Big(x_k + \eta\Big[\frac{A^\top (y - A x_k)}{\sigma_y^2}
        + \alpha\, s(x_k)\Big] + \sqrt{2\eta}\, z_k\Big),

    the Langevin move on :math:`\log p(y \mid x) + \alpha \log p(x)`, where :math:`s` is
    ``prior_score(x, prior_sigma)`` (the score of the smoothed prior :math:`p_{\sigma}`, e.g. a
    :class:`~scoredae.score.TweedieScore`) when ``prior_sigma`` is given, else ``prior_score(x)``.
    :math:`\Pi_{[a,b]}` clamps to the box ``clip`` (the projected variant of
    :class:`deepinv.sampling.ULA`); no projection when None.

    :param y: observations, the shape of ``A(x0)`` or broadcasting to it (one ``y`` for all chains).
    :param forward: an ``(m, d)`` matrix (``x`` flattened to ``(B, d)``), a
        :class:`deepinv.physics.LinearPhysics`, or a pair ``(A, A_adjoint)`` of callables.
    :param noise_sigma: :math:`\sigma_y > 0`.
    """
    _check_positive("step_size", step_size)
    _check_positive("noise_sigma", noise_sigma)
    _check_inputs(x0, generator)
    A, A_adjoint = _linear_operator(forward, x0)
    ax0 = A(x0)
    try:
        broadcasts = torch.broadcast_shapes(y.shape, ax0.shape) == ax0.shape
    except RuntimeError:
        broadcasts = False
    if not broadcasts:
        raise ValueError(f"y: expected the shape of forward(x0), {tuple(ax0.shape)} (or one broadcasting "
                         f"to it), got {tuple(y.shape)}")
    if clip is not None and not clip[0] < clip[1]:
        raise ValueError(f"clip: expected (a, b) with a < b, got {clip!r}")
    prior = (lambda x: prior_score(x)) if prior_sigma is None else (lambda x: prior_score(x, prior_sigma))
    y = y.to(x0)

    def step(x, aux, t):
        drift = A_adjoint(y - A(x)) / noise_sigma**2 + alpha * prior(x)
        x = _langevin_move(x, drift, step_size, generator)
        return (x if clip is None else x.clamp_(*clip)), aux

    x, _, stats, traj = _run(step, x0, None, n_steps, hint=f" (step_size={step_size:g})", **common)
    return _result(x, stats, traj, n_steps)
