r"""The loop every sampler shares, the Langevin move, and what a sampler returns.

Every sampler of :mod:`scoredae.sampling` is a step function ``step(x, aux, t) -> (x, aux)`` built on the Langevin move

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

Every ``10`` steps and at the last step the loop reads the largest per-chain root-mean-square of
the state back to the host (its only synchronisation) and stops with a
:class:`SamplerDivergedError` naming the step when it is NaN or inf, above ``max_norm``, or more
than ``100`` times (1 + its value at the previous check): an exploding chain is reported by the end
of the run at the latest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from .._checks import finite, positive, positive_int
from ..rng import randn

_CHECK_EVERY = 10  # steps between divergence checks (each costs one device-to-host sync)
_NORM_FACTOR = 1e6  # default max_norm, relative to 1 + the initial root-mean-square
_GROWTH = 100.0  # largest growth of the root-mean-square between two checks, relative to 1 + the earlier


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

    @classmethod
    def from_run(cls, x, stats, trajectory, n_steps, acceptance_rate=None) -> SamplerResult:
        """The result of :func:`run_chain`'s ``(x, stats, trajectory)``."""
        mean, var, n_kept = stats
        return cls(x, mean, var, n_kept, acceptance_rate, trajectory, n_steps)

    @property
    def pooled_mean(self) -> torch.Tensor:
        """Mean over chains and kept steps, shape ``x0.shape[1:]``."""
        return self.mean.mean(0)

    @property
    def pooled_var(self) -> torch.Tensor:
        """Variance over chains and kept steps (divisor ``B * n_kept``), shape ``x0.shape[1:]``:
        the mean within-chain variance plus the variance of the chain means."""
        return self.var.mean(0) + self.mean.var(0, correction=0)


def langevin_move(x: torch.Tensor, drift: torch.Tensor, eta: float, generator) -> torch.Tensor:
    r""":math:`x + \eta\, g + \sqrt{2\eta}\, z`, the Euler-Maruyama step of :math:`dX = g\,dt + \sqrt 2\, dW`."""
    if drift.shape != x.shape:  # a score of another shape would broadcast silently
        raise ValueError(f"score: expected an output of the shape of x, {tuple(x.shape)}, got {tuple(drift.shape)}")
    noise = randn(x.shape, generator, dtype=x.dtype, device=x.device)
    return torch.add(x, drift, alpha=eta).add_(noise, alpha=math.sqrt(2 * eta))


def check_chain_inputs(x0, generator) -> None:
    """Refuse initial states that are not a finite floating tensor with at least one chain, and a
    generator on another device."""
    if not isinstance(x0, torch.Tensor) or x0.ndim < 2 or not x0.is_floating_point():
        raise ValueError(f"x0: expected a floating tensor (chains, *shape), got {getattr(x0, 'shape', x0)!r}")
    if x0.shape[0] == 0 or x0[0].numel() == 0:
        raise ValueError(f"x0: expected at least one chain of at least one entry, got shape {tuple(x0.shape)}")
    finite("x0", x0)
    if generator is not None and generator.device.type != x0.device.type:
        raise ValueError(f"generator: expected a torch.Generator on the device of x0 ({x0.device}), "
                         f"got one on {generator.device}")


def rms_max(x: torch.Tensor) -> torch.Tensor:
    """The largest per-chain root-mean-square of ``x`` of shape ``(B, *S)``, a 0-d tensor (NaN if
    any entry is NaN)."""
    return x.reshape(x.shape[0], -1).square().mean(1).sqrt().max()


def run_chain(step, x, aux, n_steps, *, burn_in=0, thinning=1, record_every=None, callback=None,
              progress=False, max_norm=None, hint="", size_of=None, desc="Langevin", level_of=None, until=None):
    """The shared loop: ``step(x, aux, t)`` for t = 1..n_steps; returns (x, aux, stats, trajectory).

    ``size_of(x, aux)`` is the 0-d size the divergence checks read (default: the largest per-chain
    root-mean-square of ``x``); ``level_of(t)``, when given, is shown on the progress bar;
    ``until(x, aux)``, a 0-d boolean tensor read with the divergence checks, ends the loop early
    when True (``n_steps`` is then a cap, and the step function counts the steps it ran).
    """
    positive_int("n_steps", n_steps)
    positive_int("thinning", thinning)
    if record_every is not None:
        positive_int("record_every", record_every)
    if not (isinstance(burn_in, int) and 0 <= burn_in < n_steps):
        raise ValueError(f"burn_in: expected an integer in [0, n_steps={n_steps}), got {burn_in!r}")
    if thinning > n_steps - burn_in:
        raise ValueError(f"thinning: expected at most n_steps - burn_in = {n_steps - burn_in} so that "
                         f"a step is kept, got {thinning}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback: expected a callable callback(step, x), got {type(callback).__name__}")
    previous = float(rms_max(x))
    bound = _NORM_FACTOR * (1 + previous) if max_norm is None else positive("max_norm", max_norm)
    size_of = size_of or (lambda x, aux: rms_max(x))
    trajectory = None
    if record_every is not None:
        trajectory = x.new_empty((x.shape[0], n_steps // record_every + 1, *x.shape[1:]))  # (B, R, *S)
        trajectory[:, 0] = x
    mean, m2, n_kept = torch.zeros_like(x), torch.zeros_like(x), 0
    bar = tqdm(range(1, n_steps + 1), disable=not progress, desc=desc)
    for t in bar:
        if level_of is not None and progress:
            bar.set_postfix(sigma=f"{level_of(t):.3g}", refresh=False)
        x, aux = step(x, aux, t)
        if t > burn_in and (t - burn_in) % thinning == 0:  # Welford's update
            n_kept += 1
            delta = x - mean
            mean.add_(delta, alpha=1.0 / n_kept)
            m2.addcmul_(delta, x - mean)
        if trajectory is not None and t % record_every == 0:
            trajectory[:, t // record_every] = x
        if t % _CHECK_EVERY == 0 or t == n_steps:
            size = float(size_of(x, aux))
            if not math.isfinite(size):
                why = "the state became NaN or inf"
            elif size > bound:
                why = f"state root-mean-square {size:.3g} > max_norm={bound:.3g}"
            elif size > _GROWTH * (1 + previous):
                why = f"state root-mean-square grew from {previous:.3g} to {size:.3g} in {_CHECK_EVERY} steps or fewer"
            else:
                why, previous = None, size
            if why:
                raise SamplerDivergedError(f"the chain diverged by step {t} (checked every {_CHECK_EVERY} "
                                           f"steps): {why}; try a smaller step size{hint}")
        if callback is not None:
            callback(t, x)
        if until is not None and (t % _CHECK_EVERY == 0 or t == n_steps) and bool(until(x, aux)):
            break
    return x, aux, (mean, m2 / n_kept, n_kept), trajectory
