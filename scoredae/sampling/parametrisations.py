r"""One posterior mean in every coordinate system: schedules and predictions.

A diffusion or flow model noises data as :math:`x_t = \alpha_t x_0 + s_t n`,
:math:`n \sim \mathcal N(0, I)`. Divided by :math:`\alpha_t` this is the variance-exploding process
:math:`x_t / \alpha_t = x_0 + \sigma n` at level :math:`\sigma = s_t / \alpha_t`, so every such
model and every scoredae denoiser hold the same object, the posterior mean

.. math::
    D(x, \sigma) = \mathbb E[x_0 \mid x_0 + \sigma n = x], \qquad
    \mathbb E[x_0 \mid x_t] = D(x_t / \alpha_t, s_t / \alpha_t).

A schedule (:class:`VarianceExploding`, :class:`VariancePreserving`, :class:`DiscreteVP`,
:class:`LinearInterpolant`) gives :math:`\alpha_t, s_t` and the time of a level; a prediction
(:data:`PREDICTIONS`) is what a network outputs at :math:`x_t`, each an affine function of
:math:`\hat x_0 = \mathbb E[x_0 \mid x_t]` (:func:`prediction_from`, :func:`denoised_from`):

.. math::
    \hat\epsilon &= (x_t - \alpha_t \hat x_0) / s_t, \qquad
    \hat v = \alpha_t \hat\epsilon - s_t \hat x_0, \qquad
    \nabla \log p_t(x_t) = -\hat\epsilon / s_t, \\
    \hat u &= \dot\alpha_t \hat x_0 + \dot s_t \hat\epsilon \quad
    \text{(the velocity } \mathbb E[\tfrac{d}{dt} x_t \mid x_t] \text{ of flow matching)}.

:class:`PredictionDenoiser` turns a model of any of them into a scoredae denoiser, and
:class:`DenoiserPrediction` a scoredae denoiser into a model of any of them.
"""

from __future__ import annotations

import math

import deepinv
import torch

from .._checks import positive

#: what a model may predict, by diffusers' names where it has them
PREDICTIONS = ("epsilon", "v_prediction", "sample", "score", "velocity")


class Schedule:
    r"""A noising path :math:`x_t = \alpha_t x_0 + s_t n` for :math:`t` in ``t_range``, with its VE
    level :math:`\sigma(t) = s_t / \alpha_t` increasing in :math:`t` and its inverse :meth:`Schedule.time`."""

    t_range: tuple[float, float]

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def noise(self, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def derivatives(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r""":math:`(\dot\alpha_t, \dot s_t)`, for the velocity; a discrete schedule has none."""
        raise ValueError(f"prediction: {type(self).__name__} has no time derivative, so no velocity; "
                         f"use a continuous schedule (VariancePreserving, LinearInterpolant)")

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        """The VE level :math:`s_t / \\alpha_t` of time ``t``."""
        return self.noise(t) / self.alpha(t)

    def time(self, sigma: torch.Tensor) -> torch.Tensor:
        """The time whose VE level is ``sigma``."""
        raise NotImplementedError

    @property
    def sigma_range(self) -> tuple[float, float]:
        """The VE levels the schedule spans, ``(sigma(t_min), sigma(t_max))``."""
        lo, hi = (torch.tensor(t, dtype=torch.float64) for t in self.t_range)
        return float(self.sigma(lo)), float(self.sigma(hi))


class VarianceExploding(Schedule):
    r"""EDM's :math:`\alpha_t = 1`, :math:`s_t = t`: time is the level."""

    def __init__(self, sigma_min: float = 0.002, sigma_max: float = 80.0):
        self.t_range = (positive("sigma_min", sigma_min), positive("sigma_max", sigma_max))

    def alpha(self, t):
        return torch.ones_like(t)

    def noise(self, t):
        return t

    def derivatives(self, t):
        return torch.zeros_like(t), torch.ones_like(t)

    def time(self, sigma):
        return sigma


class VariancePreserving(Schedule):
    r"""Continuous variance preserving, :math:`\alpha_t = \sqrt{\bar\alpha(t)}`,
    :math:`s_t = \sqrt{1 - \bar\alpha(t)}` on :math:`t \in [\epsilon, 1]`:

    * ``"linear"`` (Song et al. 2021, VP SDE): :math:`\log \bar\alpha(t) = -\beta_0 t - (\beta_1 - \beta_0) t^2 / 2`,
      :math:`\beta_0 = 0.1`, :math:`\beta_1 = 20`;
    * ``"cosine"`` (Nichol & Dhariwal 2021): :math:`\bar\alpha(t) = \cos^2\big(\tfrac{\pi}{2} \tfrac{t + c}{1 + c}\big) / \cos^2\big(\tfrac{\pi}{2} \tfrac{c}{1 + c}\big)`,
      :math:`c = 0.008`, :math:`t \le 0.9946` (where :math:`\bar\alpha` reaches :math:`10^{-5}`).
    """

    KINDS = ("linear", "cosine")

    def __init__(self, kind: str = "linear", beta_min: float = 0.1, beta_max: float = 20.0, offset: float = 0.008,
                 eps: float = 1e-5):
        if kind not in self.KINDS:
            raise ValueError(f"kind: expected one of {self.KINDS}, got {kind!r}")
        self.kind, self.beta_min, self.beta_max, self.offset = kind, beta_min, beta_max, offset
        self.t_range = (positive("eps", eps), 1.0 if kind == "linear" else 0.9946)

    def _log_alpha_bar(self, t):
        if self.kind == "linear":
            return -self.beta_min * t - 0.5 * (self.beta_max - self.beta_min) * t**2
        c = self.offset
        return 2 * (torch.cos(0.5 * math.pi * (t + c) / (1 + c)).log() - math.log(math.cos(0.5 * math.pi * c / (1 + c))))

    def alpha(self, t):
        return (0.5 * self._log_alpha_bar(t)).exp()

    def noise(self, t):
        return (-torch.expm1(self._log_alpha_bar(t))).sqrt()

    def derivatives(self, t):
        if self.kind == "linear":
            slope = -self.beta_min - (self.beta_max - self.beta_min) * t  # d log alpha_bar / dt
        else:
            c = self.offset
            slope = -math.pi / (1 + c) * torch.tan(0.5 * math.pi * (t + c) / (1 + c))
        alpha, noise = self.alpha(t), self.noise(t)
        return 0.5 * slope * alpha, -0.5 * slope * alpha**2 / noise

    def time(self, sigma):
        log_alpha_bar = -torch.log1p(sigma**2)  # alpha_bar = 1 / (1 + sigma^2)
        if self.kind == "linear":
            a, b = 0.5 * (self.beta_max - self.beta_min), self.beta_min  # a t^2 + b t + log alpha_bar = 0
            return 2 * -log_alpha_bar / (b + (b**2 - 4 * a * log_alpha_bar).sqrt())
        c = self.offset
        scaled = (0.5 * log_alpha_bar).exp() * math.cos(0.5 * math.pi * c / (1 + c))
        return torch.arccos(scaled) * 2 * (1 + c) / math.pi - c


class DiscreteVP(Schedule):
    r"""A discrete variance-preserving schedule, ``alphas_cumprod`` :math:`\bar\alpha_0 > \dots > \bar\alpha_{N-1}`
    (diffusers' and DDPM's), made continuous as k-diffusion's discrete wrappers do: time
    :math:`t \in [0, N - 1]`, :math:`\log \sigma(t)` linear between the integers, where
    :math:`\sigma_i = \sqrt{(1 - \bar\alpha_i) / \bar\alpha_i}`; a model is called at fractional times."""

    def __init__(self, alphas_cumprod):
        alphas_cumprod = torch.as_tensor(alphas_cumprod, dtype=torch.float64)
        if alphas_cumprod.ndim != 1 or len(alphas_cumprod) < 2 or not bool(
                ((alphas_cumprod > 0) & (alphas_cumprod < 1)).all() and (alphas_cumprod.diff() < 0).all()):
            raise ValueError("alphas_cumprod: expected a decreasing sequence of at least two values in (0, 1)")
        self.log_sigmas = (0.5 * (torch.log1p(-alphas_cumprod) - alphas_cumprod.log()))
        self.t_range = (0.0, float(len(alphas_cumprod) - 1))

    @classmethod
    def from_betas(cls, kind: str = "linear", steps: int = 1000, beta_start: float = 1e-4,
                   beta_end: float = 0.02) -> DiscreteVP:
        r"""DDPM's ``"linear"`` betas, latent diffusion's ``"scaled_linear"`` (linear in
        :math:`\sqrt\beta`), or ``"cosine"`` (diffusers' ``squaredcos_cap_v2``: the cosine
        :math:`\bar\alpha` of :class:`VariancePreserving` at :math:`t = i / N`, each
        :math:`\beta_i \le 0.999`)."""
        i = torch.arange(steps, dtype=torch.float64)
        if kind == "linear":
            betas = torch.linspace(beta_start, beta_end, steps, dtype=torch.float64)
        elif kind == "scaled_linear":
            betas = torch.linspace(beta_start**0.5, beta_end**0.5, steps, dtype=torch.float64) ** 2
        elif kind == "cosine":
            bar = lambda s: torch.cos((s / steps + 0.008) / 1.008 * math.pi / 2) ** 2
            betas = (1 - bar(i + 1) / bar(i)).clamp(max=0.999)
        else:
            raise ValueError(f"kind: expected linear, scaled_linear or cosine, got {kind!r}")
        return cls(torch.cumprod(1 - betas, 0))

    def _log_sigma(self, t):
        low = t.floor().clamp(0, len(self.log_sigmas) - 2).long()
        w = t - low
        ls = self.log_sigmas.to(t)
        return (1 - w) * ls[low] + w * ls[low + 1]

    def alpha(self, t):
        return torch.rsqrt(1 + (2 * self._log_sigma(t)).exp())

    def noise(self, t):
        return self.alpha(t) * self._log_sigma(t).exp()

    def time(self, sigma):
        ls = self.log_sigmas.to(sigma)
        log_sigma = sigma.log().clamp(ls[0], ls[-1])
        low = (torch.searchsorted(ls, log_sigma.reshape(-1), right=True) - 1).clamp(0, len(ls) - 2).reshape(sigma.shape)
        return low + (log_sigma - ls[low]) / (ls[low + 1] - ls[low])


class LinearInterpolant(Schedule):
    r"""Rectified flow and conditional optimal transport: :math:`x_t = (1 - t) x_0 + t n`, so
    :math:`\sigma = t / (1 - t)` and :math:`t = \sigma / (1 + \sigma)`, on ``t_range`` inside (0, 1)."""

    def __init__(self, t_min: float = 1e-3, t_max: float = 0.999):
        if not 0 < t_min < t_max < 1:
            raise ValueError(f"t_min, t_max: expected 0 < t_min < t_max < 1, got {t_min}, {t_max}")
        self.t_range = (t_min, t_max)

    def alpha(self, t):
        return 1 - t

    def noise(self, t):
        return t

    def derivatives(self, t):
        return -torch.ones_like(t), torch.ones_like(t)

    def time(self, sigma):
        return sigma / (1 + sigma)


def _check_prediction(prediction: str) -> str:
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction: expected one of {PREDICTIONS}, got {prediction!r}")
    return prediction


def _per_row(value: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A 0-d or (B,) tensor shaped to broadcast against x (B, ...)."""
    return value.reshape(value.shape + (1,) * (x.ndim - value.ndim)) if value.ndim else value


def denoised_from(prediction: str, output: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor,
                  schedule: Schedule) -> torch.Tensor:
    r""":math:`\hat x_0 = \mathbb E[x_0 \mid x_t]` from a model's ``output`` at ``x_t`` and time ``t``
    (0-d or (B,)) on ``schedule``, inverting the module docstring's formulas:
    :math:`\hat x_0 = (x_t - s_t \hat\epsilon) / \alpha_t`, :math:`(\alpha_t x_t - s_t \hat v) / (\alpha_t^2 + s_t^2)`,
    :math:`(x_t + s_t^2 \nabla \log p_t) / \alpha_t`, and :math:`(s_t \hat u - \dot s_t x_t) / (s_t \dot\alpha_t - \dot s_t \alpha_t)`."""
    alpha, s = _per_row(schedule.alpha(t), x_t), _per_row(schedule.noise(t), x_t)
    if _check_prediction(prediction) == "sample":
        return output
    if prediction == "epsilon":
        return (x_t - s * output) / alpha
    if prediction == "v_prediction":
        return (alpha * x_t - s * output) / (alpha**2 + s**2)
    if prediction == "score":
        return (x_t + s**2 * output) / alpha
    d_alpha, d_s = (_per_row(v, x_t) for v in schedule.derivatives(t))
    return (s * output - d_s * x_t) / (s * d_alpha - d_s * alpha)


def prediction_from(prediction: str, denoised: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor,
                    schedule: Schedule) -> torch.Tensor:
    r"""The ``prediction`` (:data:`PREDICTIONS`) equal to the posterior mean ``denoised`` at ``x_t``,
    time ``t`` (0-d or (B,)), by the module docstring's formulas."""
    alpha, s = _per_row(schedule.alpha(t), x_t), _per_row(schedule.noise(t), x_t)
    if _check_prediction(prediction) == "sample":
        return denoised
    eps = (x_t - alpha * denoised) / s
    if prediction == "epsilon":
        return eps
    if prediction == "v_prediction":
        return alpha * eps - s * denoised
    if prediction == "score":
        return -eps / s
    d_alpha, d_s = (_per_row(v, x_t) for v in schedule.derivatives(t))
    return d_alpha * denoised + d_s * eps


class PredictionDenoiser(deepinv.models.Denoiser):
    r"""A model ``model(x_t, t, **kwargs)`` that predicts ``prediction`` on ``schedule``, as a
    denoiser :math:`D(x, \sigma) = \hat x_0(\alpha_t x, t)` at :math:`t = ` ``schedule.time(sigma)``
    (module docstring). ``sigma_range`` is the schedule's; a level outside it is refused, since the
    model never saw it (a float level is checked; a tensor's are not, which would synchronise the
    device)."""

    def __init__(self, model, schedule: Schedule, prediction: str):
        super().__init__()
        self.model, self.schedule, self.prediction = model, schedule, _check_prediction(prediction)
        self.sigma_range = schedule.sigma_range

    def forward(self, x: torch.Tensor, sigma, **kwargs) -> torch.Tensor:
        lo, hi = self.sigma_range
        if not isinstance(sigma, torch.Tensor) and not lo * (1 - 1e-9) <= sigma <= hi * (1 + 1e-9):
            raise ValueError(f"sigma: {sigma:g} is outside the schedule's levels [{lo:g}, {hi:g}]")
        sigma = torch.as_tensor(sigma, dtype=torch.float64, device=x.device)
        t = self.schedule.time(sigma.reshape(-1) if sigma.ndim else sigma)
        x_t = _per_row(self.schedule.alpha(t), x).to(x.dtype) * x
        output = self.model(x_t, t.to(x.dtype), **kwargs)
        if output.shape != x.shape:
            raise ValueError(f"model: its output has shape {tuple(output.shape)}, its input {tuple(x.shape)}")
        return denoised_from(self.prediction, output, x_t, t.to(x.dtype), self.schedule)


class DenoiserPrediction(torch.nn.Module):
    r"""A scoredae denoiser seen as a model ``f(x_t, t)`` that predicts ``prediction`` on
    ``schedule``: :math:`\hat x_0 = D(x_t / \alpha_t, s_t / \alpha_t)`, turned into the prediction by
    :func:`prediction_from`."""

    def __init__(self, denoiser, schedule: Schedule, prediction: str):
        super().__init__()
        self.denoiser, self.schedule, self.prediction = denoiser, schedule, _check_prediction(prediction)

    def forward(self, x_t: torch.Tensor, t, **kwargs) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=x_t.dtype, device=x_t.device)
        alpha = _per_row(self.schedule.alpha(t), x_t)
        sigma = self.schedule.sigma(t)
        denoised = self.denoiser(x_t / alpha, sigma.reshape(-1) if sigma.ndim else float(sigma), **kwargs)
        return prediction_from(self.prediction, denoised, x_t, t, self.schedule)
