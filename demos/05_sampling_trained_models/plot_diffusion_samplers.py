r"""
Diffusion-era samplers on the same denoiser: EDM's ODE and Kadkhodaie-Simoncelli
================================================================================

Annealed Langevin takes 1,000 denoiser calls per digit. The same MMSE denoiser also drives the
samplers that replaced it. EDM (Karras et al. 2022) integrates the probability-flow ODE

.. math::
    \frac{dx}{d\sigma} = \frac{x - D(x, \sigma)}{\sigma}

from :math:`\sigma_{\max}` down to 0 with Heun's method; Kadkhodaie & Simoncelli (2021) climb the
residual :math:`D(y) - y` with a step that grows and noise that shrinks, reading the noise level
off the residual itself. On an exact 2-D mixture the ODE carries every sample of
:math:`p_{\sigma_{\max}}` to a sample of :math:`p`; on MNIST the shipped ``unet_ncsn``
(:math:`\sigma \in [0.01, 1]`) shows what each sampler needs from the model.
"""

# %%
import matplotlib.pyplot as plt
import torch

from scoredae import GaussianMixture
from scoredae.mixtures import MixtureDenoiser
from scoredae.nets import load_pretrained
from scoredae.recipes import annealed_generation, diffusion_generation
from scoredae.sampling import edm_sampler, karras_sigmas
from scoredae.viz import plot_score_field

F64 = torch.float64
mixture = GaussianMixture(
    torch.tensor([0.5, 0.3, 0.2], dtype=F64),
    torch.tensor([[-1.5, -1.0], [1.5, 1.0], [1.0, -2.0]], dtype=F64),
    torch.tensor([[[0.4, 0.2], [0.2, 0.3]], [[0.3, -0.1], [-0.1, 0.5]], [[0.2, 0.0], [0.0, 0.2]]], dtype=F64),
)

# %%
# ODE trajectories on the exact mixture
# -------------------------------------
# 400 exact samples of :math:`p_{\sigma_{\max}}`, :math:`\sigma_{\max} = 10`, carried by Heun's method
# on 18 EDM levels (35 calls of the exact denoiser). Left: the paths over the density of
# :math:`p`; right: where they end, against exact samples of :math:`p`.
generator = torch.Generator().manual_seed(0)
x_T = mixture.noised(10.0).sample(400, generator=generator)
ode = edm_sampler(MixtureDenoiser(mixture), x_T, karras_sigmas(0.002, 10.0, 18), record_every=1)
exact = mixture.sample(400, generator=generator)
fig, axes = plt.subplots(1, 2, figsize=(10, 4.8))
plot_score_field(mixture, ax=axes[0])
for path in ode.trajectory[:40]:
    axes[0].plot(path[:, 0], path[:, 1], color="k", lw=0.6, alpha=0.7)
axes[0].set_title("Heun ODE paths from p_10 (40 of 400)")
axes[1].scatter(*exact.T, s=5, alpha=0.5, label="exact samples of p")
axes[1].scatter(*ode.samples.T, s=5, alpha=0.5, label="ODE, 35 denoiser calls")
axes[1].set(xlim=(-4, 4), ylim=(-4, 4), aspect="equal", xlabel="$x_1$", ylabel="$x_2$", title="end points")
axes[1].legend(loc="upper left", fontsize=8)
fig.tight_layout()

# %%
# Digits from ``unet_ncsn``
# -------------------------
# Annealed Langevin (1,000 calls), Kadkhodaie-Simoncelli (as many steps as it takes to reach
# :math:`\sigma = 0.01`) and EDM's Heun ODE with 35 calls. The model was trained up to
# :math:`\sigma = 1`, where :math:`p_1` is still far from the Gaussian the ODE has to start from:
# the ODE's start is wrong and its digits are strokes, while the two stochastic samplers, whose
# noise corrects a wrong start, give digits.
ncsn = load_pretrained("unet_ncsn")
runs = {
    "annealed Langevin, 1000 calls": annealed_generation(ncsn, 8, generator=torch.Generator().manual_seed(1)),
    "Kadkhodaie-Simoncelli": diffusion_generation(ncsn, 8, method="ks", generator=torch.Generator().manual_seed(1)),
    "EDM Heun, 35 calls": diffusion_generation(ncsn, 8, method="heun", steps=18, generator=torch.Generator().manual_seed(1)),
}
fig, axes = plt.subplots(len(runs), 1, figsize=(8, 1.5 * len(runs)))
for ax, (name, result) in zip(axes, runs.items()):
    ax.imshow(torch.cat(list(result.samples.clamp(0, 1)[:, 0]), dim=1).numpy(), cmap="gray", vmin=0, vmax=1)
    label = f"{name} ({result.n_steps} steps)" if name.startswith("Kadkhodaie") else name
    ax.set_title(label, fontsize=9)
    ax.set_axis_off()
fig.tight_layout()
