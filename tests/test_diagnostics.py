"""ESS and split-R-hat against chains whose answers are known: iid draws, AR(1), shifted chains."""

import numpy as np
import pytest
import torch
from scipy.signal import lfilter

from scoredae.sampling import effective_sample_size, split_rhat


def ar1(n_chains: int, n_draws: int, phi: float, seed: int) -> torch.Tensor:
    """Stationary AR(1) chains x_t = phi x_{t-1} + z_t, shape (M, N), variance 1 / (1 - phi^2)."""
    z = np.random.default_rng(seed).standard_normal((n_chains, n_draws))
    z[:, 0] /= np.sqrt(1 - phi**2)  # start in the stationary law
    return torch.from_numpy(lfilter([1.0], [1.0, -phi], z, axis=1))


# Relative spread (sd of ESS / exact) of the estimator over 100 seeds at M = 4, N = 5000, measured:
# 0.022 (phi = 0), 0.032 (phi = 0.5), 0.055 (phi = -0.5). The tolerance is 5 of those, each below
# the 0.5 a factor-2 error would make.
@pytest.mark.parametrize("phi, spread", [(0.0, 0.022), (0.5, 0.032), (-0.5, 0.055)])
def test_ess_of_ar1_matches_exact_integrated_autocorrelation(phi, spread):
    """ESS = MN (1 - phi) / (1 + phi): iid (phi = 0), positively and negatively correlated chains."""
    chains = ar1(4, 5000, phi, seed=1)
    exact = 4 * 5000 * (1 - phi) / (1 + phi)
    ratio = float(effective_sample_size(chains)) / exact
    assert abs(ratio - 1) < 5 * spread < 0.5


def test_ess_per_event_entry_and_shapes():
    """(M, N, 2, 3) -> (2, 3); an entry that is iid gets ~MN, an AR(0.9) one ~MN / 19."""
    iid, slow = ar1(4, 5000, 0.0, seed=2), ar1(4, 5000, 0.9, seed=3)
    chains = torch.stack([iid, slow], dim=-1)[..., None].expand(4, 5000, 2, 3)
    ess = effective_sample_size(chains)
    assert ess.shape == (2, 3) and ess.dtype == torch.float64
    assert torch.all((ess[0] / 20000 - 1).abs() < 0.11)
    assert torch.all((ess[1] / (20000 * 0.1 / 1.9) - 1).abs() < 0.45)  # spread 0.085 at phi = 0.9


def test_split_rhat_classic_matches_formula_for_shifted_chains():
    """Chains with means mu_m and unit variance: R-hat^2 -> 1 + s^2, s^2 the sample variance of the
    2M half-chain means (both halves of chain m have mean mu_m). Spread over seeds: 0.001."""
    mu = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64)
    chains = ar1(4, 5000, 0.0, seed=4) + mu[:, None]
    exact = float(torch.sqrt(1 + mu.repeat_interleave(2).var()))  # 1.102
    assert abs(float(split_rhat(chains, rank_normalized=False)) - exact) < 0.005
    assert float(split_rhat(chains)) > 1.05  # the rank-normalised version flags it too


def test_split_rhat_is_one_for_iid_and_catches_a_stuck_half():
    chains = ar1(4, 2000, 0.0, seed=5)
    for rank_normalized in (True, False):
        assert abs(float(split_rhat(chains, rank_normalized)) - 1) < 0.01
    drift = chains + torch.linspace(0, 2, 2000, dtype=torch.float64)  # the two halves disagree
    assert float(split_rhat(drift)) > 1.05


def test_rank_normalized_rhat_is_invariant_and_robust():
    """Monotone transforms leave it unchanged; on Cauchy draws it still reads ~1; a scale mismatch
    (same centre) is caught by the folded (tail) part while the classic R-hat misses it."""
    chains = ar1(4, 2000, 0.3, seed=6)
    torch.testing.assert_close(split_rhat(torch.exp(chains)), split_rhat(chains), rtol=1e-12, atol=1e-12)
    cauchy = torch.from_numpy(np.random.default_rng(7).standard_cauchy((4, 2000)))
    assert abs(float(split_rhat(cauchy)) - 1) < 0.01
    scaled = ar1(4, 2000, 0.0, seed=8) * torch.tensor([1.0, 1.0, 1.0, 3.0], dtype=torch.float64)[:, None]
    assert float(split_rhat(scaled)) > 1.05 and abs(float(split_rhat(scaled, rank_normalized=False)) - 1) < 0.01


def test_diagnostics_refuse_bad_input():
    with pytest.raises(ValueError, match="chains"):
        effective_sample_size(torch.zeros(10))
    with pytest.raises(ValueError, match="at least 4 draws"):
        split_rhat(torch.zeros(2, 3))
