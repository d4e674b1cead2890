r"""
Prior, likelihood, posterior: MMSE versus MAP in 1D
====================================================

We observe :math:`y = x + \sigma n` with :math:`n \sim \mathcal N(0, 1)` and a prior :math:`p(x)`.
Bayes' rule gives the posterior :math:`p(x \mid y) \propto p(y \mid x)\, p(x)`. Two estimators
summarise it: the **MMSE** estimate :math:`\mathbb E[x \mid y]` (what a denoiser trained with the
squared error learns) and the **MAP** :math:`\arg\max_x p(x \mid y)`.

For a Gaussian prior the posterior is Gaussian, and the two coincide. For a bimodal mixture prior
they do not: the posterior mean can sit in the low-density valley between the modes, where no
sample of the prior would ever fall, while the MAP picks one mode.
"""

# %%
# A Gaussian prior: the posterior is Gaussian, its mean is its mode.
import matplotlib.pyplot as plt
import torch

from scoredae import GaussianMixture
from scoredae.viz import plot_estimators_1d, plot_posterior_1d

F64 = torch.float64  # the exact math in double precision, asked for explicitly
gaussian = GaussianMixture(torch.tensor([1.0], dtype=F64), torch.tensor([[0.0]], dtype=F64), torch.tensor([1.0], dtype=F64))
bimodal = GaussianMixture(torch.tensor([0.5, 0.5], dtype=F64), torch.tensor([[-2.0], [2.0]], dtype=F64), torch.tensor([0.35, 0.35], dtype=F64))

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
plot_posterior_1d(gaussian, y=2.0, sigma=1.0, ax=axes[0])
axes[0].set_title("Gaussian prior: MMSE = MAP")
plot_posterior_1d(bimodal, y=0.3, sigma=1.0, ax=axes[1])
axes[1].set_title("bimodal prior: the mean falls in the valley")
fig.tight_layout()

# %%
# The estimators as functions of :math:`y`. The posterior mean
# :math:`\mathbb E[x \mid y] = y + \sigma^2 \frac{d}{dy}\log p_\sigma(y)` (Tweedie) is smooth; the MAP
# jumps from one mode to the other as :math:`y` crosses the middle.
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
plot_estimators_1d(gaussian, sigma=1.0, ax=axes[0])
plot_estimators_1d(bimodal, sigma=1.0, ax=axes[1])
fig.tight_layout()

post = bimodal.posterior(torch.tensor([[0.3]], dtype=F64), 1.0)
print(f"bimodal prior, y = 0.3: MMSE = {post.mean().item():.3f}, MAP = {post.mode().item():.3f}")
