r"""
Exact posteriors of digits
==========================

On images nobody knows the true posterior, so samplers are usually judged by the PSNR of their
samples, which rewards the posterior mean and says nothing about the spread. The shipped MNIST
mixture prior (100 factor analysers of rank 8, :func:`~scoredae.nets.registry.load_pretrained`
``("mnist_mixture")``) changes that: its samples are digits, and the posterior of any linear
measurement :math:`y = A x + \sigma_y n` is a mixture of Gaussians in closed form
(:mod:`scoredae.eval.digits`). Here the central 14 x 14 pixels of a test digit are hidden, and a few
posterior samplers, each driven by the mixture's exact denoiser at 100 network evaluations per
sample, are put beside exact posterior draws.
"""

# %%
# The observation, the exact posterior mean and its per-pixel standard deviation, and exact
# posterior draws: the box is filled in several ways, each a digit the prior finds likely.
import matplotlib.pyplot as plt
import torch

from scoredae.data.mnist import load_mnist
from scoredae.eval.digits import LEVELS, digit_problem, evaluate_digits, exact_floors
from scoredae.eval.exact_posterior import benchmark_samplers
from scoredae.eval.leaderboard import levels_for_budget
from scoredae.nets.registry import load_pretrained

prior = load_pretrained("mnist_mixture").mixture
problem = digit_problem(prior, "box", 0.05, digit=load_mnist("test")[0][0])
posterior = problem.posterior
observed = torch.full((784,), float("nan"), dtype=problem.y.dtype)
observed[problem.A.argmax(1)] = problem.y[0]
exact = posterior.sample(6, generator=torch.Generator().manual_seed(0))[:, 0]
spread = (posterior.covariance.diagonal() * posterior.weights[0, :, None]).sum(0) \
    + (posterior.weights[0, :, None] * (posterior.means[0] - posterior.mean()) ** 2).sum(0)
panels = {"digit": problem.x[0], "observed": observed, "posterior mean": posterior.mean()[0],
          "posterior std": spread.sqrt(), **{f"exact draw {i + 1}": x for i, x in enumerate(exact)}}
fig, axes = plt.subplots(1, len(panels), figsize=(1.6 * len(panels), 2.0))
for ax, (title, image) in zip(axes, panels.items()):
    ax.imshow(image.reshape(28, 28).numpy(), cmap="gray", vmin=0, vmax=float(spread.sqrt().max()) if "std" in title else 1)
    ax.set_title(title, fontsize=8)
    ax.axis("off")
fig.tight_layout()
plt.show()
print(f"largest posterior component weight {float(posterior.weights.max()):.3f}")

# %%
# Each sampler's samples (64 chains from the noised prior, four shown) and its measures against as
# many exact draws: the sliced Wasserstein distance over its floor, the total variation of the
# component masses, the PSNR of the samples' mean against the exact posterior mean, and the
# calibration curve, the share of samples inside each pixel's exact central interval of each level.
samplers = {name: s for name, s in benchmark_samplers(problem).items()
            if name in ("ddrm", "pigdm", "dps", "daps", "dcps", "mgps")}
n = 64
floors = exact_floors(problem, n)
rows = {"exact draws": {**floors, "sw_ratio": 1.0}}
samples = {"exact draws": posterior.sample(4, generator=torch.Generator().manual_seed(1))[:, 0]}
for name, sampler in samplers.items():
    steps = levels_for_budget(sampler, problem, 100)
    kept = {}

    def keep(denoiser, y, forward, noise_sigma, x_T, sigmas, *, generator=None, _run=sampler, _kept=kept):
        _kept["result"] = _run(denoiser, y, forward, noise_sigma, x_T, sigmas, generator=generator)
        return _kept["result"]

    rows[name] = evaluate_digits(keep, problem, n, steps, name=name, floors=floors)
    result = kept["result"]
    samples[name] = (result if isinstance(result, torch.Tensor) else result.samples)[:4]
for name, row in rows.items():
    cover = " ".join(f"{c:.2f}" for c in row["coverage"])
    print(f"{name:12s} SW/floor {row['sw_ratio']:5.2f}  TV {row['mode_tv']:.2f}  cover {cover}  "
          f"mean {row['mean_psnr']:5.1f} dB")

fig = plt.figure(figsize=(9, 1.25 * len(samples)))
grid = fig.add_gridspec(len(samples), 6, width_ratios=(1, 1, 1, 1, 1.3, 5), wspace=0.05)
for i, (name, images) in enumerate(samples.items()):
    for j, image in enumerate(images):
        ax = fig.add_subplot(grid[i, j])
        ax.imshow(image.reshape(28, 28).numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        if j == 0:
            ax.set_ylabel(name, fontsize=8)
curve = fig.add_subplot(grid[1:-1, 5])
for name, row in rows.items():
    curve.plot(LEVELS, row["coverage"], marker="o", label=name, lw=2.5 if name == "exact draws" else 1.2)
curve.plot([0, 1], [0, 1], color="black", lw=0.8, ls=":")
curve.set(xlim=(0.4, 1), ylim=(0, 1), xlabel="level of the exact per-pixel interval", ylabel="share of samples inside")
curve.legend(fontsize=8, loc="lower right")
plt.show()

# %%
# A calibrated sampler sits on the diagonal, as the exact draws do. Above it the samples are too
# narrow: more of them fall inside each exact interval than should (PiGDM and DDRM here, whose
# strokes are smoother than the posterior's). Below it they are too wide or elsewhere: the
# posterior of this observation is all sevens, and DPS, DAPS, MGPS and DCPS draw nines, so their
# curves sit far below the diagonal. The full table, for five tasks, two noise levels, draws of
# the prior and real digits, and every sampler, is the d = 784 section of :doc:`/posterior_samplers`.
