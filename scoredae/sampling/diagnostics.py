r"""MCMC diagnostics: effective sample size and split-:math:`\hat R` (Vehtari et al. 2021).

Both take ``chains`` of shape ``(M, N, *event)``: M chains of N draws each (e.g. a sampler's
``trajectory`` after burn-in, ``result.trajectory[:, first_kept:]``), and return one value per
event entry, shape ``event``, as float64 tensors. They are post-processing, computed in float64
on the CPU.

Notation, per scalar quantity: :math:`\theta_{nm}` draw n of chain m, :math:`W` the mean
within-chain variance, :math:`B/N` the variance of the chain means, and

.. math::
    \widehat{\operatorname{var}}^+ = \frac{N - 1}{N} W + \frac{B}{N}.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import special, stats


def _as_draws(chains: torch.Tensor, min_draws: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """(M, N, *event) -> float64 array (M, N, P) and the event shape."""
    if not isinstance(chains, torch.Tensor) or chains.ndim < 2:
        raise ValueError(f"chains: expected a tensor (n_chains, n_draws, *event), got {getattr(chains, 'shape', chains)!r}")
    if chains.shape[1] < min_draws:
        raise ValueError(f"chains: expected at least {min_draws} draws per chain, got {chains.shape[1]}")
    draws = chains.detach().to("cpu", torch.float64).numpy()
    if not np.isfinite(draws).all():
        raise ValueError("chains: expected finite draws, got NaN or inf (did a chain diverge?)")
    return draws.reshape(*draws.shape[:2], -1), tuple(chains.shape[2:])  # (M, N, P)


def _var_plus(draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """W and var+ for draws (M, N, P), each (P,)."""
    n = draws.shape[1]
    within = draws.var(axis=1, ddof=1).mean(0)
    between = draws.mean(axis=1).var(axis=0, ddof=1) if draws.shape[0] > 1 else 0.0  # B / N
    return within, (n - 1) / n * within + between


def effective_sample_size(chains: torch.Tensor) -> torch.Tensor:
    r"""Multi-chain effective sample size of the mean (Vehtari et al. 2021; Geyer 1992), as in Stan.

    With the per-chain autocovariances :math:`\hat\gamma_{t,m}` (FFT, divisor N), the combined
    autocorrelation is :math:`\hat\rho_t = 1 - (W - \tfrac1M \sum_m \hat\gamma_{t,m}) /
    \widehat{\operatorname{var}}^+`, and

    .. math::
        \hat\tau = -1 + 2 \sum_{k=0}^{K} \hat P_k, \qquad \hat P_k = \hat\rho_{2k} + \hat\rho_{2k+1},
        \qquad \mathrm{ESS} = MN / \hat\tau,

    where :math:`\hat P_k` is made monotone (Geyer's initial monotone sequence: a running minimum)
    and the sum stops before the first non-positive :math:`\hat P_k`; :math:`\hat\tau` is floored at
    :math:`1 / \log_{10}(MN)` as in Stan. For iid draws ESS :math:`\approx MN`; for an AR(1) chain
    with coefficient :math:`\phi`, ESS :math:`\approx MN (1 - \phi) / (1 + \phi)`.

    :param chains: ``(M, N, *event)`` with N >= 4.
    :return: ESS, shape ``event``.
    """
    draws, event = _as_draws(chains, 4)
    m, n, _ = draws.shape
    centred = draws - draws.mean(axis=1, keepdims=True)
    spectrum = np.fft.rfft(centred, n=2 * n, axis=1)
    acov = np.fft.irfft(spectrum * spectrum.conj(), axis=1)[:, :n] / n  # (M, N, P), divisor N
    within, var_plus = _var_plus(draws)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = 1 - (within - acov.mean(0)) / var_plus  # (N, P)
    pairs = rho[: 2 * (n // 2)].reshape(n // 2, 2, -1).sum(1)  # P_k, (N // 2, P)
    positive = np.cumprod(pairs > 0, axis=0).astype(bool)  # before the first non-positive pair
    monotone = np.minimum.accumulate(np.where(positive, pairs, np.inf), axis=0)
    tau = -1 + 2 * np.where(positive, monotone, 0.0).sum(0)
    tau = np.maximum(tau, 1 / math.log10(m * n))
    return torch.from_numpy(m * n / tau).reshape(event)


def _split(draws: np.ndarray) -> np.ndarray:
    """Each chain cut in two halves (the middle draw dropped when N is odd): (2M, N // 2, P)."""
    half = draws.shape[1] // 2
    return np.concatenate([draws[:, :half], draws[:, -half:]], axis=0)


def _rhat(draws: np.ndarray) -> np.ndarray:
    within, var_plus = _var_plus(draws)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(var_plus / within)


def _rank_normal(draws: np.ndarray) -> np.ndarray:
    r"""Normal scores of the pooled ranks, :math:`\Phi^{-1}((r - 3/8) / (S + 1/4))` (Vehtari et al. 2021, Blom's offset)."""
    size = draws.shape[0] * draws.shape[1]
    ranks = stats.rankdata(draws.reshape(size, -1), axis=0).reshape(draws.shape)  # ties get mean ranks
    return special.ndtri((ranks - 3 / 8) / (size + 1 / 4))


def split_rhat(chains: torch.Tensor, rank_normalized: bool = True) -> torch.Tensor:
    r"""Split-:math:`\hat R`: the potential scale reduction :math:`\sqrt{\widehat{\operatorname{var}}^+ / W}`
    over the 2M half-chains (Gelman et al. 2013, BDA3 eq. 11.4).

    ``rank_normalized=True`` (default) is Vehtari et al. 2021: the maximum of the
    bulk :math:`\hat R` of the rank-normalised draws and the tail :math:`\hat R` of the
    rank-normalised folded draws :math:`|\theta - \operatorname{median}\theta|`; it is invariant to
    monotone transforms and defined for heavy tails. ``rank_normalized=False`` is the classic
    split-:math:`\hat R` of the raw draws. Values near 1 mean the chains agree; above 1.01 they do
    not (Vehtari et al. 2021 recommend 1.01).

    :param chains: ``(M, N, *event)`` with N >= 4.
    :return: :math:`\hat R`, shape ``event``.
    """
    draws, event = _as_draws(chains, 4)
    split = _split(draws)  # (2M, N // 2, P)
    if rank_normalized:
        folded = np.abs(split - np.median(split.reshape(-1, split.shape[-1]), axis=0))
        rhat = np.maximum(_rhat(_rank_normal(split)), _rhat(_rank_normal(folded)))
    else:
        rhat = _rhat(split)
    return torch.from_numpy(rhat).reshape(event)
