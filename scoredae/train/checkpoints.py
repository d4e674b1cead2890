"""What a training run writes under its folder, and how a run continues from it.

* ``last``: the weights with the optimizer and moving-average states, to resume from;
* ``model``: the weights to use (the EMA when there is one), with the same metadata;
* ``snapshots/phema-<std>-<step>``: the power-function EMAs at a step, for the post-hoc EMA of
  :mod:`scoredae.train.posthoc`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..nets.checkpoints import as_json, load_into, save_checkpoint
from .state import EMA, restore_state, train_state

log = logging.getLogger(__name__)

#: what a resumed run must share with the run it continues (the budget may change)
SAME_ON_RESUME = ("batch_size", "lr", "grad_clip", "ema", "seed", "amp", "lr_schedule", "warmup_steps",
                  "lr_ref_steps", "phema")


def moving_averages(model: torch.nn.Module, config) -> dict[str, EMA]:
    """The moving averages of a run by checkpoint name: ``ema`` and one ``phema-<std>`` per profile
    of ``config.phema``."""
    averages = {"ema": EMA(model, config.ema)} if config.ema else {}
    averages.update({f"phema-{s:.3f}": EMA(model, std=s) for s in config.phema})
    return averages


class RunFolder:
    """The checkpoints of a run under ``out``: ``model`` is trained, ``evaluated`` is the weights to
    use. Every process reads them; only the one that ``writes`` (rank 0) writes, and none when ``out``
    is None."""

    def __init__(self, out, model, evaluated, optimizer, averages: dict[str, EMA], metadata: dict, *,
                 writes: bool = True):
        self.out = Path(out) if out is not None else None
        self.last = self.out / "last" if self.out is not None else None
        self.writes = writes and self.out is not None
        self.model, self.evaluated, self.optimizer, self.averages = model, evaluated, optimizer, averages
        self.metadata = metadata

    def save(self, **state) -> dict:
        """Write ``last`` and ``model`` with ``state`` (step, elapsed time, ...) in their metadata."""
        meta = {**self.metadata, **state, "version": _version()}
        if self.writes:
            save_checkpoint(self.last, self.model, meta, train_state(self.optimizer, self.averages))
            save_checkpoint(self.out / "model", self.evaluated, meta)
        return meta

    def snapshot(self, step: int, elapsed: float) -> None:
        """Write each power-function EMA as ``snapshots/<name>-<step>``."""
        if not self.writes:
            return
        for name, avg in self.averages.items():
            if avg.std is not None:
                meta = {**self.metadata, "step": step, "elapsed_s": elapsed, "phema_std": avg.std, "version": _version()}
                save_checkpoint(self.out / "snapshots" / f"{name}-{step:07d}", avg.model, meta)

    def resume(self, config) -> dict:
        """Load ``out/last`` into the model, optimizer and averages and return its metadata; refuse a
        missing checkpoint, or one trained with another model or other :data:`SAME_ON_RESUME` settings."""
        last = self.last
        if last is None:
            raise ValueError("resume: expected out, the folder of the run to continue, got None")
        if not last.with_suffix(".json").exists():
            raise ValueError(f"resume: there is no checkpoint {last}.json to continue; train without resume to start afresh")

        def same_settings(meta: dict) -> None:
            before = {**{f"model {k}": v for k, v in meta["config"].items()},
                      **{k: meta["train_config"].get(k) for k in SAME_ON_RESUME}}
            now = {**{f"model {k}": v for k, v in as_json(self.model.config).items()},
                   **as_json({k: getattr(config, k) for k in SAME_ON_RESUME})}
            changed = [f"{k} {before.get(k)!r} -> {v!r}" for k, v in now.items() if before.get(k) != v]
            if changed:
                raise ValueError(f"resume: {last} was trained with other settings ({', '.join(changed)}); resume "
                                 f"with the same ones, or train into another folder")

        extra, meta = load_into(self.model, last, check=same_settings)
        restore_state(extra, self.optimizer, self.averages, str(last))
        log.info("resumed from %s at step %d", last, meta["step"])
        return meta


def _version() -> str:
    from .. import __version__

    return __version__
