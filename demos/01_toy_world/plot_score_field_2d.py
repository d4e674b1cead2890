r"""
Score fields of a 2D Gaussian mixture, and how noise smooths them
=================================================================

The score :math:`\nabla_x \log p(x)` points towards higher density. For a mixture
:math:`p = \sum_k w_k \mathcal N(\mu_k, \Sigma_k)` it is
:math:`-\sum_k r_k(x)\, \Sigma_k^{-1}(x - \mu_k)`, a responsibility-weighted pull towards each mode.

Adding noise :math:`y = x + \sigma n` convolves the density with :math:`\mathcal N(0, \sigma^2 I)`:
:math:`p_\sigma` is the mixture with covariances :math:`\Sigma_k + \sigma^2 I`. Large :math:`\sigma`
blurs the modes into one blob whose score is informative everywhere; small :math:`\sigma` keeps
the detail but leaves the space between modes with nearly no density, which is why annealed
Langevin goes from large to small noise.
"""

# %%
import matplotlib.pyplot as plt
import torch

from scoredae import GaussianMixture
from scoredae.viz import plot_noised_densities, plot_score_field

F64 = torch.float64  # the exact math in double precision, asked for explicitly
angles = torch.arange(4, dtype=F64) * torch.pi / 2 + torch.pi / 4
means = 2.2 * torch.stack([angles.cos(), angles.sin()], dim=1)
mixture = GaussianMixture(torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=F64), means, torch.tensor([0.15, 0.3, 0.2, 0.25], dtype=F64))

# %%
# The density and its score field, clean and noised.
fig, axes = plt.subplots(1, 3, figsize=(14, 4.5))
for ax, sigma in zip(axes, [0.0, 0.5, 1.5]):
    plot_score_field(mixture, sigma, ax=ax)
fig.tight_layout()

# %%
# The noised densities :math:`p_\sigma` for a range of noise levels.
plot_noised_densities(mixture, [0.0, 0.3, 0.7, 1.2, 2.0])
