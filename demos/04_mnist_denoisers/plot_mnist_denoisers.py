r"""
The shipped MNIST denoisers side by side
========================================

Every shipped network was trained with the squared error
:math:`\mathbb E \lVert D(x + \sigma n, \sigma) - x \rVert^2`, whose minimiser is the posterior
mean :math:`\mathbb E[x \mid x + \sigma n]`. They all estimate the same thing; they differ in how
close they get. Here each one denoises the same test digits at :math:`\sigma = 0.5` (where the
noise hides most of the stroke), with its PSNR and SSIM on 500 test digits; then the
noise-conditional U-Net, one network for every level, is followed from :math:`\sigma = 0.02`
to 1.
"""

# %%
import matplotlib.pyplot as plt
import torch

from scoredae.data import load_mnist
from scoredae.eval.denoising import denoising_metrics, noisy_subset
from scoredae.nets import list_pretrained, load_pretrained

digits, _ = load_mnist("test")
clean = digits[:500]  # (500, 1, 28, 28)
sigma = 0.5
noisy = noisy_subset(clean, sigma)  # fixed-seed noise, the same for every model
names = [n for n, meta in list_pretrained().items() if meta.get("data", {}).get("dataset", "mnist") == "mnist"]
models = {name: load_pretrained(name) for name in names}

# %%
# Eight digits, denoised by each model
# ------------------------------------
# Rows: the clean digits, the noisy input, then one row per model (best PSNR first).
scores = {"noisy input": denoising_metrics(None, clean, sigma)}
with torch.no_grad():
    outputs = {name: model(noisy[:8], sigma).clamp(0, 1) for name, model in models.items()}
    scores |= {name: denoising_metrics(model, clean, sigma) for name, model in models.items()}
order = sorted(models, key=lambda n: -scores[n]["psnr"])
rows = [("clean", clean[:8]), ("noisy input", noisy[:8].clamp(0, 1))] + [(n, outputs[n]) for n in order]

fig, axes = plt.subplots(len(rows), 1, figsize=(7, 0.95 * len(rows)))
for ax, (name, images) in zip(axes, rows):
    ax.imshow(torch.cat(list(images[:, 0]), dim=1).numpy(), cmap="gray", vmin=0, vmax=1)
    score = f"  {scores[name]['psnr']:.2f} dB" if name in scores else ""
    ax.set_ylabel(f"{name}{score}", rotation=0, ha="right", va="center", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle(f"Denoising at sigma = {sigma} (PSNR on 500 test digits)")
fig.tight_layout()

# %%
# Scores and sizes
# ----------------
# Bars: PSNR and SSIM on 500 test digits; the number of parameters in brackets.
params = {name: sum(p.numel() for p in models[name].parameters()) for name in order}
labels = [f"{name} ({params[name] / 1e3:.0f}k)" for name in order]
fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
for ax, metric in zip(axes, ["psnr", "ssim"]):
    values = [scores[name][metric] for name in order]
    ax.barh(labels, values, color="C0")
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:.2f}" if metric == "psnr" else f" {v:.3f}", va="center", fontsize=8)
    ax.set(xlabel="PSNR (dB)" if metric == "psnr" else "SSIM",
           title=f"{metric.upper()} (noisy input: {scores['noisy input'][metric]:.2f})",
           xlim=(0, 1.12 * max(values)))
axes[0].invert_yaxis()
fig.tight_layout()

print(f"{'model':<20}{'parameters':>12}{'PSNR (dB)':>11}{'SSIM':>8}")
for name in ["noisy input", *order]:
    print(f"{name:<20}{params.get(name, 0):>12,}{scores[name]['psnr']:>11.2f}{scores[name]['ssim']:>8.3f}")

# %%
# One network for every noise level
# ---------------------------------
# The noise-conditional U-Net takes :math:`\sigma` as an input channel and was trained on
# :math:`\sigma \in [0.01, 1]`. Its gain over the noisy input grows with the noise; the
# fixed-sigma models are the points at 0.5. Below, one digit at four levels: noisy (left) and
# denoised (right).
levels = [0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0]
ncsn = models["unet_ncsn"]
curve = {s: denoising_metrics(ncsn, clean, s, ssim=False)["psnr"] for s in levels}
baseline = {s: denoising_metrics(None, clean, s, ssim=False)["psnr"] for s in levels}
shown = [0.1, 0.3, 0.5, 1.0]
fig, axes = plt.subplot_mosaic([["curve"] * 4, [f"{s}" for s in shown]], figsize=(8, 6.5),
                               height_ratios=[3, 1.2])
ax = axes["curve"]
ax.plot(levels, list(curve.values()), "o-", label="unet_ncsn (noise-conditional)")
ax.plot(levels, list(baseline.values()), "k--", label="noisy input")
ax.scatter([sigma] * (len(order) - 1), [scores[n]["psnr"] for n in order if n != "unet_ncsn"], s=12,
           color="C1", zorder=3, label="fixed-sigma models")
ax.set(xlabel="sigma", ylabel="PSNR (dB), 500 test digits", title="PSNR across noise levels")
ax.legend(fontsize=8)
digit = clean[3:4]
for s in shown:  # one digit, noisy and denoised
    y = digit + s * torch.randn(digit.shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = ncsn(y, s).clamp(0, 1)
    axes[f"{s}"].imshow(torch.cat([y.clamp(0, 1), out], dim=3)[0, 0].numpy(), cmap="gray")
    axes[f"{s}"].set_title(f"sigma = {s}", fontsize=9)
    axes[f"{s}"].set_axis_off()
fig.tight_layout()
