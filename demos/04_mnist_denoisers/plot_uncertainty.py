r"""
What the denoiser knows beyond the mean: second-order Tweedie
=============================================================

The MMSE denoiser's Jacobian is the posterior covariance over :math:`\sigma^2`,

.. math::
    \operatorname{Cov}[x \mid y] = \sigma^2 J_D(y),

so a trained denoiser carries the uncertainty of its own answer (Manor & Michaeli 2024). On an
exact 2-D mixture the covariance ellipses from the Jacobian of :class:`~scoredae.mixtures.MixtureDenoiser`
fall on the exact ones; on MNIST at :math:`\sigma = 0.5` the shipped U-Net's Jacobian gives a
per-pixel standard deviation and the principal directions along which the digit is uncertain,
and the standard deviation from the Jacobian is set beside the one of posterior sampling.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Ellipse

from scoredae import GaussianMixture
from scoredae.data import load_mnist
from scoredae.mixtures import MixtureDenoiser
from scoredae.nets import load_pretrained
from scoredae.uncertainty import posterior_covariance, posterior_variance, principal_components

F64 = torch.float64
prior = GaussianMixture(
    torch.tensor([0.5, 0.3, 0.2], dtype=F64),
    torch.tensor([[-1.5, -1.0], [1.5, 1.0], [1.0, -2.0]], dtype=F64),
    torch.tensor([[[0.4, 0.2], [0.2, 0.3]], [[0.3, -0.1], [-0.1, 0.5]], [[0.2, 0.0], [0.0, 0.2]]], dtype=F64),
)


def ellipse(mean, cov, **style):
    """The 2-standard-deviation ellipse of a 2-D Gaussian."""
    values, vectors = np.linalg.eigh(cov)
    angle = np.degrees(np.arctan2(vectors[1, 1], vectors[0, 1]))
    return Ellipse(mean, 4 * np.sqrt(values[1]), 4 * np.sqrt(values[0]), angle=angle, fill=False, **style)


# %%
# Posterior covariances on the exact mixture
# ------------------------------------------
# At nine observations :math:`y` (crosses), :math:`\sigma = 0.8`: the posterior mean (dots) and the
# 2-standard-deviation ellipse of :math:`\sigma^2 J_D(y)` (red) over the exact posterior covariance
# (dashed black). They agree to 1e-8 (``tests/test_uncertainty.py``).
sigma = 0.8
ys = torch.cartesian_prod(torch.tensor([-2.5, 0.0, 2.5]), torch.tensor([-2.5, 0.0, 2.5])).to(F64)
jacobian_cov = posterior_covariance(MixtureDenoiser(prior), ys, sigma)
posterior = prior.posterior(ys, sigma)
fig, ax = plt.subplots(figsize=(5.5, 5.5))
for y, mean, cov_j, cov_exact in zip(ys, posterior.mean(), jacobian_cov, posterior.cov()):
    ax.plot(*y, "x", color="0.4")
    ax.plot(*mean, ".", color="C3")
    ax.add_patch(ellipse(mean.numpy(), cov_exact.numpy(), color="k", ls="--", lw=1.5))
    ax.add_patch(ellipse(mean.numpy(), cov_j.numpy(), color="C3", lw=1))
    ax.annotate("", mean.numpy(), y.numpy(), arrowprops={"arrowstyle": "->", "color": "0.6"})
ax.set(xlim=(-4, 4), ylim=(-4, 4), aspect="equal", xlabel="$x_1$", ylabel="$x_2$",
       title=f"sigma^2 J (red) vs exact Cov[x | y] (dashed), sigma = {sigma}")
fig.tight_layout()

# %%
# An ambiguous digit
# ------------------
# A test digit at :math:`\sigma = 0.5` through the shipped U-Net: the posterior mean, the per-pixel
# standard deviation :math:`\sigma \sqrt{\operatorname{diag} J}` (64 probes), and the first three
# principal directions :math:`v_i` of :math:`\sigma^2 J`, shown as :math:`\bar x \pm 2 \sqrt{\lambda_i}\, v_i`.
unet = load_pretrained("unet")
digits, _ = load_mnist("test")
x = digits[4:5]  # a 4 with an open top, close to a 9
g = torch.Generator().manual_seed(0)
y = x + 0.5 * torch.randn(x.shape, generator=g)
with torch.no_grad():
    mean = unet(y, 0.5)
variance, _ = posterior_variance(unet, y, 0.5, n_probes=64, generator=g)
values, vectors = principal_components(unet, y, 0.5, k=3, n_iter=30, generator=g)
panels = [(x, "clean"), (y, "noisy, sigma = 0.5"), (mean, "posterior mean"), (variance.clamp(min=0).sqrt(), "posterior std")]
for i in range(3):
    step = 2 * values[0, i].sqrt() * vectors[0, i]
    panels += [(mean - step, f"mean - 2 sqrt(l{i + 1}) v{i + 1}"), (mean + step, f"mean + 2 sqrt(l{i + 1}) v{i + 1}")]
fig, axes = plt.subplots(2, 5, figsize=(10, 4.6))
for ax, (image, title) in zip(axes.ravel(), panels):
    std = title == "posterior std"
    ax.imshow(image[0, 0].numpy(), cmap="magma" if std else "gray", vmin=None if std else 0, vmax=None if std else 1)
    ax.set_title(title, fontsize=8)
for ax in axes.ravel():
    ax.set_axis_off()
fig.tight_layout()
print("top posterior variances (sum over pixels along each direction):", [round(v, 3) for v in values[0].tolist()])

# %%
# Two routes to the same posterior standard deviation
# ---------------------------------------------------
# The Jacobian gives the posterior's spread from one noisy image and a few derivatives; posterior
# sampling gives it from many draws. For the same :math:`y` and the noise-conditional U-Net, the
# per-pixel standard deviation :math:`\sigma \sqrt{\operatorname{diag} J}` beside the spread of 16
# PnP-ULA chains (:func:`~scoredae.recipes.posterior.posterior_sampling`: the prior score at
# :math:`\sigma = 0.05`, warm-started from 0.5, the second half of 500 steps kept). Both routes
# put the uncertainty on the same strokes; the chains see a prior at 0.05 instead of the noise
# level itself and keep a Monte Carlo error, so the maps agree in shape rather than to the pixel.
from scoredae.recipes.posterior import posterior_sampling

ncsn = load_pretrained("unet_ncsn")
jacobian_var, _ = posterior_variance(ncsn, y, 0.5, n_probes=64, generator=g)
chains = posterior_sampling(ncsn, y, noise_sigma=0.5, n_chains=16, n_steps=500, warm_start_sigma=0.5,
                            generator=torch.Generator().manual_seed(1))
maps = {"Jacobian: sigma sqrt(diag J)": jacobian_var.clamp(min=0).sqrt(),
        "16 posterior chains: std": chains.pooled_var.sqrt()[None]}  # each (1, 1, 28, 28)
top = max(float(m.max()) for m in maps.values())
fig, axes = plt.subplots(1, 3, figsize=(9, 3.3))
axes[0].imshow(chains.pooled_mean[0].numpy(), cmap="gray", vmin=0, vmax=1)
axes[0].set_title("posterior mean of the chains", fontsize=9)
for ax, (title, image) in zip(axes[1:], maps.items()):
    shown = ax.imshow(image[0, 0].numpy(), cmap="magma", vmin=0, vmax=top)
    ax.set_title(title, fontsize=9)
fig.colorbar(shown, ax=axes[1:], shrink=0.8, label="posterior std")
for ax in axes:
    ax.set_axis_off()
print("mean per-pixel std: " + ", ".join(f"{title.split(':')[0]} {float(m.mean()):.4f}" for title, m in maps.items()))
print("correlation of the two maps:", round(float(torch.corrcoef(torch.stack([m.reshape(-1) for m in maps.values()]))[0, 1]), 3))
