r"""Gaussian mixtures: the prior whose every quantity in the score chain is closed form.

For :math:`p(x) = \sum_k w_k\, \mathcal N(x; \mu_k, \Sigma_k)` in :math:`\mathbb R^d`:

* the noised density :math:`p_\sigma = p * \mathcal N(0, \sigma^2 I)` is the mixture with
  covariances :math:`\Sigma_k + \sigma^2 I`;
* its score is :math:`\nabla \log p_\sigma(x) = -\sum_k r_k(x)\,(\Sigma_k + \sigma^2 I)^{-1}(x - \mu_k)`,
  with responsibilities :math:`r_k(x) \propto w_k\, \mathcal N(x; \mu_k, \Sigma_k + \sigma^2 I)`;
* the posterior of :math:`x` given :math:`y = A x + \sigma n` is again a mixture
  (:class:`MixturePosterior`), and for :math:`A = I` its mean is Tweedie's
  :math:`\mathbb E[x \mid y] = y + \sigma^2 \nabla \log p_\sigma(y)`.

Everything is computed in the log domain. Full covariances go through Cholesky factors: with
:math:`L_k L_k^\top = \Sigma_k` and :math:`z_k = L_k^{-1}(x - \mu_k)`,
:math:`\log \mathcal N(x; \mu_k, \Sigma_k) = -\tfrac12 \lVert z_k\rVert^2 - \sum_i \log (L_k)_{ii}
- \tfrac d2 \log 2\pi` and :math:`\Sigma_k^{-1}(x - \mu_k) = L_k^{-\top} z_k`. Isotropic and diagonal
covariances, and every posterior and noised form of them, keep their structure, a diagonal plus a
low-rank term, and go through the Woodbury identity (:mod:`~scoredae.mixtures.covariance`), as do
factor analysers, :math:`\Sigma_k = F_k F_k^\top + \operatorname{diag}(\psi_k)` (:class:`LowRank`).
"""

from .covariance import LowRank
from .denoiser import MixtureDenoiser
from .gaussian_mixture import GaussianMixture
from .posterior import MixturePosterior, mixture_quantile

__all__ = ["GaussianMixture", "LowRank", "MixtureDenoiser", "MixturePosterior", "mixture_quantile"]
