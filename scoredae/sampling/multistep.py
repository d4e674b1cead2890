r"""Multistep solvers of the probability-flow ODE: one denoiser call a step, reusing earlier ones.

The ODE of :mod:`scoredae.sampling.edm`, :math:`dx/d\sigma = (x - D(x, \sigma)) / \sigma`,
integrated from ``sigmas[0]`` down the ladder. A one-step method of order :math:`p` (Heun) spends
:math:`p` calls a step; a multistep method reaches order :math:`p` with one call a step by
interpolating the :math:`p - 1` previous denoiser outputs, started with lower orders while the
history fills up. That start bounds the global order: a first-order first step leaves an
:math:`O(h^2)` error, so DPM-Solver++(3M) and iPNDM, of orders 3 and 4 in their later steps, are
second-order methods overall (tested), whose advantage is a small constant: their first step is
taken at :math:`\sigma_{\max}`, where the path is nearly straight and a first-order step nearly
exact.

* :func:`dpm_solver_pp`: DPM-Solver++ (Lu et al. 2022, "DPM-Solver++: fast solver for guided
  sampling of diffusion probabilistic models", Sec. 4 and Algorithm 2). In the log-SNR time
  :math:`\lambda = -\ln \sigma` the ODE is :math:`dx/d\lambda = D - x`, whose exact solution over
  a step :math:`h = \lambda_{i+1} - \lambda_i = \ln(\sigma_i / \sigma_{i+1})` is the exponential
  integral (their eq. 9 with :math:`\alpha = 1`)

  .. math::
      x_{i+1} &= e^{-h} x_i + \int_0^h e^{-(h - \tau)} D(\lambda_i + \tau)\, d\tau \\
      &= e^{-h} x_i + (1 - e^{-h}) D_i + h \varphi_2(h) D'_i - h^2 \varphi_3(h) D''_i + O(h^4),

  with :math:`\varphi_2 = 1 - (1 - e^{-h}) / h` and :math:`\varphi_3 = \varphi_2 / h - 1/2`
  (the integrals of :math:`e^{-(h - \tau)}` times :math:`\tau` and :math:`\tau^2 / 2`).
  DPM-Solver++(2M), their Algorithm 2 (``solver_type="midpoint"``, the default, as k-diffusion's
  ``sample_dpmpp_2m`` and diffusers' ``DPMSolverMultistepScheduler``), takes with
  :math:`r = h_{i-1} / h`

  .. math::
      x_{i+1} &= e^{-h} x_i + (1 - e^{-h}) \Big[\big(1 + \tfrac{1}{2r}\big) D_i - \tfrac{1}{2r} D_{i-1}\Big] \\
      &= e^{-h} x_i + (1 - e^{-h}) D_i + \frac{1 - e^{-h}}{2}\, d_1, \\
      d_1 &= \frac{D_i - D_{i-1}}{r} \approx h D'_i;

  ``solver_type="heun"`` (diffusers' name) takes the Taylor coefficient :math:`\varphi_2 d_1`
  instead; both are second order, equal up to :math:`O(h^3)`. The third-order step of 3M adds
  :math:`\varphi_2 d_1 - 2 \varphi_3 d_2`, with :math:`d_1 \approx h D'` and
  :math:`d_2 \approx h^2 D'' / 2` from divided differences of the outputs at
  :math:`\lambda_i, \lambda_i - h_1, \lambda_i - h_1 - h_2` (k-diffusion's ``sample_dpmpp_3m_sde``
  and diffusers weigh their :math:`d_2`, the same divided difference, by :math:`\varphi_3`: half
  the Taylor coefficient); its second step is the 2M step of ``solver_type``. The last step, to
  :math:`\sigma = 0`, lands on :math:`D` (:math:`e^{-h} = 0`).
* :func:`ipndm`: the improved pseudo-numerical method of Zhang & Chen 2023 ("Fast sampling of
  diffusion models with exponential integrator", Sec. 4, iPNDM), Adams-Bashforth in :math:`\sigma`
  with the fixed coefficients of a uniform grid, up to fourth order,

  .. math::
      x_{i+1} &= x_i + \frac{\sigma_{i+1} - \sigma_i}{24} \big(55 d_i - 59 d_{i-1} + 37 d_{i-2} - 9 d_{i-3}\big), \\
      d_i &= \frac{x_i - D(x_i, \sigma_i)}{\sigma_i}.

  Its order is 4 on a grid uniform in :math:`\sigma`; on EDM's grid the fixed coefficients are an
  approximation, which is what Zhang & Chen use.
* :func:`unipc`: UniPC (Zhao et al. 2023, "UniPC: a unified predictor-corrector framework for fast
  sampling of diffusion models", Algorithms 2 and 3, data prediction, :math:`B(h) = e^{h} - 1`:
  diffusers' ``bh2``). From :math:`x_{s}` at level :math:`s` to :math:`t`, :math:`h = \ln(s / t)`,
  with the outputs :math:`D_0` at :math:`s` and :math:`D_i` at earlier levels :math:`s_i`,
  :math:`r_i = \ln(s / s_i) / h < 0` and :math:`\Delta_i = (D_i - D_0) / r_i`,

  .. math::
      x_t &= \frac{t}{s} x_s + (1 - e^{-h}) \Big(D_0 + \sum_i \rho_i \Delta_i\Big), \\
      R \rho &= b, \quad R_{ki} = r_i^{k - 1}, \quad b_k = \frac{k!\, g_{k+1}}{e^{-h} - 1},

  :math:`g_1 = e^{-h} - 1`, :math:`g_{k+1} = g_k / (-h) - 1 / k!`. The predictor UniP-:math:`p`
  uses :math:`p - 1` earlier outputs (:math:`\rho = 1/2` for :math:`p = 2`: DPM-Solver++(2M)); after
  the denoiser is called at the predicted :math:`x_t`, the corrector UniC-:math:`p` recomputes
  :math:`x_t` from :math:`x_s` with the new output as one more point, :math:`r = 1` (:math:`\rho = 1/2`
  for :math:`p = 1`), and the next step starts from the corrected point: the order rises by one for
  no extra call. Orders are lowered at the start (the history fills) and at the end (diffusers'
  ``lower_order_final``: at most the steps left), so the last step lands on :math:`D`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import torch

from .._checks import decreasing_levels
from ..score import require_every_level
from .edm import ode_derivative
from .loop import LoopSpec, SamplerResult, check_chain_inputs, run_chain

#: the second-order forms of DPM-Solver++ by diffusers' names, Algorithm 2's and the Taylor coefficient's
SOLVER_TYPES = ("midpoint", "heun")
#: Adams-Bashforth coefficients of a uniform grid, newest derivative first (iPNDM)
ADAMS_BASHFORTH = {1: (1.0,), 2: (3 / 2, -1 / 2), 3: (23 / 12, -16 / 12, 5 / 12),
                   4: (55 / 24, -59 / 24, 37 / 24, -9 / 24)}


class MultistepState(NamedTuple):
    """What a multistep solver carries between steps: the last outputs it reuses (denoiser outputs
    for DPM-Solver++, ODE derivatives for iPNDM), newest first, with the lengths of the steps
    that led to them (in log-SNR time for DPM-Solver++)."""

    history: tuple[torch.Tensor, ...] = ()
    steps: tuple[float, ...] = ()


def dpm_solver_pp_step(denoiser, x: torch.Tensor, t: float, t_next: float, state: MultistepState,
                       order: int = 2, solver_type: str = "midpoint") -> tuple[torch.Tensor, MultistepState]:
    r"""One DPM-Solver++ step from :math:`\sigma = t` to ``t_next`` (module docstring), of order
    ``order`` or as high as the history in ``state`` allows, its second-order form ``solver_type``;
    one denoiser call. Returns the next ``x`` and the state of the next step (the ``order - 1``
    newest outputs and their step lengths)."""
    d0 = denoiser(x, t)
    if t_next == 0:
        return d0, state
    h = math.log(t / t_next)
    phi2 = 1 + math.expm1(-h) / h
    x_next = (t_next / t) * x - math.expm1(-h) * d0  # e^{-h} x + (1 - e^{-h}) D: DDIM's step
    q = min(order - 1, len(state.history))
    if q >= 1:
        d1_0 = (d0 - state.history[0]) * (h / state.steps[0])  # h D'
        if q == 1:
            x_next = x_next + (phi2 if solver_type == "heun" else -0.5 * math.expm1(-h)) * d1_0
        else:
            h1, h2 = state.steps[:2]
            d1_1 = (state.history[0] - state.history[1]) * (h / h2)
            d1 = d1_0 + (d1_0 - d1_1) * (h1 / (h1 + h2))  # h D', to second order
            d2 = (d1_0 - d1_1) * (h / (h1 + h2))  # h^2 D'' / 2
            x_next = x_next + phi2 * d1 - 2 * (phi2 / h - 0.5) * d2
    keep = order - 1
    return x_next, MultistepState((d0, *state.history)[:keep], (h, *state.steps)[:keep])


def ipndm_step(denoiser, x: torch.Tensor, t: float, t_next: float, state: MultistepState,
               order: int = 4) -> tuple[torch.Tensor, MultistepState]:
    r"""One iPNDM step from :math:`\sigma = t` to ``t_next`` (module docstring), Adams-Bashforth of
    order ``order`` or as high as the derivatives in ``state`` allow; one denoiser call."""
    derivatives = (ode_derivative(denoiser, x, t), *state.history)[:order]
    slope = sum(c * d for c, d in zip(ADAMS_BASHFORTH[len(derivatives)], derivatives))
    return x + (t_next - t) * slope, MultistepState(derivatives[: order - 1])


def _multistep(step, name: str, denoiser, x_T, sigmas, order: int, generator, loop: dict) -> SamplerResult:
    """The shared body of the two samplers: checks, then ``step`` over the ladder on the loop."""
    require_every_level(denoiser, name)
    check_chain_inputs(x_T, generator, name="x_T")
    levels = decreasing_levels("sigmas", sigmas, final_zero=True)
    spec = LoopSpec(f"{name}, order {order}", hint="; check that the denoiser covers the levels of sigmas",
                    level_of=lambda k: levels[k - 1], stationary=False)
    return run_chain(lambda x, state, k: step(denoiser, x, levels[k - 1], levels[k], state, order),
                     x_T, MultistepState(), len(levels) - 1, spec, **loop)


@torch.no_grad()
def dpm_solver_pp(denoiser, x_T: torch.Tensor, sigmas, *, order: int = 2, solver_type: str = "midpoint",
                  generator: torch.Generator | None = None,
                  progress: bool = False, record_every: int | None = None,
                  callback: Callable | None = None, max_norm: float | None = None) -> SamplerResult:
    r"""DPM-Solver++ of ``order`` 1, 2 (2M) or 3 (3M) (module docstring): ``len(sigmas) - 1`` steps
    of :func:`dpm_solver_pp_step`, one denoiser call each, from ``x_T`` at ``sigmas[0]``;
    ``solver_type`` ``"midpoint"`` (Lu et al.'s Algorithm 2) or ``"heun"`` (the Taylor coefficient).

    :param denoiser: a noise-conditional ``D(x, sigma)``, as for
        :func:`~scoredae.sampling.edm.edm_sampler`.
    :param sigmas: :math:`\sigma_0 > \dots > \sigma_N \ge 0`, e.g. :func:`~scoredae.sampling.edm.karras_sigmas`.
    :param generator: unused (the ODE is deterministic); accepted for the samplers' one signature.
    """
    if order not in (1, 2, 3):
        raise ValueError(f"order: DPM-Solver++ has orders 1, 2 (2M) and 3 (3M), got {order!r}")
    if solver_type not in SOLVER_TYPES:
        raise ValueError(f"solver_type: expected one of {SOLVER_TYPES}, got {solver_type!r}")
    return _multistep(partial(dpm_solver_pp_step, solver_type=solver_type), "DPM-Solver++", denoiser, x_T, sigmas,
                      order, generator, {"progress": progress, "record_every": record_every, "callback": callback,
                                         "max_norm": max_norm})


@torch.no_grad()
def ipndm(denoiser, x_T: torch.Tensor, sigmas, *, order: int = 4,
          generator: torch.Generator | None = None,
          progress: bool = False, record_every: int | None = None, callback: Callable | None = None,
          max_norm: float | None = None) -> SamplerResult:
    r"""iPNDM of ``order`` 1 to 4 (module docstring): ``len(sigmas) - 1`` steps of :func:`ipndm_step`,
    one denoiser call each, from ``x_T`` at ``sigmas[0]``; arguments as for :func:`dpm_solver_pp`."""
    if order not in ADAMS_BASHFORTH:
        raise ValueError(f"order: iPNDM has orders 1 to 4, got {order!r}")
    return _multistep(ipndm_step, "iPNDM", denoiser, x_T, sigmas, order, generator,
                      {"progress": progress, "record_every": record_every, "callback": callback, "max_norm": max_norm})


class UniPCState(NamedTuple):
    """UniPC's state beside ``x``: the newest outputs and their levels (newest first), the point the
    last step started from (its corrected value) and that step's order."""

    outputs: tuple = ()
    levels: tuple = ()
    start: torch.Tensor | None = None
    order: int = 0


def _unipc_weights(h: float, ratios: list[float]) -> list[float]:
    r"""The :math:`\rho` solving :math:`R \rho = b` of the module docstring for the nodes ``ratios``."""
    if len(ratios) == 1:
        return [0.5]
    g, b, factorial = math.expm1(-h), [], 1
    for k in range(1, len(ratios) + 1):
        g = g / -h - 1 / factorial
        b.append(factorial * g / math.expm1(-h))
        factorial *= k + 1
    rows = torch.tensor([[r ** (k - 1) for r in ratios] for k in range(1, len(ratios) + 1)], dtype=torch.float64)
    return torch.linalg.solve(rows, torch.tensor(b, dtype=torch.float64)).tolist()


def _unipc_update(x: torch.Tensor, outputs: tuple, levels: tuple, t_next: float, order: int,
                  new_output: torch.Tensor | None = None) -> torch.Tensor:
    r"""UniP-``order`` from ``x`` at ``levels[0]`` to ``t_next``, or UniC-``order`` with
    ``new_output`` (the output at the predicted point), module docstring."""
    s, d0 = levels[0], outputs[0]
    if t_next == 0:
        return d0
    h = math.log(s / t_next)
    ratios = [math.log(s / s_i) / h for s_i in levels[1:order]]
    deltas = [(d_i - d0) / r for d_i, r in zip(outputs[1:order], ratios)]
    if new_output is not None:
        ratios, deltas = [*ratios, 1.0], [*deltas, new_output - d0]
    correction = sum(rho * delta for rho, delta in zip(_unipc_weights(h, ratios), deltas)) if deltas else 0
    return (t_next / s) * x - math.expm1(-h) * (d0 + correction)


@torch.no_grad()
def unipc(denoiser, x_T: torch.Tensor, sigmas, *, order: int = 2, corrector: bool = True,
          generator: torch.Generator | None = None,
          progress: bool = False, record_every: int | None = None, callback: Callable | None = None,
          max_norm: float | None = None) -> SamplerResult:
    r"""UniPC of ``order`` 1 to 3 (module docstring): ``len(sigmas) - 1`` steps, one denoiser call
    each, the corrector at every call after the first (``corrector=False``: the predictor alone,
    UniP); arguments as for :func:`dpm_solver_pp`."""
    if order not in (1, 2, 3):
        raise ValueError(f"order: UniPC here has orders 1 to 3, got {order!r}")
    require_every_level(denoiser, "UniPC")
    check_chain_inputs(x_T, generator, name="x_T")
    levels = decreasing_levels("sigmas", sigmas, final_zero=True)
    n = len(levels) - 1

    def step(x, state: UniPCState, k: int):
        t = levels[k - 1]
        d = denoiser(x, t)
        if corrector and state.start is not None:
            x = _unipc_update(state.start, state.outputs, state.levels, t, state.order, new_output=d)
        outputs, kept = (d, *state.outputs)[:order], (t, *state.levels)[:order]
        this_order = min(order, n - k + 1, len(outputs))
        return _unipc_update(x, outputs, kept, levels[k], this_order), UniPCState(outputs, kept, x, this_order)

    spec = LoopSpec(f"UniPC, order {order}", hint="; check that the denoiser covers the levels of sigmas",
                    level_of=lambda k: levels[k - 1], stationary=False)
    return run_chain(step, x_T, UniPCState(), n, spec, progress=progress, record_every=record_every,
                     callback=callback, max_norm=max_norm)
