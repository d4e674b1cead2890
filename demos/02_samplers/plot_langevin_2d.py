r"""
Langevin dynamics in 2D: noise keeps diversity, annealing fixes the mode weights
================================================================================

Gradient ascent on :math:`\log p`, :math:`x \leftarrow x + \eta \nabla \log p(x)`, climbs to the
nearest mode: every point collapses onto a few maxima. The unadjusted Langevin algorithm (ULA)
adds noise of the right size,

.. math::
    x_{k+1} = x_k + \eta \nabla \log p(x_k) + \sqrt{2\eta}\, z_k,

and its chains spread over :math:`p` instead (up to an :math:`O(\eta)` bias).

Langevin dynamics only needs the score, and that is also its weakness: for
:math:`p = 0.2\, \mathcal N((-5,-5), I) + 0.8\, \mathcal N((5,5), I)` (Song & Ermon 2019, Fig. 3)
the score near each mode ignores the other one, so chains started uniformly in
:math:`[-8, 8]^2` keep the 50/50 split of their start. Annealed Langevin runs the chain on
:math:`p_\sigma = p * \mathcal N(0, \sigma^2 I)` for decreasing :math:`\sigma`; at large
:math:`\sigma` the modes overlap and the weights settle before the modes separate.
"""

# %%
import matplotlib.pyplot as plt
import torch

from scoredae import GaussianMixture
from scoredae.sampling import annealed_langevin, geometric_sigmas, ula
from scoredae.viz import animate_chains, plot_score_field

F64 = torch.float64  # the exact math in double precision, asked for explicitly
generator = torch.Generator().manual_seed(0)
mixture = GaussianMixture(
    torch.tensor([0.5, 0.3, 0.2], dtype=F64),
    torch.tensor([[-1.5, -1.0], [1.5, 1.0], [1.0, -2.0]], dtype=F64),
    torch.tensor([[[0.4, 0.2], [0.2, 0.3]], [[0.3, -0.1], [-0.1, 0.5]], [[0.2, 0.0], [0.0, 0.2]]], dtype=F64),
)

# %%
# Gradient ascent against ULA from the same 300 starting points, step :math:`\eta = 0.02`,
# 400 steps. The ascent paths end on the three modes; the Langevin chains fill the density.
x0 = 8 * torch.rand(300, 2, generator=generator, dtype=F64) - 4
step, n_steps = 0.02, 400
ascent = [x0]
for _ in range(n_steps):
    ascent.append(ascent[-1] + step * mixture.score(ascent[-1]))
ascent = torch.stack(ascent, dim=1)  # (chains, steps + 1, 2)
langevin = ula(mixture.score, x0, step, n_steps, record_every=4, generator=generator)

fig, axes = plt.subplots(1, 2, figsize=(12, 5.5))
for ax, paths, title in [(axes[0], ascent, "gradient ascent: collapse onto the modes"),
                         (axes[1], langevin.trajectory, "ULA: samples spread over p")]:
    plot_score_field(mixture, ax=ax)
    for path in paths[:8]:
        ax.plot(path[:, 0], path[:, 1], color="k", lw=0.7, alpha=0.8)
    ax.scatter(paths[:, -1, 0], paths[:, -1, 1], s=6, color="C1", zorder=3)
    ax.set_title(title)
fig.tight_layout()

# %%
# The ULA chains in motion: the 300 points of the right panel, every 8th step of the 400. From
# the uniform start they drift up the score towards the modes while the noise spreads them out.
animation = animate_chains(mixture, langevin.trajectory, record_every=4, every=2)

# %%
# How diverse are the end points? Distinct end points (rounded to 0.01) and the spread.
for name, end in [("gradient ascent", ascent[:, -1]), ("ULA", langevin.samples)]:
    distinct = len(torch.unique((end * 100).round(), dim=0))
    print(f"{name:<16} distinct end points: {distinct:4d}   per-coordinate std: {end.std(0).numpy().round(2)}")

# %%
# Song & Ermon's toy: plain Langevin (exact score, :math:`\eta = 0.05`, 1000 steps) against annealed
# Langevin (:math:`\sigma` from 20 to 1 on 10 geometric levels, 100 steps each, :math:`\epsilon = 0.1`,
# :math:`\alpha_i = \epsilon \sigma_i^2 / \sigma_L^2`), 2000 chains from the same uniform start.
# Annealed Langevin ends on :math:`p_{\sigma_L}`, here covariances :math:`2I`, hence its wider clusters.
toy = GaussianMixture(torch.tensor([0.2, 0.8], dtype=F64), torch.tensor([[-5.0, -5.0], [5.0, 5.0]], dtype=F64), 1.0)
start = 16 * torch.rand(2000, 2, generator=generator, dtype=F64) - 8
plain = ula(toy.score, start, 0.05, 1000, generator=generator).samples
annealed = annealed_langevin(toy.score, start, geometric_sigmas(20, 1, 10), 100, 0.1, generator=generator).samples
exact = toy.sample(2000, generator=generator)

weights = {}
fig, axes = plt.subplots(2, 2, figsize=(10, 9.5))
axes = axes.ravel()
for ax, (name, points) in zip(axes, [("exact samples", exact), ("plain Langevin", plain), ("annealed Langevin", annealed)]):
    weights[name] = float((points.sum(1) > 0).double().mean())  # fraction near (5, 5)
    ax.scatter(points[:, 0], points[:, 1], s=3, alpha=0.4)
    ax.set(xlim=(-12, 12), ylim=(-12, 12), aspect="equal", xlabel="$x_1$", ylabel="$x_2$",
           title=f"{name}: {1 - weights[name]:.2f} / {weights[name]:.2f}")
names = list(weights)
axes[3].bar(names, [1 - weights[n] for n in names], label="mode (-5, -5)")
axes[3].bar(names, [weights[n] for n in names], bottom=[1 - weights[n] for n in names], label="mode (5, 5)")
axes[3].axhline(0.2, color="k", ls="--", lw=0.8)
axes[3].set(ylabel="mode weight", title="mode weights (true: 0.2 / 0.8)")
axes[3].tick_params(axis="x", labelsize=8)
axes[3].legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
fig.tight_layout()

print(f"{'sampler':<20}{'weight (-5,-5)':>16}{'weight (5,5)':>14}")
print(f"{'true':<20}{0.2:>16.3f}{0.8:>14.3f}")
for name in names:
    print(f"{name:<20}{1 - weights[name]:>16.3f}{weights[name]:>14.3f}")
