r"""
Langevin sampling from trained MNIST denoisers
==============================================

A denoiser trained with the squared error estimates :math:`\mathbb E[x \mid y]`, so Tweedie's
formula gives the score of the noised digit density,
:math:`\nabla \log p_\sigma(y) = (D(y, \sigma) - y) / \sigma^2`, and Langevin dynamics can sample
from it. Four experiments with the shipped weights:

1. a **fixed-sigma** model (trained at :math:`\sigma = 0.5`) drives ULA on :math:`p_{0.5}` from a
   noisy test digit: the chains wander among plausible digits;
2. the same sampler started from **pure noise** fails: far from the data the denoiser never saw a
   training example, its score is unreliable, and the chains do not reach digits;
3. the **noise-conditional** U-Net drives annealed Langevin (Song & Ermon 2019) from noise to digits;
4. **posterior sampling** (PnP-ULA, Laumont et al. 2022) for denoising and inpainting gives a
   posterior mean and a per-pixel standard deviation.
"""

# %%
import matplotlib.pyplot as plt
import torch

from scoredae import TweedieScore
from scoredae.data import load_mnist
from scoredae.nets import load_pretrained
from scoredae.recipes.generation import annealed_generation, langevin_at_level
from scoredae.recipes.posterior import box_mask, posterior_sampling
from scoredae.sampling import geometric_sigmas
from scoredae.viz import animate_images, image_grid

torch.manual_seed(0)
generator = torch.Generator().manual_seed(0)
fixed = load_pretrained("conv")  # a ConvDAE trained at sigma = 0.5
ncsn = load_pretrained("unet_ncsn")  # a U-Net trained over sigma in [0.01, 1]
digits, _ = load_mnist("test")
x = digits[:1]  # (1, 1, 28, 28)

# %%
# 1 and 2: ULA on :math:`p_{0.5}`, from a noisy digit and from pure noise
# ------------------------------------------------------------------------
# ULA samples :math:`p_{0.5}`, i.e. *noisy* digits; each final state is shown denoised,
# :math:`D(x_T, 0.5) = \mathbb E[x \mid x_T]`, to make the digit visible.
sigma = fixed.trained_sigma
starts = {
    "noisy digit x + 0.5 n": x + 0.5 * torch.randn(8, 1, 28, 28, generator=generator),
    "pure noise": torch.rand(8, 1, 28, 28, generator=generator),
}
for name, x0 in starts.items():
    chains = langevin_at_level(fixed, x0, n_steps=40, generator=generator)
    with torch.no_grad():
        denoised = fixed(chains.samples, sigma)
    image_grid(torch.cat([x0.clamp(0, 1), denoised]), nrow=8,
               title=f"ULA at sigma = {sigma:g} from {name}: starts (top), denoised chains (bottom)")
# %%
# From the noisy digit the chains stay near the data and return variations of the digit (run
# them longer and they wander to other digits: :math:`p_{0.5}` is one connected blur of all
# digits). From noise they start where :math:`p_{0.5}` has almost no mass: the denoiser was never
# trained there, the score it implies does not point to the digits, and the chains end in blotches.
# This is why NCSN anneals: start at a noise level whose :math:`p_\sigma` covers the starting point.

# %%
# 3: annealed Langevin with the noise-conditional model
# -----------------------------------------------------
# NCSN's MNIST setting: 10 geometric levels from 1 to 0.01, 100 steps each,
# :math:`\alpha_i = \epsilon\, \sigma_i^2 / \sigma_L^2` with :math:`\epsilon = 2 \times 10^{-5}`,
# then one Tweedie denoising step.
annealed = annealed_generation(ncsn, 16, record_every=20, generator=generator)
image_grid(annealed.samples.clamp(0, 1), nrow=8, title="annealed Langevin, 16 samples")

# %%
# Level by level: the first 8 chains every 20 steps. Top row, the Langevin states :math:`x_t`,
# samples of :math:`p_{\sigma_i}`; bottom row, Tweedie's estimate of the clean digit
# :math:`D(x_t, \sigma_i) = x_t + \sigma_i^2 \nabla \log p_{\sigma_i}(x_t)`. The large levels
# settle the overall shape, the small ones the strokes.
ladder = geometric_sigmas(1.0, 0.01, 10)
frames, titles = [], []
for k in range(annealed.trajectory.shape[1]):
    step = 20 * k
    level = max(step - 1, 0) // 100  # steps 1..100 run at level 0, 101..200 at level 1, ...
    states = annealed.trajectory[:8, k]
    with torch.no_grad():
        denoised = ncsn(states, float(ladder[level]))
    frames.append(torch.cat([states, denoised]).clamp(0, 1))
    titles.append(f"step {step} of 1000, level {level + 1} of 10: sigma = {float(ladder[level]):.3f}")
animation = animate_images(torch.stack(frames), titles, nrow=8)

# %%
# 4: posterior sampling for denoising and inpainting
# ---------------------------------------------------
# PnP-ULA on :math:`\log p(y \mid x) + \log p_{\sigma_p}(x)` with the Tweedie score of the
# noise-conditional model at :math:`\sigma_p = 0.05`; 8 chains, each first warmed up at smoother
# priors (:math:`\sigma_p` from 0.5 down), then 600 steps of which the second half are kept.
tasks = {
    "denoising, y = x + 0.3 n": (torch.ones(1, 28, 28), 0.3),
    "inpainting, 12 x 12 box missing": (box_mask(), 0.05),
}
fig, axes = plt.subplots(2, 4, figsize=(9, 5))
for row, (name, (mask, noise_sigma)) in zip(axes, tasks.items()):
    y = mask * x + noise_sigma * torch.randn(x.shape, generator=generator)
    masking = (lambda v, m=mask: m * v, lambda r, m=mask: m * r)  # A = A^T: keep the observed pixels
    post = posterior_sampling(ncsn, y, noise_sigma=noise_sigma, forward=masking, n_chains=8, n_steps=600,
                              warm_start_sigma=0.5, generator=generator)
    panels = [(x, "truth"), (y, "observation y"), (post.pooled_mean[None], "posterior mean"),
              (post.pooled_var.sqrt()[None], "posterior std")]
    for ax, (img, label) in zip(row, panels):
        shown = ax.imshow(img[0, 0].numpy(), cmap="magma" if label == "posterior std" else "gray")
        ax.set_title(label, fontsize=9)
        ax.set_axis_off()
    fig.colorbar(shown, ax=row[-1], fraction=0.046)
    row[0].text(-6, 14, name, rotation=90, va="center", fontsize=9)
fig.tight_layout()
# %%
# The standard deviation is large where the observation leaves the digit undetermined: inside the
# missing box, and along the strokes' edges when the noise hides them.

# %%
# The score behind all of this is Tweedie's, one line:
score = TweedieScore(ncsn)
print("score norm at a test digit, sigma = 0.1:", score(x, 0.1).norm().item())
