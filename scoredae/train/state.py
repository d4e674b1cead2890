"""What a training run carries across checkpoints and signals: the EMA of the weights, the
optimizer state as named tensors, and the stop-after-this-step answer to SIGINT and SIGTERM."""

from __future__ import annotations

import copy
import signal
import threading

import torch

from ..nets.checkpoints import load_weights


class EMA:
    r"""Exponential moving average :math:`\bar\theta \leftarrow \beta_t \bar\theta + (1 - \beta_t)\theta`
    with the warm-up :math:`\beta_t = \min(\beta, (1 + t) / (10 + t))` at update :math:`t`, so the
    initial weights are forgotten early (as in TensorFlow's ExponentialMovingAverage ``num_updates``)."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay
        pairs = list(zip(self.model.state_dict().values(), model.state_dict().values()))
        self._float = ([a for a, _ in pairs if a.is_floating_point()], [p for a, p in pairs if a.is_floating_point()])
        self._other = [(a, p) for a, p in pairs if not a.is_floating_point()]

    @torch.no_grad()
    def update(self, t: int) -> None:
        beta = min(self.decay, (1 + t) / (10 + t))
        torch._foreach_lerp_(*self._float, 1 - beta)
        for avg, p in self._other:
            avg.copy_(p)


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


def train_state(optimizer, ema: EMA | None) -> dict[str, torch.Tensor]:
    """Optimizer moments and EMA weights as flat named tensors for the checkpoint."""
    out = {}
    for idx, state in optimizer.state_dict()["state"].items():
        for k, v in state.items():
            out[f"optim/{idx}/{k}"] = torch.as_tensor(v)
    if ema is not None:
        out.update({f"ema/{k}": v for k, v in ema.model.state_dict().items()})
    return out


def restore_state(extra: dict[str, torch.Tensor], optimizer, ema: EMA | None, source: str) -> None:
    state: dict[int, dict] = {}
    for key, v in extra.items():
        if key.startswith("optim/"):
            _, idx, k = key.split("/")
            state.setdefault(int(idx), {})[k] = v
    optimizer.load_state_dict({"state": state, "param_groups": optimizer.state_dict()["param_groups"]})
    if ema is not None:
        load_weights(ema.model, {k[4:]: v for k, v in extra.items() if k.startswith("ema/")}, source)
