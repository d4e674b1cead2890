r"""What a sampler asks of its denoiser: evaluations, vector-Jacobian products and Jacobian-vector
products, counted by a wrapper, so that methods can be compared at equal budgets of network
evaluations (:mod:`scoredae.eval.leaderboard`)."""

from __future__ import annotations

import deepinv
import torch


class _CountedPullback(torch.autograd.Function):
    """The identity, counting the vector-Jacobian products that pass back through it."""

    @staticmethod
    def forward(ctx, out, counter):
        ctx.counter = counter
        return out.view_as(out)

    @staticmethod
    def backward(ctx, grad):
        ctx.counter.vjps += 1
        return grad, None


class CountingDenoiser(deepinv.models.Denoiser):
    """A denoiser that counts what a sampler asks of it: ``calls`` (every evaluation, those inside
    derivatives too), ``vjps`` (vector-Jacobian products pulled back through an output) and ``jvps``
    (evaluations under forward-mode differentiation, ``torch.func.jvp``). Each call evaluates
    every chain at once, so the counts are per sample. ``evaluations`` weighs them as network
    passes: a call is one, and a call with its derivative two (``calls + vjps + jvps``)."""

    def __init__(self, denoiser):
        super().__init__()
        self.denoiser, self.calls, self.vjps, self.jvps = denoiser, 0, 0, 0

    @property
    def evaluations(self) -> int:
        return self.calls + self.vjps + self.jvps

    def counts(self) -> dict:
        """The counts as a row's columns: ``calls``, ``vjps``, ``jvps``, ``evaluations``."""
        return {"calls": self.calls, "vjps": self.vjps, "jvps": self.jvps, "evaluations": self.evaluations}

    def forward(self, x, sigma, **kwargs):
        self.calls += 1
        if torch._C._functorch.is_functorch_wrapped_tensor(x):  # inside torch.func.jvp
            self.jvps += 1
        out = self.denoiser(x, sigma, **kwargs)
        if torch.is_grad_enabled() and out.requires_grad:
            out = _CountedPullback.apply(out, self)
        return out
