r"""
Score matching on a 2D mixture: DSM, ISM and sliced SM against the Bayes optimum
================================================================================

A noise-conditional network :math:`s_\theta(x, \sigma)` is fitted to the score of the noised data
density :math:`p_\sigma` by three objectives that never see the true score:

* denoising score matching (Vincent 2010), :math:`\frac{\sigma^2}{2} \lVert s_\theta(x + \sigma n,
  \sigma) + n / \sigma \rVert^2`;
* implicit score matching (Hyvarinen 2005) at :math:`\tilde x \sim p_\sigma`,
  :math:`\sigma^2 \big(\operatorname{tr} \nabla s_\theta(\tilde x) + \frac12 \lVert s_\theta \rVert^2\big)`;
* sliced score matching (Song et al. 2019), the same with the trace replaced by
  :math:`v^\top \nabla s_\theta\, v`, :math:`v \sim \mathcal N(0, I)`.

Each equals the explicit score-matching error
:math:`\mathrm{ESM}(\theta) = \mathbb E\, \frac{\sigma^2}{2} \lVert s_\theta - \nabla \log p_\sigma \rVert^2`
plus a constant that does not depend on :math:`\theta`. On a Gaussian mixture the constant, the
exact score and the Bayes-optimal denoiser :math:`\mathbb E[x \mid y]` are all known, so we can see
how close each learned model gets to the optimum.
"""

# %%
import math

import matplotlib.pyplot as plt
import matplotlib.quiver
import torch

from scoredae import GaussianMixture
from scoredae.eval import bayes_gap, score_error
from scoredae.train import train_toy
from scoredae.viz import plot_score_field

F64 = torch.float64  # the exact math in double precision, asked for explicitly
angles = torch.arange(4, dtype=F64) * torch.pi / 2 + torch.pi / 4
means = 2.0 * torch.stack([angles.cos(), angles.sin()], dim=1)
mixture = GaussianMixture(torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=F64), means, torch.tensor([0.15, 0.3, 0.2, 0.25], dtype=F64))
SIGMAS = (0.2, 2.0)  # training levels, log-uniform per sample
STEPS = {"dsm": 2000, "ism": 1500, "ssm": 1500}

runs = {
    name: train_toy(mixture, objective=name, sigmas=SIGMAS, steps=steps, batch_size=512 if name == "dsm" else 256,
                    device="cpu", generator=torch.Generator().manual_seed(0), progress=False)
    for name, steps in STEPS.items()
}
models = {name: run.model for name, run in runs.items()}

# %%
# Exact and learned score fields
# ------------------------------
# At :math:`\sigma = 0.5` the learned fields match the exact one where the data are; far from the
# modes, where :math:`p_\sigma` has almost no mass, the networks are barely constrained.
sigma = 0.5


def grid(n):
    """An n x n grid over [-4, 4]^2: coordinates (n, n) each, and points (n * n, 2)."""
    gy, gx = torch.meshgrid(torch.linspace(-4, 4, n, dtype=F64), torch.linspace(-4, 4, n, dtype=F64), indexing="ij")
    return gx, gy, torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)


fx, fy, fine = grid(150)
ax_, ay_, arrows = grid(20)
fig, axes = plt.subplots(1, 4, figsize=(18, 4.5))
plot_score_field(mixture, sigma, ax=axes[0], n_arrows=20)
axes[0].set_title(f"exact score, $\\sigma = {sigma}$")
exact_arrows = next(c for c in axes[0].collections if isinstance(c, matplotlib.quiver.Quiver))
fig.canvas.draw()  # fixes the exact arrows' scale; the learned fields are drawn at the same one
density = mixture.log_prob(fine, sigma).exp().reshape(fx.shape)
for ax, (name, model) in zip(axes[1:], models.items()):
    with torch.no_grad():
        field = model.score(arrows, sigma)  # (400, 2)
    ax.contourf(fx, fy, density, levels=30, cmap="Blues")
    ax.quiver(ax_, ay_, field[:, 0].reshape(ax_.shape), field[:, 1].reshape(ax_.shape), color="C3",
              angles="xy", width=0.003, scale=exact_arrows.scale)
    ax.set(xlim=(-4, 4), ylim=(-4, 4), aspect="equal", xlabel="$x_1$", title=f"learned by {name.upper()}")
fig.tight_layout()

# %%
# Three losses, one minimiser
# ---------------------------
# The training losses differ by constants: with :math:`d = 2` and :math:`\sigma` log-uniform,
#
# .. math::
#     \mathrm{DSM} - \mathrm{ESM} = \mathbb E_\sigma \tfrac{1}{2}\big(d - \sigma^2\,
#     \mathbb E \lVert \nabla \log p_\sigma \rVert^2\big), \qquad
#     \mathrm{ISM} - \mathrm{ESM} = \mathrm{SSM} - \mathrm{ESM}
#     = -\mathbb E_\sigma \tfrac{\sigma^2}{2}\, \mathbb E \lVert \nabla \log p_\sigma \rVert^2.
#
# We compute the Fisher information :math:`\mathbb E \lVert \nabla \log p_\sigma \rVert^2` by Monte
# Carlo on a grid of levels and subtract the constants: the three curves become estimates of the
# same ESM and go down together, to the ESM of each final model (dots, computed with the exact
# score). The per-step losses are noisy, so we show a moving average over 100 steps.
log_lo, log_hi = math.log(SIGMAS[0]), math.log(SIGMAS[1])
levels = torch.exp(log_lo + (torch.arange(64, dtype=F64) + 0.5) / 64 * (log_hi - log_lo)).tolist()  # log-uniform
g = torch.Generator().manual_seed(1)
points = [mixture.noised(s).sample(4000, generator=g) for s in levels]
exact_scores = [mixture.score(y, s) for y, s in zip(points, levels)]


def weighted_mean(per_level):
    """E_sigma sigma^2 E[...] over the grid of levels."""
    return sum(s**2 * float(v.mean()) for s, v in zip(levels, per_level)) / len(levels)


weighted_fisher = weighted_mean([e.pow(2).sum(1) for e in exact_scores])
offsets = {"dsm": 0.5 * (2 - weighted_fisher), "ism": -0.5 * weighted_fisher, "ssm": -0.5 * weighted_fisher}

fig, ax = plt.subplots(figsize=(7, 4.5))
window = 100
for i, (name, model) in enumerate(models.items()):
    shifted = runs[name].losses.double() - offsets[name]
    smooth = shifted.unfold(0, window, 1).mean(1)  # moving average, (steps - window + 1,)
    ax.plot(torch.arange(window, len(shifted) + 1), smooth, color=f"C{i}", label=f"{name.upper()} minus its constant")
    with torch.no_grad():
        final = 0.5 * weighted_mean([(model.score(y, s) - e).pow(2).sum(1) for y, s, e in zip(points, levels, exact_scores)])
    ax.plot(len(shifted), final, "o", color=f"C{i}")
ax.axhline(0, color="0.5", lw=0.8)
ax.set(ylim=(-0.02, 0.2), xlabel="step",
       ylabel=r"ESM $= \mathbb{E}\,\frac{\sigma^2}{2}\|s_\theta - \nabla\log p_\sigma\|^2$",
       title="training losses shifted by their theta-independent constants")
ax.legend()

# %%
# Distance to the Bayes optimum
# -----------------------------
# ``bayes_gap`` is the denoiser's MSE over the exact MMSE (1 is optimal), with the denoiser
# :math:`D = x + \sigma^2 s_\theta` given by Tweedie's formula; ``score_error`` is the relative
# :math:`L^2(p_\sigma)` error of the score.
rows = []
for name, model in models.items():
    for level in (0.25, 0.5, 1.0):
        gap = bayes_gap(model, mixture, level, n=50_000, generator=torch.Generator().manual_seed(2))
        err = score_error(model.score, mixture, level, n=50_000, generator=torch.Generator().manual_seed(3))
        rows.append([name.upper(), f"{level:g}", f"{gap:.4f}", f"{err:.3f}"])
header = ["objective", "sigma", "bayes_gap", "score_error"]
print("\n".join(f"{a:<10}{b:>6}{c:>11}{d:>13}" for a, b, c, d in [header, *rows]))
fig, ax = plt.subplots(figsize=(6, 3.2))
ax.axis("off")
ax.table(cellText=rows, colLabels=header, loc="center").scale(1, 1.3)
ax.set_title("Bayes gap and score error per objective and noise level")
