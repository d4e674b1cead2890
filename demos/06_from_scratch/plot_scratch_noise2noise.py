r"""
Backpropagation by hand, and Noise2Noise
========================================

:mod:`scoredae.scratch` is a tiny neural-network framework without autograd: every layer has a
``forward`` and a hand-written ``backward(grad_output) -> grad_input`` that also accumulates its
parameter gradients. A network is the chain :math:`f = f_n \circ \dots \circ f_1`, and its
backward pass is the chain rule run in reverse,

.. math::
    \frac{\partial L}{\partial x_{i-1}} = \Big(\frac{\partial f_i}{\partial x_{i-1}}\Big)^{\top}
    \frac{\partial L}{\partial x_i},

which is exactly what autograd records and replays. We train a small convolutional denoising
autoencoder on MNIST with it, and use it to show the Noise2Noise argument (Lehtinen et al. 2018):
with :math:`y_1 = x + \sigma n_1` and :math:`y_2 = x + \sigma n_2` (independent noises),

.. math::
    \mathbb E[y_2 \mid y_1] = \mathbb E[x \mid y_1] + \sigma\, \mathbb E[n_2] = \mathbb E[x \mid y_1],

so the squared error against a *noisy* target has the same minimiser, the MMSE denoiser, as
against the clean image. Budgets here are small so that the demo runs in about a minute on a CPU;
they are stated in each cell.
"""

# %%
# The scratch network and its autograd twin follow the same loss curve
# ---------------------------------------------------------------------
# ``net.to_torch()`` builds the same network from ``torch.nn`` layers with copies of the same
# weights. Trained on the same batches in float64, one by hand-written backward passes and the
# other by autograd, the two loss curves agree to rounding (50 Adam steps, batch 16).
import matplotlib.pyplot as plt
import torch

import scoredae.scratch as S
from scoredae.data import load_mnist
from scoredae.eval import psnr
from scoredae.mixtures import GaussianMixture

SIGMA = 0.5
train_images, _ = load_mnist("train")
test_images, _ = load_mnist("test")

g = torch.Generator().manual_seed(0)
net = S.conv_autoencoder(channels=(8, 16), generator=g, dtype=torch.float64)
twin = net.to_torch()
pairs = list(S.noise2noise_batches(train_images[:2000].double(), SIGMA, batch_size=16, steps=50, generator=g))
curve = S.fit(net, S.Adam(net.params(), lr=1e-3), pairs)

twin_curve = S.fit_torch(twin, torch.optim.Adam(twin.parameters(), lr=1e-3), pairs)
max_rel = float(((curve - twin_curve).abs() / twin_curve).max())

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(curve, lw=3, alpha=0.5, label="scratch (hand-written backward)")
ax.plot(twin_curve, "k--", lw=1, label="torch twin (autograd)")
ax.set(xlabel="step", ylabel="Noise2Noise loss", title=f"same loss curve: max relative difference {max_rel:.1e}")
ax.legend()

# %%
# SGD vs Adam on the same budget
# ------------------------------
# The MNIST autoencoder (stride-2 convolutions 1 -> 16 -> 32 channels, then two upsampling
# blocks back to 1 channel and a sigmoid), trained with Noise2Noise pairs at :math:`\sigma = 0.5`
# for 300 steps of batch 32 from the same initial weights, with SGD (learning rate 0.5) and with
# Adam (Kingma & Ba 2015; learning rate :math:`10^{-3}`). Curves are moving averages over
# 10 batches. (With Adam at :math:`2 \cdot 10^{-3}` this network collapses within 50 steps to a
# constant black output, the dead-ReLU failure, and stays at the loss
# :math:`\mathbb E[x^2] + \sigma^2 \approx 0.36`.) The loss of a perfect denoiser would be the MMSE plus :math:`\sigma^2 = 0.25`,
# the variance of the noisy target.
STEPS, BATCH = 300, 32
train32 = train_images[:20000]


def noise2noise_net(make_optimizer, batches=S.noise2noise_batches):
    g = torch.Generator().manual_seed(1)
    model = S.conv_autoencoder(channels=(16, 32), generator=g)
    history = S.fit(model, make_optimizer(model.params()), batches(train32, SIGMA, BATCH, STEPS, generator=g))
    return model, history


sgd_net, sgd_curve = noise2noise_net(lambda p: S.SGD(p, lr=0.5))
adam_net, adam_curve = noise2noise_net(lambda p: S.Adam(p, lr=1e-3))

fig, ax = plt.subplots(figsize=(6, 3.5))
for name, history in [("SGD, lr 0.5", sgd_curve), ("Adam, lr 1e-3", adam_curve)]:
    ax.plot(S.moving_average(history, 10), label=name)
ax.axhline(SIGMA**2, color="gray", ls=":", label=r"$\sigma^2$ (noisy-target floor)")
ax.set(xlabel="step", ylabel="loss (moving average, 10 batches)", title="Noise2Noise training on MNIST")
ax.legend()

# %%
# Noise2Noise vs Noise2Clean
# --------------------------
# The same network, budget and optimiser (Adam), trained on :math:`(x + \sigma n, x)`
# (Noise2Clean). Both are evaluated by the PSNR on 1000 test digits at :math:`\sigma = 0.5`.
# This small budget is far from convergence. With a longer one (the 32/64-channel network,
# 1500 Adam steps of batch 64 at learning rate :math:`5 \cdot 10^{-4}`, about 2.5 CPU-minutes
# each) we measured 18.8 dB for Noise2Noise and 19.0 dB for Noise2Clean on 2000 test digits
# (noisy input: 6.0 dB); after 4000 steps (about 6.7 CPU-minutes each), 19.44 dB and 19.53 dB.
n2c_net, _ = noise2noise_net(lambda p: S.Adam(p, lr=1e-3), batches=S.noise2clean_batches)

g_test = torch.Generator().manual_seed(2)
clean = test_images[:1000]
noisy = clean + SIGMA * torch.randn(clean.shape, generator=g_test)


def mean_psnr(estimate: torch.Tensor) -> float:
    """Mean over images of 10 log10(1 / MSE), pixels in [0, 1]."""
    return float(psnr(estimate, clean).mean())


denoisers = {"Noise2Noise": S.ScratchDenoiser(adam_net, SIGMA), "Noise2Clean": S.ScratchDenoiser(n2c_net, SIGMA)}
outputs = {name: d(noisy, SIGMA) for name, d in denoisers.items()}
rows = [("noisy input", mean_psnr(noisy))] + [(name, mean_psnr(out)) for name, out in outputs.items()]

fig, axes = plt.subplots(4, 6, figsize=(7.5, 5.5))
for row, (label, images) in zip(axes, [("noisy", noisy), *outputs.items(), ("clean", clean)]):
    for ax, image in zip(row, images[:6]):
        ax.imshow(image[0].clamp(0, 1), cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([]), ax.set_yticks([])
    row[0].set_ylabel(label)
table = "   ".join(f"{name}: {value:.2f} dB" for name, value in rows)
fig.suptitle(f"PSNR on 1000 test digits, sigma = {SIGMA}\n{table}", fontsize=9)

# %%
# The same argument on a 2-d Gaussian mixture
# -------------------------------------------
# For a mixture prior the MMSE denoiser :math:`\mathbb E[x \mid y]` is known exactly, so the
# *Bayes gap* (MSE of the learned denoiser / MSE of the exact posterior mean, on fresh pairs;
# 1 is optimal) measures how close training got. A scratch MLP (two hidden layers of 64 ReLU
# units) trained with Noise2Noise pairs reaches a gap close to 1, like Noise2Clean (2000 Adam
# steps of batch 512 each).
gm = GaussianMixture(torch.tensor([0.3, 0.3, 0.4]), torch.tensor([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.5]]),
                     torch.tensor([0.05, 0.2, 0.1]))
g = torch.Generator().manual_seed(3)
points = gm.sample(50_000, generator=g)
x_eval = gm.sample(50_000, generator=g)
y_eval = x_eval + SIGMA * torch.randn(x_eval.shape, generator=g)
bayes_error = (gm.mmse(y_eval, SIGMA) - x_eval).pow(2).sum()

fig, axes = plt.subplots(1, 3, figsize=(10, 3.4), sharex=True, sharey=True)
axes[0].scatter(*y_eval[:2000].T, s=2, c="gray")
axes[0].set_title(r"noisy points $y$, $\sigma = 0.5$")
for ax, batches in zip(axes[1:], [S.noise2noise_batches, S.noise2clean_batches]):
    mlp = S.mlp(2, hidden=64, depth=2, generator=g)
    optimizer = S.Adam(mlp.params(), lr=3e-3)
    S.fit(mlp, optimizer, batches(points, SIGMA, 512, 1500, generator=g))
    optimizer.lr = 5e-4
    S.fit(mlp, optimizer, batches(points, SIGMA, 512, 500, generator=g))
    denoised = S.ScratchDenoiser(mlp, SIGMA)(y_eval, SIGMA)
    gap = float((denoised - x_eval).pow(2).sum() / bayes_error)
    ax.scatter(*denoised[:2000].T, s=2)
    ax.set_title(f"{batches.__name__.split('_')[0]}: Bayes gap {gap:.3f}")
