r"""
One probability flow in three coordinate systems
================================================

A variance-exploding model (EDM), a variance-preserving one (DDPM, score SDE) and a rectified flow
hold the same object, the posterior mean :math:`D(x, \sigma) = \mathbb E[x_0 \mid x_0 + \sigma n = x]`:
their noisy points are :math:`x_t = \alpha_t x_0 + s_t n`, which divided by :math:`\alpha_t` is the
VE point at level :math:`\sigma = s_t / \alpha_t` (:mod:`scoredae.sampling.parametrisations`). So their
probability-flow ODEs have the same solutions, seen in other coordinates: the VE path
:math:`x(\sigma)` is the VP path :math:`x(\sigma) / \sqrt{1 + \sigma^2}` and the flow path
:math:`x(\sigma) / (1 + \sigma)`. Here the exact denoiser of a 2-D Gaussian mixture drives EDM's
ODE on 400 levels, and the same paths are drawn in the three systems, with how straight each is
there.
"""

# %%
# The paths from eight noises, each drawn in its system's own coordinates (the data's three
# components in grey). Straightness is the length of a path over the distance between its ends
# (1 for a line), the mean over the paths.
import matplotlib.pyplot as plt
import torch

from scoredae import GaussianMixture
from scoredae.mixtures import MixtureDenoiser
from scoredae.sampling import edm_sampler, karras_sigmas
from scoredae.sampling.parametrisations import (
    LinearInterpolant,
    VarianceExploding,
    VariancePreserving,
)

mixture = GaussianMixture(torch.tensor([0.5, 0.3, 0.2]), torch.tensor([[-2.0, -1.0], [2.0, -1.5], [0.5, 2.5]]),
                          torch.tensor([0.15, 0.3, 0.1]))
sigmas = karras_sigmas(0.002, 80.0, 400)
x_T = 80.0 * torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
result = edm_sampler(MixtureDenoiser(mixture), x_T, sigmas, solver="heun", record_every=1)
path, levels = result.trajectory, sigmas  # (8, 401, 2): the VE point at each level

systems = {"variance exploding (EDM)": VarianceExploding(), "variance preserving (VP SDE)": VariancePreserving("linear"),
           "linear interpolant (rectified flow)": LinearInterpolant()}
data = mixture.sample(2000, generator=torch.Generator().manual_seed(1))
fig, axes = plt.subplots(1, 3, figsize=(14, 4.6))
for ax, (name, schedule) in zip(axes, systems.items()):
    t = schedule.time(levels.clamp_min(1e-12))
    scale = schedule.alpha(t).to(path.dtype)[None, :, None]  # x_t = alpha_t x_ve
    own = path * scale
    own[:, -1] = path[:, -1]  # sigma = 0: the data itself in every system
    length = (own.diff(dim=1).norm(dim=-1)).sum(1)
    chord = (own[:, -1] - own[:, 0]).norm(dim=-1)
    ax.scatter(*data.T, s=1, c="0.8")
    for p in own:
        ax.plot(*p.T, lw=1)
        ax.plot(*p[0], "k.", ms=4)
    ax.set_title(f"{name}\nlength / chord {float((length / chord).mean()):.3f}", fontsize=10)
    ax.set_aspect("equal")
    lim = max(float(own.abs().max()), 3.0) * 1.05
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim))
    print(f"{name:38s} starts at |x| ~ {float(own[:, 0].norm(dim=-1).mean()):6.2f}, "
          f"length / chord {float((length / chord).mean()):.4f}")
fig.tight_layout()
plt.show()

# %%
# In the variance-exploding system the paths run 80 units in toward the data, nearly straight at
# that scale: the turn toward a component happens within the last unit, too small to see. The
# variance-preserving and flow coordinates shrink the start to the scale of the noise and show the
# turn. None of them is straight: the linear interpolant makes each *conditional* path
# :math:`(1 - t) x_0 + t n` a line, but the marginal flow averages them, and where the noise could
# have come from several components its paths bend (here more than the VP paths, over a shorter
# run). Straightening them takes a reflow (Liu et al. 2023), a new model trained on the flow's own
# pairs. The ends agree in all three: one posterior mean, one ODE.
