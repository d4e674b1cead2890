r"""Models from elsewhere as scoredae denoisers, and back: diffusers' models and schedulers
(optional extra ``diffusers``) and Meta's ``flow_matching`` velocity models (nothing here downloads:
a model comes from a local folder or is built in code).

A diffusers model predicts, at :math:`x_t = \alpha_t x_0 + s_t n` and an integer timestep, the noise
(``"epsilon"``), :math:`v` (``"v_prediction"``) or :math:`x_0` (``"sample"``) of its scheduler's
``prediction_type`` on the discrete schedule ``alphas_cumprod``, or, with a flow-matching
scheduler, the velocity :math:`n - x_0` of the linear interpolant at timestep :math:`1000\, t`. Each is
the posterior mean in other coordinates (:mod:`scoredae.sampling.parametrisations`):
:func:`from_diffusers` makes it a denoiser :math:`D(x, \sigma)` that every scoredae sampler and
posterior sampler takes, the discrete schedule made continuous by interpolating
:math:`\log \sigma` between the timesteps, as k-diffusion's discrete wrappers do
(:class:`~scoredae.sampling.parametrisations.DiscreteVP`). :func:`to_diffusers` goes back: a
scoredae denoiser as the model a diffusers scheduler steps with.

diffusers' schedulers are scoredae's solvers in other coordinates, equal step for step on the
converted model (same start, same timesteps; ``tests/test_diffusers_interop.py``, to 1e-5, diffusers
keeping its schedule in float32): ``DDIMScheduler`` with :math:`\eta = 0`, ``EulerDiscreteScheduler``
and ``FlowMatchEulerDiscreteScheduler`` are Euler's method of
:func:`~scoredae.sampling.edm.edm_sampler`; ``HeunDiscreteScheduler`` is its Heun method;
``DPMSolverMultistepScheduler`` (``dpmsolver++``, order 2, ``midpoint`` or ``heun``) is
:func:`~scoredae.sampling.multistep.dpm_solver_pp`. The differences, by design: at fractional
timesteps diffusers interpolates :math:`\sigma` linearly in :math:`t` where the conversion, as
k-diffusion, interpolates :math:`\log \sigma` (equal at integer timesteps); diffusers' DPM-Solver++
drops to first order on the step before last below 15 steps; and a flow's start :math:`t = 1`
(pure noise) is :math:`\sigma = \infty`, so a converted flow starts just below it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import deepinv
import torch

from ..sampling.parametrisations import (
    DenoiserPrediction,
    DiscreteVP,
    LinearInterpolant,
    PredictionDenoiser,
)

FLOW_SCHEDULERS = ("FlowMatchEulerDiscreteScheduler", "FlowMatchHeunDiscreteScheduler")


class DiffusersModel(torch.nn.Module):
    """A diffusers model (its call returns ``.sample``) as ``model(x_t, t, class_labels=None)``: the
    timestep ``t * time_scale``, the input in the model's dtype, the output in the input's."""

    def __init__(self, unet: torch.nn.Module, time_scale: float = 1.0):
        super().__init__()
        self.unet, self.time_scale = unet, time_scale

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, class_labels=None, **kwargs) -> torch.Tensor:
        dtype = next(self.unet.parameters()).dtype
        timestep = (t * self.time_scale).to(dtype)
        if timestep.ndim == 0:
            timestep = timestep.expand(x_t.shape[0])
        out = self.unet(x_t.to(dtype), timestep, class_labels=class_labels, **kwargs)
        return getattr(out, "sample", out).to(x_t.dtype)


def _schedule_and_prediction(scheduler) -> tuple:
    """The continuous schedule, the prediction and the time scale of a diffusers scheduler."""
    name, config = type(scheduler).__name__, scheduler.config
    if name in FLOW_SCHEDULERS:
        steps = config.num_train_timesteps
        return LinearInterpolant(1 / steps, 1 - 1e-4), "velocity", float(steps)
    prediction = config.get("prediction_type")
    if prediction not in ("epsilon", "v_prediction", "sample"):
        raise ValueError(f"scheduler: its prediction_type {prediction!r} is not one of epsilon, v_prediction, "
                         f"sample (or a flow-matching scheduler, {', '.join(FLOW_SCHEDULERS)})")
    if not hasattr(scheduler, "alphas_cumprod"):
        raise ValueError(f"scheduler: {name} has no alphas_cumprod; give a DDPM-family scheduler "
                         f"(DDPMScheduler, DDIMScheduler, EulerDiscreteScheduler, ...)")
    return DiscreteVP(scheduler.alphas_cumprod), prediction, 1.0


def from_diffusers(unet: torch.nn.Module, scheduler, data_range: tuple[float, float] = (-1.0, 1.0)):
    r"""The denoiser :math:`D(x, \sigma)` of a diffusers model ``unet`` (e.g. a ``UNet2DModel``)
    trained with ``scheduler`` (module docstring), on images in [0, 1] as every scoredae denoiser:
    a model trained on data in ``data_range`` = :math:`[a, b]` (diffusers' pipelines use [-1, 1]) is
    called at :math:`a + (b - a) x` and level :math:`(b - a) \sigma`, its output mapped back
    (:class:`RangeChange`; ``(0, 1)`` leaves it as it is). Class labels pass through as
    ``class_labels``; ``image_shape`` is the model's ``(channels, size, size)``."""
    schedule, prediction, scale = _schedule_and_prediction(scheduler)
    denoiser = PredictionDenoiser(DiffusersModel(unet, scale), schedule, prediction)
    if tuple(data_range) != (0.0, 1.0):
        denoiser = RangeChange(denoiser, *data_range)
    size = unet.config.get("sample_size")
    denoiser.image_shape = (unet.config.get("in_channels"), *((size, size) if isinstance(size, int) else size))
    return denoiser


class RangeChange(deepinv.models.Denoiser):
    r"""A denoiser of data in :math:`[a, b]` seen on data in [0, 1]: with :math:`x' = a + (b - a) x`,
    noise scales by :math:`b - a`, so

    .. math::
        D_{[0, 1]}(x, \sigma) = \frac{D\big(a + (b - a) x, (b - a) \sigma\big) - a}{b - a}."""

    def __init__(self, denoiser, low: float, high: float):
        super().__init__()
        if not high > low:
            raise ValueError(f"data_range: expected low < high, got ({low}, {high})")
        self.denoiser, self.low, self.width = denoiser, low, high - low
        self.sigma_range = tuple(s / self.width for s in denoiser.sigma_range)

    def forward(self, x: torch.Tensor, sigma, **kwargs) -> torch.Tensor:
        return (self.denoiser(self.low + self.width * x, sigma * self.width, **kwargs) - self.low) / self.width


def to_diffusers(denoiser, scheduler) -> torch.nn.Module:
    """A scoredae ``denoiser`` as the model ``scheduler`` steps with: called ``model(sample, timestep)``,
    it returns the scheduler's prediction (its ``prediction_type``, or the velocity of a
    flow-matching scheduler, whose timesteps are 1000 t)."""
    schedule, prediction, scale = _schedule_and_prediction(scheduler)
    return _Timesteps(DenoiserPrediction(denoiser, schedule, prediction), scale)


class _Timesteps(torch.nn.Module):
    """``model(x_t, t)`` called with diffusers' timesteps ``t * scale``."""

    def __init__(self, model: torch.nn.Module, scale: float):
        super().__init__()
        self.model, self.scale = model, scale

    def forward(self, sample: torch.Tensor, timestep, **kwargs) -> torch.Tensor:
        t = torch.as_tensor(timestep, dtype=sample.dtype, device=sample.device) / self.scale
        return self.model(sample, t, **kwargs)


def load_diffusers(folder: str | os.PathLike, device=None, data_range: tuple[float, float] = (-1.0, 1.0)):
    """The denoiser (:func:`from_diffusers`) of a local diffusers model folder: ``unet/`` (or the model at its top) and
    ``scheduler/`` (or ``scheduler_config.json`` at its top), as a pipeline saves them; never a
    hub download."""
    try:
        import diffusers
    except ImportError as err:
        raise ImportError("loading a diffusers model needs the extra: pip install 'scoredae[diffusers]'") from err
    folder = Path(folder)
    model_dir = folder / "unet" if (folder / "unet").is_dir() else folder
    scheduler_dir = folder / "scheduler" if (folder / "scheduler").is_dir() else folder
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"folder: no model in {folder} (expected unet/config.json or config.json)")
    if not (scheduler_dir / "scheduler_config.json").is_file():
        raise FileNotFoundError(f"folder: no scheduler in {folder} (expected scheduler/scheduler_config.json)")
    kind = json.loads((scheduler_dir / "scheduler_config.json").read_text()).get("_class_name")
    if not hasattr(diffusers, str(kind)):
        raise ValueError(f"folder: its scheduler_config.json names {kind!r}, not a diffusers scheduler")
    unet = diffusers.UNet2DModel.from_pretrained(model_dir, local_files_only=True)
    scheduler = getattr(diffusers, kind).from_pretrained(scheduler_dir, local_files_only=True)
    return from_diffusers(unet.to(device).eval(), scheduler, data_range)


def from_flow_matching(velocity_model) -> PredictionDenoiser:
    r"""The denoiser of a velocity model in ``flow_matching``'s convention, ``velocity_model(x=x, t=t)``
    with :math:`t = 0` the noise and :math:`t = 1` the data, :math:`x_t = t x_1 + (1 - t) x_0`,
    predicting :math:`x_1 - x_0`: the linear interpolant of
    :class:`~scoredae.sampling.parametrisations.LinearInterpolant` with time reversed,
    :math:`t' = 1 - t`, and velocity negated."""
    return PredictionDenoiser(_FlowMatchingVelocity(velocity_model), LinearInterpolant(), "velocity")


class _FlowMatchingVelocity(torch.nn.Module):
    """``flow_matching``'s velocity model in scoredae's time: ``u(x, t') = -v(x, 1 - t')``."""

    def __init__(self, velocity_model):
        super().__init__()
        self.velocity_model = velocity_model

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, **kwargs) -> torch.Tensor:
        return -self.velocity_model(x=x_t, t=1 - t, **kwargs)
