r"""First-order optimisers that update parameters in place from their ``.grad``."""

from __future__ import annotations

import math

import torch


class Optimizer:
    """Holds the parameters (tensors with a ``.grad``); subclasses implement ``step()``."""

    def __init__(self, params, lr: float):
        self.params = list(params)
        if not self.params:
            raise ValueError("params: expected at least one parameter, got none")
        for i, p in enumerate(self.params):
            if p.grad is None or p.grad.shape != p.shape:
                raise ValueError(f"params[{i}]: expected a tensor with a .grad of its shape {tuple(p.shape)}")
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        self.lr = lr

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad.zero_()

    def step(self) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    r"""Stochastic gradient descent with heavy-ball momentum :math:`\mu` (Polyak 1964), in
    PyTorch's form: :math:`v_t = \mu v_{t-1} + g_t` (:math:`v_1 = g_1`),
    :math:`\theta_t = \theta_{t-1} - \eta v_t`; :math:`\mu = 0` is plain SGD."""

    def __init__(self, params, lr: float, momentum: float = 0.0):
        super().__init__(params, lr)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum = momentum
        self._velocity: list[torch.Tensor] | None = None

    @torch.no_grad()
    def step(self) -> None:
        if self.momentum == 0.0:
            for p in self.params:
                p -= self.lr * p.grad
            return
        if self._velocity is None:
            self._velocity = [p.grad.clone() for p in self.params]
        else:
            for v, p in zip(self._velocity, self.params):
                v.mul_(self.momentum).add_(p.grad)
        for v, p in zip(self._velocity, self.params):
            p -= self.lr * v


class Adam(Optimizer):
    r"""Adam (Kingma & Ba 2015, Algorithm 1), with bias correction:

    .. math::
        m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \quad
        \theta_t = \theta_{t-1} - \eta\, \frac{m_t / (1 - \beta_1^t)}{\sqrt{v_t / (1 - \beta_2^t)} + \epsilon}.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, lr)
        if not all(0.0 <= b < 1.0 for b in betas) or len(betas) != 2:
            raise ValueError(f"betas: expected two values in [0, 1), got {betas}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.betas, self.eps = betas, eps
        self.t = 0
        self._m = [torch.zeros_like(p) for p in self.params]
        self._v = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        step_size = self.lr / (1.0 - b1**self.t)
        v_scale = math.sqrt(1.0 - b2**self.t)
        for p, m, v in zip(self.params, self._m, self._v):
            m.mul_(b1).add_(p.grad, alpha=1.0 - b1)
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1.0 - b2)
            p.addcdiv_(m, v.sqrt().div_(v_scale).add_(self.eps), value=-step_size)
