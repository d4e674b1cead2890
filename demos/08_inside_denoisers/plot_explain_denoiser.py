r"""
Where a denoiser looks: activation maps and the Jacobian row
============================================================

A class-activation map (CAM) explains a classifier's score; a denoiser has none, so the maps here
use targets a denoiser can have (:mod:`scoredae.explain`): EigenCAM needs no target at all (the
first principal component of a layer's activations), Grad-CAM differentiates the mean of the
output over a region. Beside them, the map only an MMSE denoiser has: the row of its Jacobian at
one output pixel :math:`i`, equal to :math:`\operatorname{Cov}[x_i, x \mid y] / \sigma^2` by
second-order Tweedie, which says which input pixels move that output pixel.

The hybrid model runs a transformer over 4 x 4 patches (8 x 8 for photographs) and a convolutional
U-Net beside it; the maps show where each part responds, on MNIST digits and on a held-out
photograph.
"""

# %%
import matplotlib.pyplot as plt
import torch

from scoredae.data import load_images, load_mnist
from scoredae.data.images import center_crops
from scoredae.explain import activation_map, band_pass, jacobian_row
from scoredae.nets import load_pretrained
from scoredae.viz import plot_heatmap

LAYERS = {"transformer (last layer)": "tokens.layers.layers.1", "conv encoder (H/2)": "enc2",
          "conv decoder (H)": "dec1"}


def show(ax, image, title, **style):
    ax.imshow(image, **style)
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()


# %%
# MNIST digits at :math:`\sigma = 0.5`
# ------------------------------------
# Rows: three noisy test digits. Columns: EigenCAM of the transformer's last layer and of the
# convolutional encoder and decoder; Grad-CAM of the output's mean over the central 8 x 8 box
# (dashed); the Jacobian row at the centre pixel (cross), in red where raising that input pixel
# raises the output pixel, in blue where it lowers it.
hybrid = load_pretrained("hybrid")
digits = load_mnist("test")[0][:3]
sigma = 0.5
y = digits + sigma * torch.randn(digits.shape, generator=torch.Generator().manual_seed(0))
box = torch.zeros(28, 28)
box[10:18, 10:18] = 1
maps = {title: activation_map(hybrid, y, sigma, layer) for title, layer in LAYERS.items()}
maps["Grad-CAM, output over the box"] = activation_map(hybrid, y, sigma, "dec1", method="grad", target=box)
rows = jacobian_row(hybrid, y, sigma, (14, 14))[:, 0]  # (3, 28, 28)

fig, axes = plt.subplots(3, 6, figsize=(11, 6))
for r in range(3):
    show(axes[r, 0], y[r, 0].clamp(0, 1), "noisy" if r == 0 else "", cmap="gray", vmin=0, vmax=1)
    for c, (title, heat) in enumerate(maps.items(), start=1):
        show(axes[r, c], heat[r], title if r == 0 else "", cmap="jet", vmin=0, vmax=1)
    axes[r, 4].add_patch(plt.Rectangle((9.5, 9.5), 8, 8, fill=False, ls="--", color="w"))
    top = float(rows[r].abs().max())
    show(axes[r, 5], rows[r], "Jacobian row at the centre" if r == 0 else "", cmap="RdBu_r", vmin=-top, vmax=top)
    axes[r, 5].plot(14, 14, "k+", ms=8)
fig.tight_layout()

# %%
# On digits the transformer's first component follows position, the top rows against the rest,
# more than the digit: its tokens carry their positional embedding. The convolutional encoder
# follows the strokes. A principal component has no sign, so the decoder's map lights the
# background: the same stroke/background contrast, the other way round. Grad-CAM of the box
# shows the strokes that feed the box's output, and the Jacobian row is local: the output pixel is
# a weighted average of its neighbourhood, spread along the stroke through it.
#
# One map in detail, with the band threshold of :func:`~scoredae.explain.band_pass`: only the
# encoder's responses between 0.5 and 1 are kept, rescaled.
heat = maps["conv encoder (H/2)"][0]
fig = plot_heatmap(y[0].clamp(0, 1), band_pass(heat, 0.5, 1.0), title="encoder EigenCAM, band [0.5, 1]")

# %%
# A held-out photograph at :math:`\sigma = 0.1`
# ---------------------------------------------
# The colour hybrid model on the central 192 x 192 crop of ``chelsea.png``, which it never saw:
# EigenCAM of its transformer and of its convolutional encoder and decoder, and the Jacobian row
# at a pixel of the cat's eye (green channel), shown in the 33 x 33 window around it.
colour = load_pretrained("hybrid_color")
images, names = load_images("images", "test", channels=3)
clean = center_crops([images[names.index("chelsea.png")]], 192)  # (1, 3, 192, 192)
sigma = 0.1
noisy = clean + sigma * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
heats = {title: activation_map(colour, noisy, sigma, layer)[0] for title, layer in LAYERS.items()}
eye = (58, 83)
row = jacobian_row(colour, noisy, sigma, eye, channel=1)[0, 1]  # (192, 192)
window = row[eye[0] - 16 : eye[0] + 17, eye[1] - 16 : eye[1] + 17]

fig, axes = plt.subplots(1, 5, figsize=(13, 3))
show(axes[0], noisy[0].clamp(0, 1).permute(1, 2, 0), "noisy, sigma = 0.1")
axes[0].plot(eye[1], eye[0], "g+", ms=10)
for ax, (title, heat) in zip(axes[1:4], heats.items()):
    show(ax, noisy[0].clamp(0, 1).permute(1, 2, 0), title)
    ax.imshow(heat, cmap="jet", alpha=0.5, vmin=0, vmax=1)
top = float(window.abs().max())
show(axes[4], window, "Jacobian row at the eye (33 x 33)", cmap="RdBu_r", vmin=-top, vmax=top)
axes[4].plot(16, 16, "k+", ms=8)
fig.tight_layout()

# %%
# On the photograph the transformer responds to the contours of the eye and the nose, the
# encoder to the eye's rim, and the decoder's first component is mostly the noise. The Jacobian
# row at the eye is a small blob: the posterior at :math:`\sigma = 0.1` ties a pixel to a few
# neighbours, and the weights sum to about one, a local average.
print(f"Jacobian row at the eye: centre weight {float(window[16, 16]):.3f}, sum over the picture "
      f"{float(row.sum()):.3f} (the share of the output pixel that follows the local mean)")
