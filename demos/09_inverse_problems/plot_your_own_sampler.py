r"""
Your own posterior sampler on the leaderboard
=============================================

A posterior sampler is any function with the signature of :mod:`scoredae.inverse`,
``sampler(denoiser, y, forward, noise_sigma, x_T, sigmas, *, generator=None)``, returning its samples.
:func:`~scoredae.eval.evaluate` measures one against the exact posterior of a Gaussian mixture, and
:func:`~scoredae.eval.leaderboard_rows` does so at a budget of network evaluations per sample, so
it takes the place it has earned among the :doc:`samplers shipped with the library </posterior_samplers>`.

Here a reader's sampler in ten lines: the ancestral chain of the posterior denoiser
:math:`D + \sigma^2 g`, with the Jacobian-free guidance
:math:`g = A^\top (y - A D) / (\sigma_y^2 + \sigma^2 \lVert A \rVert^2)`, the likelihood of
:math:`y` given :math:`x_\sigma` if the denoising posterior were :math:`\mathcal N(D, \sigma^2 I)`
and the operator's spectrum flat. It costs one evaluation per level and no Jacobian product.
"""

# %%
# The sampler: ten lines in its body, nothing from the library but the signature.
import itertools
import math

import matplotlib.pyplot as plt
import torch

from scoredae.eval import grid_mixture_problem, leaderboard_rows, shipped_leaderboard


@torch.no_grad()
def flat_guidance(denoiser, y, forward, noise_sigma, x_T, sigmas, *, generator=None):
    A = torch.as_tensor(forward, dtype=x_T.dtype)
    spread = float(torch.linalg.matrix_norm(A, ord=2)) ** 2
    x, levels = x_T, sigmas.tolist()
    for sigma, sigma_next in itertools.pairwise(levels):
        d = denoiser(x, sigma)
        d = d + sigma**2 * (y - d @ A.T) @ A / (noise_sigma**2 + spread * sigma**2)
        noise = sigma_next * math.sqrt(max(1 - sigma_next**2 / sigma**2, 0.0))
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        x = d + (sigma_next / sigma) ** 2 * (x - d) + noise * z
    return x


# %%
# Its rows on the leaderboard's problems in eight dimensions, at 100 network evaluations per sample
# and at its own setting (100 levels), beside the shipped rows of every other sampler at 100.
problems = [(8, d_y, 0, grid_mixture_problem(8, d_y, 0)) for d_y in (1, 2, 4)]
mine = leaderboard_rows({"flat_guidance": flat_guidance}, problems, budgets=(100,))
for row in mine:
    print(f"d_y={row['d_y']} budget {row['budget']!s:>7}: SW ratio {row['sw_ratio']:.2f}, mode TV {row['mode_tv']:.3f}, "
          f"90% cover {row['coverage_min']:.2f}-{row['coverage_max']:.2f}, {row['evaluations']} evaluations")

shipped = [r for r in shipped_leaderboard()["rows"] if r["d_x"] == 8 and r["budget"] == 100 and "mode_tv" in r]
names = list(dict.fromkeys(r["sampler"] for r in shipped)) + ["flat_guidance"]
rows = shipped + [r for r in mine if r["budget"] == 100]
fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), sharey=True)
for ax, key, label in zip(axes, ("mode_tv", "sw_ratio"), ("mode total variation", "SW / exact floor")):
    for offset, d_y in enumerate((1, 2, 4)):
        values = [next((r[key] for r in rows if r["sampler"] == n and r["d_y"] == d_y), math.nan) for n in names]
        ax.barh([i + 0.27 * (offset - 1) for i in range(len(names))], values, height=0.27, label=f"d_y = {d_y}")
    ax.set(xlabel=label, xscale="log" if key == "sw_ratio" else "linear")
    ax.grid(True, axis="x", alpha=0.3)
axes[0].set_yticks(range(len(names)), names)
axes[0].get_yticklabels()[-1].set_fontweight("bold")
axes[0].invert_yaxis()
axes[1].axvline(1.0, color="black", lw=0.8, ls="--")
fig.suptitle("100 network evaluations per sample, d_x = 8: the shipped samplers and the reader's")
fig.tight_layout(rect=(0, 0.06, 1, 1))
fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=3)
plt.show()
