r"""
Denoising a held-out photograph: the colour models against BM3D
===============================================================

The shipped colour models were trained on random crops of 13 photographs and textures, with one
network for every noise level :math:`\sigma \in [0.01, 0.2]` (pixels in :math:`[0, 1]`). Here
they denoise a picture none of them saw, the cat of scikit-image's ``chelsea.png``, at
:math:`\sigma = 25/255 \approx 0.098`, the usual benchmark level, next to BM3D (Dabov et al.
2007, through :class:`deepinv.models.BM3D`), which needs no training at all. A picture of any
size goes through :func:`~scoredae.nets.tiling.denoise_image`, which pads it to the sizes the
network takes and, when it is large, denoises it in overlapping tiles.
"""

# %%
import deepinv
import matplotlib.pyplot as plt
import torch

from scoredae.data import load_images
from scoredae.eval import psnr
from scoredae.nets import list_pretrained, load_pretrained
from scoredae.nets.tiling import denoise_image

images, names = load_images("images", "test", channels=3)
clean = images[names.index("chelsea.png")].float().div(255)[None]  # (1, 3, 300, 451)
sigma = 25 / 255
noisy = clean + sigma * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
colour = [n for n, meta in list_pretrained().items() if meta.get("data", {}).get("dataset") == "images"]


def db(x: torch.Tensor) -> float:
    return float(psnr(x.clamp(0, 1), clean))


outputs = {"noisy": noisy}
for name in colour:
    outputs[name] = denoise_image(load_pretrained(name), noisy, sigma)
outputs["BM3D"] = deepinv.models.BM3D()(noisy, sigma)

# %%
# The outputs
# -----------
# PSNR in each title; the clean picture last.
panels = [*outputs.items(), ("clean", clean)]
cols = 3
fig, axes = plt.subplots(-(-len(panels) // cols), cols, figsize=(11, 2.6 * -(-len(panels) // cols)), squeeze=False)
for ax, (name, image) in zip(axes.ravel(), panels):
    ax.imshow(image[0].clamp(0, 1).permute(1, 2, 0).numpy())
    ax.set_title(name if name == "clean" else f"{name}: {db(image):.2f} dB", fontsize=10)
for ax in axes.ravel():
    ax.set_axis_off()
fig.tight_layout()

# %%
# Where the errors are
# --------------------
# The per-pixel error :math:`|\hat x - x|`, averaged over the three channels, on one colour scale.
# Edges and the fur's texture carry most of it: there the posterior is widest.
errors = {name: (image.clamp(0, 1) - clean).abs().mean(1)[0] for name, image in outputs.items() if name != "noisy"}
fig, axes = plt.subplots(1, len(errors), figsize=(3.6 * len(errors), 2.9), squeeze=False)
top = max(float(e.quantile(0.99)) for e in errors.values())
for ax, (name, error) in zip(axes[0], errors.items()):
    shown = ax.imshow(error.numpy(), cmap="magma", vmin=0, vmax=top)
    ax.set_title(f"{name}: mean {error.mean():.4f}", fontsize=10)
    ax.set_axis_off()
fig.colorbar(shown, ax=axes[0].tolist(), fraction=0.02, label="|error|")

print(f"{'denoiser':<16}{'PSNR (dB)':>10}")
for name, image in outputs.items():
    print(f"{name:<16}{db(image):>10.2f}")
