r"""
Inverse problems on digits and a photograph with a diffusion prior
==================================================================

The same samplers with the shipped generative model as the prior: a test digit with a box of
12 x 12 pixels missing (:math:`y = M x + 0.05 n`), the same digit seen through 2 x 2 block means
(:math:`y = A x + 0.02 n`, super-resolution), each by PnP-ULA (the Langevin baseline) and the six
samplers of :mod:`scoredae.recipes.posterior` on 25 levels, four samples each. No exact posterior is known here, so
each row reports what can be checked: the PSNR of the samples' mean against the clean digit, and
the share of the clean pixels inside the samples' central 90% interval (with four samples the
interval is close to their range, so calibrated samples score somewhat below 0.90; far less means
samples that agree with each other but not with the truth). The rows differ in cost too: TMPD's
row-sum covariance adds a Jacobian-vector product to every level, PnP-ULA runs 200 steps.
"""

# %%
import time

import matplotlib.pyplot as plt
import torch

from scoredae.data import load_images, load_mnist
from scoredae.data.images import center_crops
from scoredae.nets import load_pretrained
from scoredae.recipes.posterior import (
    DIFFUSION_POSTERIOR,
    diffusion_posterior,
    observe,
    posterior_sampling,
    posterior_summary,
)

model = load_pretrained("resunet_cfg")
x = load_mnist("test")[0][7:8]  # (1, 1, 28, 28)
first = ("posterior", "dps", "pigdm", "tmpd", "ddrm", "diffpir", "smc")
later = tuple(m for m in DIFFUSION_POSTERIOR if m not in first)
n = 4


def compare(task: str, methods=first) -> None:
    """Each method on ``task``: a column of the mean, the standard deviation and two samples."""
    y, op, noise_sigma = observe(task, x, seed=0)
    fig, axes = plt.subplots(4, len(methods), figsize=(1.45 * len(methods), 6.6))
    print(f"{task}: {'method':>10} {'seconds':>8} {'PSNR':>6} {'coverage':>9}")
    for column, method in zip(axes.T, methods):
        start = time.perf_counter()
        gen = torch.Generator().manual_seed(1)
        if method == "posterior":  # PnP-ULA at the prior level 0.05, warm-started, 200 steps
            samples = posterior_sampling(model, y, noise_sigma=noise_sigma, forward=op, n_chains=n, n_steps=200,
                                         generator=gen).samples
        else:
            samples = diffusion_posterior(model, y, noise_sigma=noise_sigma, forward=op, method=method, n=n,
                                          steps=25, generator=gen).samples
        s = posterior_summary(samples, x)
        print(f"{task}: {method:>10} {time.perf_counter() - start:8.1f} {s['psnr']:6.2f} {s['coverage']:9.3f}")
        panels = [s["mean"][0, 0], s["std"][0, 0], samples[0, 0], samples[1, 0]]
        for ax, img, cmap in zip(column, panels, ("gray", "magma", "gray", "gray")):
            ax.imshow(img.clamp(0, 1).numpy() if cmap == "gray" else img.numpy(), cmap=cmap)
            ax.set_xticks([])
            ax.set_yticks([])
        column[0].set_title(f"{method}\n{s['psnr']:.1f} dB, cover {s['coverage']:.2f}", fontsize=8)
    for ax, label in zip(axes[:, 0], ("mean", "std", "sample 1", "sample 2")):
        ax.set_ylabel(label, fontsize=9)
    fig.suptitle(f"{task} of a test digit", fontsize=10)
    fig.tight_layout()


# %%
# Inpainting: the box hides the digit's middle, and the samples differ in what they put there.
compare("inpaint")

# %%
# Super-resolution: every pixel is seen, through its block's mean.
compare("super-resolution")

# %%
# The other samplers of :mod:`scoredae.inverse` on the same inpainting: DDNM's projection, the
# particle filters in the operator's spectral domain (MCGdiff, FPS; four particles share the one
# observation), Markov chains on the clean image (DAPS, PnP-DM, DPnP), RED-diff's optimisation and
# the Gaussian fits of MGPS and DCPS, each at its own setting on the same 25 levels.
compare("inpaint", later)

# %%
# A photograph deblurred (a circular Gaussian blur of width 1 pixel, :math:`\sigma_y = 0.02`)
# with the colour hybrid transformer + U-Net as the prior. Its noise range stops at
# :math:`\sigma_{\max} = 0.2`, too low for a start from noise, so every chain starts at the
# Wiener estimate plus :math:`\sigma_{\max}` noise (``start="observation"``). DDRM needs a real SVD,
# which the Fourier basis of the blur is not; the particle sampler needs far more particles than
# four at this size (its weights collapse onto one).
colour = load_pretrained("hybrid_color")
photo = center_crops(load_images("images", "test", channels=3)[0][:1], 64)  # (1, 3, 64, 64): the cat's face
y, op, noise_sigma = observe("deblur", photo, seed=0)
shown = {"clean": photo, "blurred y": y}
for method in ("dps", "pigdm", "diffpir"):
    samples = diffusion_posterior(colour, y, noise_sigma=noise_sigma, forward=op, method=method, n=4, steps=20,
                                  shape=tuple(photo.shape[1:]), data_mean=0.45, data_std=0.25, start="observation",
                                  generator=torch.Generator().manual_seed(1)).samples
    s = posterior_summary(samples, photo)
    shown[f"{method}: {s['psnr']:.1f} dB, cover {s['coverage']:.2f}"] = s["mean"]
fig, axes = plt.subplots(1, len(shown), figsize=(2.0 * len(shown), 2.5))
for ax, (title, img) in zip(axes, shown.items()):
    ax.imshow(img[0].permute(1, 2, 0).clamp(0, 1).numpy())
    ax.set_title(title, fontsize=8)
    ax.axis("off")
fig.tight_layout()
