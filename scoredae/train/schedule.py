r"""Learning-rate schedules of the training loop, each a function of the step and the budget used.

* ``"cosine"``: :math:`\eta_t = \eta\, w_t\, \tfrac12 (1 + \cos \pi p_t)`, :math:`p_t` the fraction of the
  step or time budget used (Loshchilov & Hutter 2017): it needs the whole budget up front.
* ``"rsqrt"``: :math:`\eta_t = \eta\, w_t / \sqrt{\max(t / t_{ref}, 1)}` (Karras et al. 2024, EDM2,
  eq. 7 of "Analyzing and improving the training dynamics of diffusion models"): constant, then
  inverse square root after ``t_ref`` steps, whatever the budget, so a run resumed with a larger
  budget keeps its schedule. It pairs with the post-hoc EMA of :mod:`scoredae.train.posthoc`.

Both start with the linear warm-up :math:`w_t = \min(1, t / t_{warm})` (:math:`w_t = 1` without one).
"""

from __future__ import annotations

import math

SCHEDULES = ("cosine", "rsqrt")


def learning_rate(lr: float, schedule: str, step: int, fraction: float, warmup_steps: int = 0,
                  ref_steps: int | None = None) -> float:
    """The learning rate of ``step`` (0-based) with ``fraction`` of the budget used (module docstring)."""
    warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0
    if schedule == "cosine":
        return lr * warm * 0.5 * (1 + math.cos(math.pi * fraction))
    if schedule == "rsqrt":
        return lr * warm / math.sqrt(max(step / ref_steps, 1.0))
    raise ValueError(f"lr_schedule: expected one of {SCHEDULES}, got {schedule!r}")
