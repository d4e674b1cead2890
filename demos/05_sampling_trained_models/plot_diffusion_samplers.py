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
(:math:`\sigma \in [0.01, 1]`) shows what each sampler needs from the model, and ``unet_edm``
(:math:`\sigma \in [0.002, 80]`, trained as EDM trains) what the ODE gives per denoiser call.
"""

# %%
import matplotlib.pyplot as plt
import torch

from scoredae import GaussianMixture
from scoredae.mixtures import MixtureDenoiser
from scoredae.model_sampling import annealed_generation, diffusion_generation
from scoredae.nets import list_pretrained, load_pretrained
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

# %%
# Digits from ``unet_edm`` in tens of calls
# -----------------------------------------
# A model trained over :math:`\sigma \in [0.002, 80]` with EDM's preconditioning, level
# distribution and loss weight (its command is on the models page): at :math:`\sigma_{\max} = 80`,
# :math:`p_{80}` is the Gaussian the ODE starts from. The same eight starting points through
# Heun's method with 9, 19 and 35 denoiser calls, beside annealed Langevin's 1,000 calls above.
edm = load_pretrained("unet_edm")
fig, axes = plt.subplots(3, 1, figsize=(8, 4.5))
for ax, steps in zip(axes, (5, 10, 18)):
    result = diffusion_generation(edm, 8, method="heun", steps=steps, generator=torch.Generator().manual_seed(1))
    ax.imshow(torch.cat(list(result.samples.clamp(0, 1)[:, 0]), dim=1).numpy(), cmap="gray", vmin=0, vmax=1)
    ax.set_title(f"EDM Heun, {2 * steps - 1} calls", fontsize=9)
    ax.set_axis_off()
fig.tight_layout()

# %%
# Quality per denoiser call
# -------------------------
# 1,000 samples a point, measured by ``benchmarks/bench_generation.py`` (the command and the
# machine's thread count are stored with the model): the share of samples the MNIST classifier
# calls with confidence >= 0.9, and the Frechet distance of its features to the test set, against
# the number of denoiser calls. The dashed lines are 1,000 real training digits, the floor.
record = list_pretrained()["unet_edm"]["generation"]
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
for (method, churn), label in {("heun", 0.0): "Heun ODE", ("euler", 0.0): "Euler ODE",
                               ("heun", None): "Heun, churn > 0"}.items():
    rows = sorted((r for r in record["rows"] if r["method"] == method and (r["churn"] > 0 if churn is None
                                                                           else r["churn"] == churn)),
                  key=lambda r: r["nfe"])
    for ax, key in zip(axes, ("confident_share", "fid")):
        ax.plot([r["nfe"] for r in rows], [r[key] for r in rows], "o-" if len(rows) > 1 else "s", label=label)
for ax, key, name in zip(axes, ("confident_share", "fid"), ("confident share (>= 0.9)", "classifier FID")):
    ax.axhline(record["real_digits"][key], color="k", ls="--", lw=1)
    ax.set(xscale="log", xlabel="denoiser calls per sample", ylabel=name)
    calls = sorted({r["nfe"] for r in record["rows"]})
    ax.set_xticks(calls, [str(c) for c in calls])
    ax.minorticks_off()
axes[1].set_yscale("log")
axes[0].legend(fontsize=8)
fig.tight_layout()
