r"""The loop every sampler shares, the Langevin move, and what a sampler returns.

Every sampler of :mod:`scoredae.sampling` is a step function ``step(x, state, t) -> (x, state)``; the
Langevin family is built on the move

.. math::
    x \leftarrow x + \eta\, g(x) + \sqrt{2\eta}\, z, \qquad z \sim \mathcal N(0, I),

with the drift :math:`g` a score, plus the shared loop :func:`run_chain`, which owns burn-in, thinning,
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

Every ``10`` steps and at the last step the loop reads the largest per-chain root-mean-square
:math:`r_t` of the state back to the host (its only synchronisation), with the same size at the
middle step :math:`m` of the window since the previous check :math:`c`, and stops with a
:class:`SamplerDivergedError` naming the step when the state is NaN or inf, when :math:`r_t` is
above ``max_norm``, or when the chain grows geometrically, as an unstable linear recursion does:
by more than 20% a step over *each* half of the window,
:math:`(1 + r_m) / (1 + r_c) > 1.2^{m - c}` and :math:`(1 + r_t) / (1 + r_m) > 1.2^{t - m}`. A
chain that approaches a wider stationary law grows too, but ever more slowly (diffusively), so its
second half grows far less than its first; an exploding chain is reported by the end of the run at
the latest, however few its steps.

A sampler tells the loop about itself with a :class:`LoopSpec` (its name, what to suggest when it
diverges, the level of each step, an early stop, whether it is a stationary chain); the user's
options above are keyword-only parameters of every sampler's own signature, which it hands to
:func:`run_chain`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from .._checks import finite, positive, positive_int
from ..rng import randn

_CHECK_EVERY = 10  # steps between divergence checks (each costs one device-to-host sync)
_NORM_FACTOR = 1e6  # default max_norm, relative to 1 + the initial root-mean-square
_STEP_GROWTH = 1.2  # growth per step of 1 + the root-mean-square that marks geometric divergence


class SamplerDivergedError(RuntimeError):
    """A chain left the finite range, its norm exceeded ``max_norm``, or it grew geometrically."""


@dataclass(frozen=True)
class LoopSpec:
    """What a sampler tells :func:`run_chain` about itself (none of it is the user's to set).

    :ivar desc: the name on the progress bar.
    :ivar hint: appended to the divergence message (e.g. the step size to lower).
    :ivar level_of: ``level_of(t)``, the noise level of step ``t``, shown on the progress bar.
    :ivar size_of: ``size_of(x, state)``, the 0-d size the divergence checks read (default: the
        largest per-chain root-mean-square of ``x``).
    :ivar until: ``until(x, state)``, a 0-d boolean tensor read with the divergence checks; True
        ends the loop early (``n_steps`` is then a cap).
    :ivar stationary: whether the chain has a stationary law whose moments the streaming mean and
        variance estimate; a transport path (an ODE, a coarse-to-fine schedule) has none, and its
        result carries no ``mean`` or ``var``.
    """

    desc: str
    hint: str = ""
    level_of: Callable[[int], float] | None = None
    size_of: Callable | None = None
    until: Callable | None = None
    stationary: bool = True


@dataclass
class SamplerResult:
    """What a sampler returns.

    :ivar samples: final states, the shape of ``x0``.
    :ivar mean: per-chain mean over the kept steps (after burn-in, thinned), the shape of ``x0``;
        None for a sampler that is not a stationary chain.
    :ivar var: per-chain variance (divisor ``n_kept``) over the kept steps, the shape of ``x0``;
        None likewise.
    :ivar n_kept: number of kept steps per chain (0 when not stationary).
    :ivar trajectory: ``(B, n_steps // record_every + 1, *S)``: ``x0``, then the state every
        ``record_every`` steps; None when not recorded.
    :ivar n_steps: number of steps run.
    :ivar state: the sampler's final state beside ``x`` (e.g. :class:`~scoredae.sampling.langevin.MALAState`),
        None for samplers that carry none.
    """

    samples: torch.Tensor
    mean: torch.Tensor | None
    var: torch.Tensor | None
    n_kept: int
    trajectory: torch.Tensor | None
    n_steps: int
    state: Any = None

    @property
    def pooled_mean(self) -> torch.Tensor:
        """Mean over chains and kept steps, shape ``x0.shape[1:]``."""
        return self._statistics()[0].mean(0)

    @property
    def pooled_var(self) -> torch.Tensor:
        """Variance over chains and kept steps (divisor ``B * n_kept``), shape ``x0.shape[1:]``:
        the mean within-chain variance plus the variance of the chain means."""
        mean, var = self._statistics()
        return var.mean(0) + mean.var(0, correction=0)

    def _statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mean is None:
            raise ValueError("this sampler is not a stationary chain: it keeps no mean or variance; use the samples")
        return self.mean, self.var


def langevin_move(x: torch.Tensor, drift: torch.Tensor, eta: float, generator) -> torch.Tensor:
    r""":math:`x + \eta\, g + \sqrt{2\eta}\, z`, the Euler-Maruyama step of :math:`dX = g\,dt + \sqrt 2\, dW`."""
    if drift.shape != x.shape:  # a score of another shape would broadcast silently
        raise ValueError(f"score: expected an output of the shape of x, {tuple(x.shape)}, got {tuple(drift.shape)}")
    noise = randn(x.shape, generator, dtype=x.dtype, device=x.device)
    return torch.add(x, drift, alpha=eta).add_(noise, alpha=math.sqrt(2 * eta))


def check_chain_inputs(x0, generator, *, name: str = "x0") -> None:
    """Refuse initial states (the argument ``name``) that are not a finite floating tensor with at
    least one chain, and a generator on another device."""
    if not isinstance(x0, torch.Tensor) or x0.ndim < 2 or not x0.is_floating_point():
        raise ValueError(f"{name}: expected a floating tensor (chains, *shape), got {getattr(x0, 'shape', x0)!r}")
    if x0.shape[0] == 0 or x0[0].numel() == 0:
        raise ValueError(f"{name}: expected at least one chain of at least one entry, got shape {tuple(x0.shape)}")
    finite(name, x0)
    if generator is not None and generator.device.type != x0.device.type:
        raise ValueError(f"generator: expected a torch.Generator on the device of {name} ({x0.device}), "
                         f"got one on {generator.device}")


def rms_max(x: torch.Tensor) -> torch.Tensor:
    """The largest per-chain root-mean-square of ``x`` of shape ``(B, *S)``, a 0-d tensor (NaN if
    any entry is NaN)."""
    return x.reshape(x.shape[0], -1).square().mean(1).sqrt().max()


def run_chain(step, x, state, n_steps: int, spec: LoopSpec, *, burn_in: int = 0, thinning: int = 1,
              record_every: int | None = None, callback=None, progress: bool = False,
              max_norm: float | None = None) -> SamplerResult:
    """The shared loop: ``x, state = step(x, state, t)`` for t = 1..n_steps, with the statistics,
    trajectory, callback, progress bar and divergence checks of the module docstring; ``spec``
    is the sampler's :class:`LoopSpec`, the keyword arguments the user's options."""
    _check_options(n_steps, spec, burn_in, thinning, record_every, callback)
    size_of = spec.size_of or (lambda x, state: rms_max(x))
    checked = float(size_of(x, state))  # the size at the previous check
    bound = _NORM_FACTOR * (1 + checked) if max_norm is None else positive("max_norm", max_norm)
    trajectory = None
    if record_every is not None:
        trajectory = x.new_empty((x.shape[0], n_steps // record_every + 1, *x.shape[1:]))  # (B, R, *S)
        trajectory[:, 0] = x
    welford = (torch.zeros_like(x), torch.zeros_like(x)) if spec.stationary else None  # mean, sum of squares
    n_kept, checked_at, middle = 0, 0, None
    bar = tqdm(range(1, n_steps + 1), disable=not progress, desc=spec.desc)
    t = 0
    for t in bar:
        if spec.level_of is not None and progress:
            bar.set_postfix(sigma=f"{spec.level_of(t):.3g}", refresh=False)
        x, state = step(x, state, t)
        if welford is not None and t > burn_in and (t - burn_in) % thinning == 0:  # Welford's update
            n_kept += 1
            mean, m2 = welford
            delta = x - mean
            mean.add_(delta, alpha=1.0 / n_kept)
            m2.addcmul_(delta, x - mean)
        if trajectory is not None and t % record_every == 0:
            trajectory[:, t // record_every] = x
        window_end = min(checked_at + _CHECK_EVERY, n_steps)
        if t == checked_at + (window_end - checked_at) // 2:
            middle = (t, size_of(x, state))  # read with the check, at the end of the window
        stop = False
        if t == window_end:
            now = size_of(x, state)
            size, at_middle = (float(now), None) if middle is None else torch.stack([now, middle[1]]).tolist()
            _check_growth(t, size, checked, checked_at, None if middle is None else (middle[0], at_middle),
                          bound, spec.hint)
            checked, checked_at, middle = size, t, None
            stop = spec.until is not None and bool(spec.until(x, state))
        if callback is not None:
            callback(t, x)
        if stop:
            break
    if trajectory is not None:
        trajectory = trajectory[:, : t // record_every + 1]
    stats = (welford[0], welford[1] / n_kept) if welford is not None else (None, None)
    return SamplerResult(x, *stats, n_kept, trajectory, t, state)


def _check_options(n_steps: int, spec: LoopSpec, burn_in: int, thinning: int, record_every, callback) -> None:
    """Refuse loop options out of range, naming them (a transport path keeps no statistics)."""
    positive_int("n_steps", n_steps)
    positive_int("thinning", thinning)
    if record_every is not None:
        positive_int("record_every", record_every)
    if not (isinstance(burn_in, int) and 0 <= burn_in < n_steps):
        raise ValueError(f"burn_in: expected an integer in [0, n_steps={n_steps}), got {burn_in!r}")
    if thinning > n_steps - burn_in:
        raise ValueError(f"thinning: expected at most n_steps - burn_in = {n_steps - burn_in} so that "
                         f"a step is kept, got {thinning}")
    if not spec.stationary and (burn_in or thinning != 1):
        raise ValueError(f"burn_in, thinning: {spec.desc} is not a stationary chain and keeps no statistics; "
                         f"leave them at 0 and 1")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback: expected a callable callback(step, x), got {type(callback).__name__}")


def _check_growth(t: int, size: float, checked: float, checked_at: int, middle: tuple[int, float] | None,
                  bound: float, hint: str) -> None:
    """Raise :class:`SamplerDivergedError` at step ``t`` by the rules of the module docstring, from the
    size now, at the previous check and at the ``(step, size)`` in the middle of the window."""
    if not math.isfinite(size):
        why = "the state became NaN or inf"
    elif size > bound:
        why = f"state root-mean-square {size:.3g} > max_norm={bound:.3g}"
    elif middle is not None and (1 + middle[1]) > _STEP_GROWTH ** (middle[0] - checked_at) * (1 + checked) \
            and (1 + size) > _STEP_GROWTH ** (t - middle[0]) * (1 + middle[1]):
        why = (f"state root-mean-square grew geometrically, from {checked:.3g} at step {checked_at} to "
               f"{middle[1]:.3g} at step {middle[0]} and {size:.3g} at step {t}")
    else:
        return
    raise SamplerDivergedError(f"the chain diverged by step {t} (checked every {_CHECK_EVERY} steps): {why}; "
                               f"try a smaller step size{hint}")
