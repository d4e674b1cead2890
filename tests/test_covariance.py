"""The structured covariances (isotropic, diagonal, factor analysers, diagonal plus low rank) against
the same mixture held by full matrices: every exact quantity equal to 1e-10, and draws with the right
moments."""

import pytest
import torch

from scoredae import GaussianMixture
from scoredae.mixtures import LowRank
from scoredae.mixtures.covariance import DiagonalPlusLowRank, FullCovariance

F64 = torch.float64


def _pair(variances):
    """The same mixture twice: structured (``variances`` (K,) or (K, d)) and with full matrices."""
    gen = torch.Generator().manual_seed(0)
    means = 3 * torch.randn(4, 6, generator=gen, dtype=F64)
    weights = torch.rand(4, generator=gen, dtype=F64) + 0.2
    weights = weights / weights.sum()
    structured = GaussianMixture(weights, means, variances)
    return structured, GaussianMixture(weights, means, structured.covs.clone())


_GEN = torch.Generator().manual_seed(1)
CASES = {"isotropic": torch.tensor([0.5, 1.0, 2.0, 0.3], dtype=F64),
         "diagonal": torch.rand(4, 6, generator=_GEN, dtype=F64) + 0.2,
         "low rank": LowRank(torch.randn(4, 6, 2, generator=_GEN, dtype=F64),
                             torch.rand(4, 6, generator=_GEN, dtype=F64) + 0.2)}
MASK = torch.eye(6, dtype=F64)[[0, 3]]  # a selection: the posterior in precision form


def close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", CASES)
def test_structured_mixture_equals_the_full_one(case):
    structured, full = _pair(CASES[case])
    assert isinstance(structured.covariance, DiagonalPlusLowRank)
    assert isinstance(full.covariance, FullCovariance)
    gen = torch.Generator().manual_seed(2)
    x = 3 * torch.randn(9, 6, generator=gen, dtype=F64)
    A = torch.randn(2, 6, generator=gen, dtype=F64)
    y = torch.randn(9, 2, generator=gen, dtype=F64)
    square = torch.randn(6, 6, generator=gen, dtype=F64)  # q + m >= d: the posterior as full matrices
    for sigma in (0.0, 0.7, 20.0):
        for a, b in zip(structured.log_prob_and_score(x, sigma), full.log_prob_and_score(x, sigma)):
            close(a, b)
    close(structured.mmse(x, 0.4), full.mmse(x, 0.4))
    for op, obs, noise in ((A, y, 0.3), (2 * MASK, y, 0.3), (None, x, 0.5), (square, x, 0.3)):
        ps, pf = structured.posterior(obs, noise, op), full.posterior(obs, noise, op)
        for a, b in ((ps.weights, pf.weights), (ps.means, pf.means), (ps.log_evidence, pf.log_evidence),
                     (ps.covs, pf.covs), (ps.median(), pf.median())):
            close(a, b)
        for a, b in zip(ps.log_prob_and_score(x[:1], 0.2), pf.log_prob_and_score(x[:1], 0.2)):
            close(a, b)
    for op in (A, MASK):
        for a, b in zip(structured.noised_likelihood(x, 0.8, y[:1], 0.3, op),
                        full.noised_likelihood(x, 0.8, y[:1], 0.3, op)):
            close(a, b)
    u = torch.randn(6, 3, generator=gen, dtype=F64)
    post = structured.posterior(y[:1], 0.3, A)
    close(post.covariance.quadratic(u), torch.einsum("dl,kde,el->kl", u, post.covs, u))


def test_a_diagonal_plus_low_rank_covariance_matches_its_matrices():
    gen = torch.Generator().manual_seed(3)
    k, d, q = 3, 7, 2
    delta = torch.rand(k, d, generator=gen, dtype=F64) + 0.5
    factors = torch.randn(k, d, q, generator=gen, dtype=F64)
    middle = torch.tensor([[0.8, 0.1], [0.1, -0.05]], dtype=F64).expand(k, q, q)  # indefinite, the sum still definite
    cov = DiagonalPlusLowRank(delta, factors, middle)
    dense = cov.dense()
    assert bool((torch.linalg.eigvalsh(dense) > 0).all())
    r = torch.randn(5, k, d, generator=gen, dtype=F64)
    quad, solved = cov.quadratic_and_solve(r)
    exact = torch.linalg.solve(dense, r.unsqueeze(-1)).squeeze(-1)
    close(solved, exact)
    close(quad, (r * exact).sum(-1))
    close(cov.log_det, torch.linalg.slogdet(dense)[1])
    close(cov.diagonal(), torch.diagonal(dense, dim1=-2, dim2=-1))


def test_draws_have_the_structured_covariance():
    """The square root of a signed low-rank update: the sample covariance of 40,000 draws of each
    component of an exact posterior (a diagonal minus a rank-2 term) within 5 standard errors."""
    structured, _ = _pair(CASES["diagonal"])
    gen = torch.Generator().manual_seed(4)
    A = torch.randn(2, 6, generator=gen, dtype=F64)
    cov = structured.posterior(torch.zeros(1, 2, dtype=F64), 0.2, A).covariance
    n = 40_000
    eps = torch.randn(n, 6, generator=gen, dtype=F64)
    for k in range(4):
        draws = cov.draw(eps, torch.full((n,), k))
        target = cov.dense()[k]
        sd = torch.sqrt((torch.outer(torch.diagonal(target), torch.diagonal(target)) + target**2) / n)
        assert bool(((draws.T @ draws / n - target).abs() <= 5 * sd).all())
    with pytest.raises(ValueError, match="positive-definite"):
        DiagonalPlusLowRank(torch.ones(1, 3, dtype=F64), torch.ones(1, 3, 1, dtype=F64),
                            -torch.ones(1, 1, 1, dtype=F64)).quadratic_and_solve(torch.ones(1, 1, 3, dtype=F64))


def test_a_masked_posterior_keeps_the_rank_of_the_prior():
    """A selection (a mask): the posterior covariance is the diagonal plus rank r, not r + m."""
    structured, _ = _pair(CASES["low rank"])
    post = structured.posterior(torch.zeros(1, 2, dtype=F64), 0.3, MASK)
    assert post.covariance.factors.shape == (4, 6, 2)
    general = structured.posterior(torch.zeros(1, 2, dtype=F64), 0.3, MASK + 1e-3)
    assert general.covariance.factors.shape == (4, 6, 4)


@pytest.mark.parametrize("factors, diagonal, match", [
    (torch.ones(2, 5), torch.ones(2, 5), "factors: expected shape"),
    (torch.ones(2, 5, 3), torch.ones(2, 4), "diagonal: expected shape"),
    (torch.ones(2, 5, 3), -torch.ones(2, 5), "diagonal: every variance must be > 0"),
    (torch.ones(2, 3, 4), torch.ones(2, 3), "rank r = 4 is larger than the dimension d = 3"),
    (torch.full((2, 5, 3), float("nan")), torch.ones(2, 5), "factors"),
])
def test_low_rank_refuses_bad_factors(factors, diagonal, match):
    with pytest.raises(ValueError, match=match):
        LowRank(factors, diagonal)
