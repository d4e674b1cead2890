"""What a training run carries across checkpoints and signals: the EMA of the weights, the
optimizer state as named tensors, and the stop-after-this-step answer to SIGINT and SIGTERM."""

from __future__ import annotations

import copy
import signal
import threading

import numpy as np
import torch

from ..nets.checkpoints import load_weights


class EMA:
    r"""Exponential moving average :math:`\bar\theta_t = \beta_t \bar\theta_{t-1} + (1 - \beta_t)\theta_t`
    of the weights, with one of two rules for :math:`\beta_t` at update :math:`t = 0, 1, \dots`:

    * ``decay=beta``: :math:`\beta_t = \min(\beta, (1 + t) / (10 + t))`, so the initial weights are
      forgotten early (TensorFlow's ExponentialMovingAverage with ``num_updates``);
    * ``std=s``: the power-function EMA of Karras et al. 2024 (EDM2, eq. 127),
      :math:`\beta_t = (1 - 1/(t + 1))^{\gamma + 1}`, which averages the whole run with weights
      :math:`\propto \tau^\gamma` over the steps :math:`\tau \le t`; :math:`\gamma` is set by the
      profile's width relative to its length, :math:`s = \sqrt{(\gamma+1) / ((\gamma+2)^2 (\gamma+3))}`
      (their eq. 123; :func:`power_exponent`). Snapshots of such averages can be recombined into an
      average of another width after training (:mod:`scoredae.train.posthoc`).
    """

    def __init__(self, model: torch.nn.Module, decay: float | None = None, *, std: float | None = None):
        if (decay is None) == (std is None):
            raise ValueError("EMA: give exactly one of decay or std")
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay, self.std = decay, std
        self._exponent = power_exponent(std) if std is not None else None
        pairs = list(zip(self.model.state_dict().values(), model.state_dict().values()))
        self._float = ([a for a, _ in pairs if a.is_floating_point()], [p for a, p in pairs if a.is_floating_point()])
        self._other = [(a, p) for a, p in pairs if not a.is_floating_point()]

    def beta(self, t: int) -> float:
        if self._exponent is not None:
            return (1 - 1 / (t + 1)) ** (self._exponent + 1)
        return min(self.decay, (1 + t) / (10 + t))

    @torch.no_grad()
    def update(self, t: int) -> None:
        torch._foreach_lerp_(*self._float, 1 - self.beta(t))
        for avg, p in self._other:
            avg.copy_(p)


def power_exponent(std: float) -> float:
    r"""The exponent :math:`\gamma` of a power-function EMA of relative width ``std``: the real root of
    :math:`(\gamma+1) / ((\gamma+2)^2(\gamma+3)) = s^2` (EDM2, eqs. 123 and 126), in (0, inf) for
    ``std`` in (0, 0.2887)."""
    if not 0 < std < 12 ** -0.5:
        raise ValueError(f"std: expected a relative EMA width in (0, {12 ** -0.5:.4f}), got {std}")
    roots = np.roots([1.0, 7.0, 16.0 - std**-2, 12.0 - std**-2])  # the cubic of eq. 126
    return float(roots.real.max())


class StopOnSignal:
    """While active (in the main thread), SIGINT and SIGTERM ask the loop to stop after the current
    step instead of killing it mid-step; a second signal stops at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.received: str | None = None
        self._previous = {}

    def _handle(self, signum, frame):
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)


def train_state(optimizer, averages: dict[str, EMA]) -> dict[str, torch.Tensor]:
    """Optimizer moments and the weights of each moving average (by name) as flat named tensors."""
    out = {}
    for idx, state in optimizer.state_dict()["state"].items():
        for k, v in state.items():
            out[f"optim/{idx}/{k}"] = torch.as_tensor(v)
    for name, avg in averages.items():
        out.update({f"{name}/{k}": v for k, v in avg.model.state_dict().items()})
    return out


def restore_state(extra: dict[str, torch.Tensor], optimizer, averages: dict[str, EMA], source: str) -> None:
    state: dict[int, dict] = {}
    for key, v in extra.items():
        if key.startswith("optim/"):
            _, idx, k = key.split("/")
            state.setdefault(int(idx), {})[k] = v
    optimizer.load_state_dict({"state": state, "param_groups": optimizer.state_dict()["param_groups"]})
    for name, avg in averages.items():
        prefix = name + "/"
        load_weights(avg.model, {k[len(prefix):]: v for k, v in extra.items() if k.startswith(prefix)}, source)
