"""log_prob + score of 10^6 points in 2D for a K = 64 mixture, against scikit-learn's
GaussianMixture.score_samples (log-density only) on the same mixture, in one run.

Target: ours (log-density and score together) takes no longer than scikit-learn's log-density.
Run: python benchmarks/bench_mixture.py
"""

import time

import numpy as np
import torch
from sklearn.mixture import GaussianMixture as SkMixture

from scoredae import GaussianMixture

N, K, D, REPEATS = 1_000_000, 64, 2, 3


def best_time(fn) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    g = torch.Generator().manual_seed(0)
    weights = torch.softmax(torch.randn(K, generator=g, dtype=torch.float64), 0)
    means = 5 * torch.randn(K, D, generator=g, dtype=torch.float64)
    root = torch.randn(K, D, D, generator=g, dtype=torch.float64)
    covs = root @ root.transpose(-1, -2) + 0.1 * torch.eye(D, dtype=torch.float64)
    ours = GaussianMixture(weights, means, covs)
    x = ours.sample(N, generator=g)

    sk = SkMixture(n_components=K, covariance_type="full")
    sk.weights_, sk.means_, sk.covariances_ = weights.numpy(), means.numpy(), covs.numpy()
    sk.precisions_cholesky_ = np.linalg.cholesky(np.linalg.inv(covs.numpy()))
    xn = x.numpy()
    np.testing.assert_allclose(sk.score_samples(xn[:1000]), ours.log_prob(x[:1000]).numpy(), rtol=1e-9)

    t_sk = best_time(lambda: sk.score_samples(xn))
    t_ours = best_time(lambda: ours.log_prob_and_score(x))
    t_lp = best_time(lambda: ours.log_prob(x))
    print(f"{N:,} points, d = {D}, K = {K}, float64, {torch.get_num_threads()} threads, best of {REPEATS}")
    print(f"{'method':<44}{'seconds':>10}")
    print(f"{'scikit-learn score_samples (log-density)':<44}{t_sk:>10.3f}")
    print(f"{'scoredae log_prob':<44}{t_lp:>10.3f}")
    print(f"{'scoredae log_prob_and_score':<44}{t_ours:>10.3f}")
    print(f"ratio ours(log_prob + score) / sklearn(log_prob): {t_ours / t_sk:.2f}  (target <= 1.00)")


if __name__ == "__main__":
    main()
