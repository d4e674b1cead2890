r"""Post-hoc EMA (Karras et al. 2024, EDM2, "Analyzing and improving the training dynamics of
diffusion models", Sec. 3.2 and Appendix C): choose the length of the weights' average after
training, from snapshots of power-function averages.

A power-function EMA of exponent :math:`\gamma` (:class:`~scoredae.train.state.EMA` with ``std``)
read at step :math:`t` averages the weights :math:`\theta_\tau, \tau \le t`, with the profile

.. math::
    p_{t, \gamma}(\tau) = \frac{(\gamma + 1)\, \tau^\gamma}{t^{\gamma + 1}}, \quad 0 \le \tau \le t,

whose relative width (standard deviation over :math:`t`) is
:math:`\sqrt{(\gamma+1) / ((\gamma+2)^2 (\gamma+3))}`. The inner product of two profiles is closed
form (their Algorithm 3): for :math:`t_a \le t_b`,

.. math::
    \langle p_a, p_b \rangle = \int_0^{t_a} p_a p_b\, d\tau
    = \frac{(\gamma_a + 1)(\gamma_b + 1)}{(\gamma_a + \gamma_b + 1)\, t_b} \Big(\frac{t_a}{t_b}\Big)^{\gamma_b}.

The average with any other profile :math:`p^*` is approximated by the combination
:math:`\sum_i c_i \theta^{(i)}` of the snapshots whose profiles best fit it in :math:`L^2`:
:math:`c = G^{-1} b`, :math:`G_{ij} = \langle p_i, p_j \rangle`, :math:`b_i = \langle p_i, p^* \rangle`,
normalised to sum to one. Since every profile is linear in the weights it averages, the same
coefficients combine the snapshots' weights.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from ..nets.checkpoints import build_model, load_weights, read_checkpoint, save_checkpoint
from ..nets.registry import constructors
from .state import power_exponent


def profile_inner_products(steps_a, stds_a, steps_b, stds_b) -> np.ndarray:
    r""":math:`\langle p_{a_i}, p_{b_j} \rangle` (module docstring) for profiles read at ``steps``
    with relative widths ``stds``: shape ``(len(a), len(b))``."""
    t_a, t_b = np.asarray(steps_a, float)[:, None], np.asarray(steps_b, float)[None, :]
    g_a = np.array([power_exponent(s) for s in stds_a])[:, None]
    g_b = np.array([power_exponent(s) for s in stds_b])[None, :]
    ratio = np.minimum(t_a, t_b) / np.maximum(t_a, t_b)
    exponent = np.where(t_a <= t_b, g_b, g_a)  # the exponent of the longer profile
    return (g_a + 1) * (g_b + 1) / ((g_a + g_b + 1) * np.maximum(t_a, t_b)) * ratio**exponent


def posthoc_coefficients(steps, stds, target_step: float, target_std: float) -> np.ndarray:
    """The coefficients (one per snapshot) whose combination of the snapshot profiles best fits
    the profile of relative width ``target_std`` read at ``target_step``, summing to one."""
    gram = profile_inner_products(steps, stds, steps, stds)
    rhs = profile_inner_products(steps, stds, [target_step], [target_std])[:, 0]
    c = np.linalg.solve(gram, rhs)
    return c / c.sum()


def snapshots(run: str | os.PathLike) -> list[dict]:
    """The power-function EMA snapshots of a training run's folder (``snapshots/phema-*``), oldest
    first: ``{"stem", "step", "std"}`` each."""
    found = []
    for meta_path in sorted(Path(run, "snapshots").glob("phema-*.json")):
        meta = json.loads(meta_path.read_text())
        found.append({"stem": meta_path.with_suffix(""), "step": meta["step"], "std": meta["phema_std"]})
    if not found:
        raise ValueError(f"run: {run} holds no power-function EMA snapshots (train with --phema and --snapshot-every)")
    return sorted(found, key=lambda s: (s["step"], s["std"]))


def posthoc_ema(run: str | os.PathLike, std: float, step: int | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """The weights of the power-function EMA of relative width ``std`` at ``step`` (default: the
    last snapshot's), reconstructed from the snapshots of ``run`` written up to that step, with
    the metadata of the last of them and the reconstruction (``posthoc``: std, step, coefficients)."""
    found = snapshots(run)
    step = found[-1]["step"] if step is None else step
    used = [s for s in found if s["step"] <= step]
    if not used:
        raise ValueError(f"step: no snapshot of {run} is as early as step {step}")
    c = posthoc_coefficients([s["step"] for s in used], [s["std"] for s in used], step, std)
    combined: dict[str, torch.Tensor] = {}
    for coefficient, snap in zip(c, used):
        tensors, _, meta = read_checkpoint(snap["stem"])
        for k, v in tensors.items():  # floating weights combined in float64; integer buffers: the latest
            combined[k] = combined.get(k, 0) + coefficient * v.double() if v.is_floating_point() else v
    dtypes = {k: v.dtype for k, v in tensors.items()}  # those of the last snapshot read
    posthoc = {"std": std, "step": step, "snapshots": len(used), "largest coefficient": float(np.abs(c).max())}
    return {k: v.to(dtypes[k]) for k, v in combined.items()}, {**meta, "step": step, "posthoc_ema": posthoc}


def save_posthoc_ema(run: str | os.PathLike, std: float, out: str | os.PathLike, step: int | None = None) -> Path:
    """Write the post-hoc EMA of relative width ``std`` at ``step`` (:func:`posthoc_ema`) as the
    checkpoint ``out`` (``out.safetensors`` and ``out.json``), loadable like any other; return the
    weights' path."""
    weights, meta = posthoc_ema(run, std, step)
    model = build_model(meta, constructors(), run)
    load_weights(model, weights, f"the post-hoc EMA of {run}")
    meta = {k: v for k, v in meta.items() if k != "phema_std"}
    return save_checkpoint(out, model, meta)
