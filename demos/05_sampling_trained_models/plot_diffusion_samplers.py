r"""
Diffusion-era samplers on the same denoiser: ODE solvers, Kadkhodaie-Simoncelli, guidance
=========================================================================================

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
Multistep solvers (DPM-Solver++, iPNDM) take one denoiser call a step; the class-conditional
``resunet_cfg`` draws the digit it is asked for, guided, and its samples are checked not to be
copies of training digits.
"""

# %%
import matplotlib.pyplot as plt
import torch

from scoredae import GaussianMixture
from scoredae.data import load_mnist
from scoredae.eval import sliced_wasserstein
from scoredae.eval.denoising import empirical_mmse
from scoredae.eval.sample_quality import nearest_training_distances
from scoredae.mixtures import MixtureDenoiser
from scoredae.nets import list_pretrained, load_pretrained
from scoredae.recipes.generation import annealed_generation, diffusion_generation
from scoredae.sampling import dpm_solver_pp, edm_sampler, ipndm, karras_sigmas
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
# Error per denoiser call on the exact mixture
# --------------------------------------------
# 4,000 exact samples of :math:`p_{10}` carried to :math:`\sigma = 0` by each ODE solver with the
# exact denoiser, at 5 to 40 denoiser calls (Heun: two a step, the others one), and their sliced
# Wasserstein distance to 4,000 exact samples of :math:`p`; the dashed line is the distance between
# two exact draws, the floor at this sample size. The multistep solvers reach the floor in fewer
# calls than Heun, whose second call a step buys order, not steps.
generator = torch.Generator().manual_seed(2)
x_T = mixture.noised(10.0).sample(4000, generator=generator)
exact, other = mixture.sample(4000, generator=generator), mixture.sample(4000, generator=generator)
solvers = {"Heun": lambda s: edm_sampler(MixtureDenoiser(mixture), x_T, s),
           "DPM-Solver++(2M)": lambda s: dpm_solver_pp(MixtureDenoiser(mixture), x_T, s, order=2),
           "DPM-Solver++(3M)": lambda s: dpm_solver_pp(MixtureDenoiser(mixture), x_T, s, order=3),
           "iPNDM": lambda s: ipndm(MixtureDenoiser(mixture), x_T, s)}
budgets = (5, 10, 20, 40)
fig, ax = plt.subplots(figsize=(6, 3.8))
for name, solve in solvers.items():
    steps = [(nfe + 1) // 2 if name == "Heun" else nfe for nfe in budgets]
    errors = [sliced_wasserstein(solve(karras_sigmas(0.002, 10.0, n)).samples, exact,
                                 generator=torch.Generator().manual_seed(3)) for n in steps]
    ax.plot([2 * n - 1 if name == "Heun" else n for n in steps], errors, "o-", label=name)
ax.axhline(sliced_wasserstein(other, exact, generator=torch.Generator().manual_seed(3)), color="k", ls="--", lw=1,
           label="two exact draws")
ax.set(xscale="log", yscale="log", xlabel="denoiser calls", ylabel="sliced W2 to exact samples",
       title="ODE solvers on the exact mixture")
ax.set_xticks(budgets, [str(b) for b in budgets])
ax.minorticks_off()
ax.legend(fontsize=8)
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
# machine's thread count are stored with each model): the share of samples the MNIST classifier
# calls with confidence >= 0.9, the Frechet distance of its features to the test set, and the median
# pixel distance from each sample to its nearest training digit, against the number of denoiser
# calls. Solid lines: the solvers on ``resunet_cfg`` unconditionally; stars: guided (label i mod 10,
# the weight beside each); grey: Heun's ODE on ``unet_edm``, the model before it. Dashed: 1,000
# real digits (training digits for the quality, held-out test digits for the distance).
records = {name: list_pretrained()[name]["generation"] for name in ("resunet_cfg", "unet_edm")}
keys = {"confident_share": "confident share (>= 0.9)", "fid": "classifier FID",
        "samples median nearest": "median distance to the nearest training digit"}
fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
curves = {**{("resunet_cfg", m): m for m in ("dpm++2m", "dpm++3m", "ipndm", "heun")}, ("unet_edm", "heun"): "heun, unet_edm"}
for (name, method), label in curves.items():
    rows = sorted((r for r in records[name]["rows"] if r["method"] == method and not r.get("churn")
                   and r["guidance"] is None), key=lambda r: r["nfe"])
    style = {"color": "0.6", "ls": ":"} if name == "unet_edm" else {"ls": "-"}
    for ax, key in zip(axes, keys):
        if all(key in r for r in rows):
            ax.plot([r["nfe"] for r in rows], [r[key] for r in rows], marker="o", label=label, ms=4, **style)
guided = [r for r in records["resunet_cfg"]["rows"] if r["guidance"] is not None]
for ax, key in zip(axes, keys):
    ax.plot([r["nfe"] for r in guided], [r[key] for r in guided], "*", color="k", ms=9, label="guided")
    for r in guided:
        ax.annotate(f"w={r['guidance']:g}", (r["nfe"], r[key]), textcoords="offset points", xytext=(5, 0), fontsize=7)
floor, held_out = records["resunet_cfg"]["real_digits"], records["resunet_cfg"]["held_out_digits"]
for ax, (key, name) in zip(axes, keys.items()):
    ax.axhline(held_out["median nearest"] if key == "samples median nearest" else floor[key], color="k", ls="--", lw=1)
    ax.set(xscale="log", xlabel="denoiser calls per sample", ylabel=name)
    ax.set_xticks([5, 10, 20, 35, 80], ["5", "10", "20", "35", "80"])
    ax.minorticks_off()
axes[1].set_yscale("log")
axes[0].legend(fontsize=7)
fig.tight_layout()

# %%
# Asking for a digit: classifier-free guidance
# --------------------------------------------
# ``resunet_cfg`` was trained with its labels and, 15% of the time, without; one network gives
# :math:`D(x, \sigma \mid c)` and :math:`D(x, \sigma)`. Rows: ten samples, digit :math:`i` in column
# :math:`i`, DPM-Solver++(2M) with 20 denoiser calls in all (ten guided steps), guidance weight
# :math:`w` = 0 (the conditional model), 1 and 3. Guidance samples the tilted density
# :math:`p(x)\, p(c \mid x)^{1 + w}`: the digits get surer and thicker as :math:`w` grows, and more alike.
cfg = load_pretrained("resunet_cfg")
labels = torch.arange(10)
fig, axes = plt.subplots(4, 1, figsize=(8, 4.4))
rows = {"unconditional, 20 calls": {}} | {f"guidance w = {w:g}, 20 calls": {"class_labels": labels, "guidance": w}
                                         for w in (0.0, 1.0, 3.0)}
for ax, (name, options) in zip(axes, rows.items()):
    result = diffusion_generation(cfg, 10, method="dpm++2m", nfe=20, generator=torch.Generator().manual_seed(4),
                                  **options)
    ax.imshow(torch.cat(list(result.samples.clamp(0, 1)[:, 0]), dim=1).numpy(), cmap="gray", vmin=0, vmax=1)
    ax.set_title(name, fontsize=9)
    ax.set_axis_off()
fig.tight_layout()

# %%
# Not copies: a network against the empirical-prior denoiser
# ----------------------------------------------------------
# The exact MMSE denoiser of the *empirical* distribution of the training digits (deepinv's ``MMSE``
# over the 60,000 training images) is what a network that memorised its training set would be. The
# same ODE driven by it can only end on training digits. Each pair of rows: eight samples (top) and
# their nearest training digits (bottom), with the pixel L2 distance; held-out test digits lie at a
# median distance of about 4 from their nearest training digit.
train = load_mnist("train")[0]
memoriser = empirical_mmse(train)
memoriser.sigma_range = cfg.sigma_range  # the levels its ODE runs over
fig, axes = plt.subplots(4, 1, figsize=(8, 4.8))
for (top, bottom), (name, model) in zip(axes.reshape(2, 2), {"resunet_cfg": cfg, "empirical MMSE": memoriser}.items()):
    samples = diffusion_generation(model, 8, method="dpm++2m", nfe=20,
                                   generator=torch.Generator().manual_seed(5)).samples.clamp(0, 1)
    distances = nearest_training_distances(samples, train)
    nearest = torch.stack([train[int(((train - s).square().flatten(1).sum(1)).argmin())] for s in samples])
    for ax, images, title in ((top, samples, f"{name}: samples"), (bottom, nearest, "their nearest training digits, "
                              "distance " + " ".join(f"{d:.1f}" for d in distances[:, 0].tolist()))):
        ax.imshow(torch.cat(list(images[:, 0]), dim=1).numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=8)
        ax.set_axis_off()
fig.tight_layout()
