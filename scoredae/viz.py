r"""Figures of the score chain on 1D and 2D Gaussian mixtures.

Every function draws on a given :class:`matplotlib.axes.Axes` (or a new one) and returns it, or
returns a new :class:`matplotlib.figure.Figure`; none calls ``plt.show()``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from .mixtures import GaussianMixture


def _axes(ax):
    return plt.subplots(figsize=(5, 4))[1] if ax is None else ax


def _grid(extent, n: int, like: torch.Tensor):
    """A square grid over extent = (xmin, xmax, ymin, ymax): (X, Y) of shape (n, n), points (n*n, 2)."""
    xs = torch.linspace(extent[0], extent[1], n, dtype=like.dtype, device=like.device)
    ys = torch.linspace(extent[2], extent[3], n, dtype=like.dtype, device=like.device)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return gx, gy, torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)


def _require_dim(mixture: GaussianMixture, d: int) -> None:
    if mixture.dim != d:
        raise ValueError(f"mixture: expected a {d}D GaussianMixture, got dimension {mixture.dim}")


def plot_posterior_1d(prior: GaussianMixture, y: float, sigma: float, *, ax=None, xlim=(-5.0, 5.0)):
    r"""Prior :math:`p(x)`, likelihood :math:`p(y \mid x) = \mathcal N(y; x, \sigma^2)` as a function of
    :math:`x`, and posterior :math:`p(x \mid y) \propto p(y \mid x)\, p(x)`, with the MMSE estimate
    :math:`\mathbb E[x \mid y]` and the MAP :math:`\arg\max_x p(x \mid y)` marked."""
    _require_dim(prior, 1)
    ax = _axes(ax)
    x = torch.linspace(*xlim, 600, dtype=prior.means.dtype).reshape(-1, 1)  # (N, 1)
    post = prior.posterior(torch.full_like(x, float(y)), sigma)  # the same posterior N times
    likelihood = torch.exp(-0.5 * ((x[:, 0] - y) / sigma) ** 2) / (sigma * (2 * torch.pi) ** 0.5)
    ax.plot(x[:, 0], prior.log_prob(x).exp(), label="prior $p(x)$", color="C0")
    ax.plot(x[:, 0], likelihood, "--", label=r"likelihood $p(y\mid x)$", color="C2")
    ax.plot(x[:, 0], post.log_prob(x).exp(), label=r"posterior $p(x\mid y)$", color="C3", lw=2)
    mean, mode = post.mean()[0, 0].item(), post.mode()[0, 0].item()
    ax.axvline(mean, color="k", lw=1, label=f"MMSE = {mean:.2f}")
    ax.axvline(mode, color="m", ls=":", lw=2, label=f"MAP = {mode:.2f}")
    ax.set(xlabel="$x$", ylabel="density", title=f"$y = {y:g}$, $\\sigma = {sigma:g}$")
    ax.legend(fontsize=8)
    return ax


def plot_estimators_1d(prior: GaussianMixture, sigma: float, *, ax=None, ylim=(-5.0, 5.0)):
    r"""The MMSE estimate :math:`\mathbb E[x \mid y]` and the MAP against the observation :math:`y`:
    the MMSE is smooth, the MAP of a multimodal posterior jumps between modes."""
    _require_dim(prior, 1)
    ax = _axes(ax)
    y = torch.linspace(*ylim, 201, dtype=prior.means.dtype).reshape(-1, 1)
    post = prior.posterior(y, sigma)
    ax.plot(y[:, 0], y[:, 0], color="0.7", lw=1, label="identity")
    ax.plot(y[:, 0], post.mean()[:, 0], color="k", label=r"MMSE $\mathbb{E}[x\mid y]$")
    ax.plot(y[:, 0], post.mode()[:, 0], ".", color="m", ms=3, label="MAP")
    ax.set(xlabel="observation $y$", ylabel="estimate", title=f"estimators, $\\sigma = {sigma:g}$")
    ax.legend(fontsize=8)
    return ax


def plot_score_field(mixture: GaussianMixture, sigma: float = 0.0, *, ax=None, extent=(-4, 4, -4, 4),
                     n_grid: int = 200, n_arrows: int = 20):
    r"""Level curves of :math:`\log p_\sigma` with the score :math:`\nabla \log p_\sigma` as arrows
    (their length is the score's norm, so arrows are long far from the data)."""
    _require_dim(mixture, 2)
    ax = _axes(ax)
    gx, gy, pts = _grid(extent, n_grid, mixture.means)
    ax.contourf(gx, gy, mixture.log_prob(pts, sigma).exp().reshape(gx.shape), levels=30, cmap="Blues")
    ax.contour(gx, gy, mixture.log_prob(pts, sigma).reshape(gx.shape), levels=12, colors="k",
               linewidths=0.4, alpha=0.5)
    ax_, ay_, arrows = _grid(extent, n_arrows, mixture.means)
    score = mixture.score(arrows, sigma)
    q = ax.quiver(ax_, ay_, score[:, 0].reshape(ax_.shape), score[:, 1].reshape(ax_.shape), color="C3",
                  angles="xy", width=0.003)
    reference = float(f"{float(score.norm(dim=1).median()):.1g}")  # a round arrow length for the key
    ax.quiverkey(q, 0.97, 0.03, reference, f"score norm {reference:g}", labelpos="W", coordinates="axes",
                 fontproperties={"size": 7}, labelcolor="0.2")
    ax.set(xlim=extent[:2], ylim=extent[2:], aspect="equal", xlabel="$x_1$", ylabel="$x_2$",
           title=f"$\\sigma = {sigma:g}$")
    return ax


def plot_noised_densities(mixture: GaussianMixture, sigmas, *, extent=(-4, 4, -4, 4), n_grid: int = 150):
    r"""The density :math:`p_\sigma = p * \mathcal N(0, \sigma^2 I)` side by side for several
    :math:`\sigma`: noising blurs the modes together."""
    _require_dim(mixture, 2)
    fig, axes = plt.subplots(1, len(sigmas), figsize=(3.2 * len(sigmas), 3.4), squeeze=False)
    gx, gy, pts = _grid(extent, n_grid, mixture.means)
    for ax, sigma in zip(axes[0], sigmas):
        ax.contourf(gx, gy, mixture.log_prob(pts, sigma).exp().reshape(gx.shape), levels=30, cmap="Blues")
        ax.set(aspect="equal", title=f"$p_\\sigma$, $\\sigma = {sigma:g}$", xticks=[], yticks=[])
    return fig


def plot_tweedie(mixture: GaussianMixture, sigma: float, n: int = 60, *, ax=None, extent=(-4, 4, -4, 4),
                 generator: torch.Generator | None = None):
    r"""Clean points :math:`x \sim p`, noisy :math:`y = x + \sigma n`, and Tweedie's arrows from each
    :math:`y` to :math:`\mathbb E[x \mid y] = y + \sigma^2 \nabla \log p_\sigma(y)`."""
    _require_dim(mixture, 2)
    ax = _axes(ax)
    gx, gy, pts = _grid(extent, 150, mixture.means)
    ax.contour(gx, gy, mixture.log_prob(pts).exp().reshape(gx.shape), levels=8, colors="0.6", linewidths=0.6)
    x = mixture.sample(n, generator=generator)
    y = x + sigma * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    step = sigma**2 * mixture.score(y, sigma)  # E[x|y] - y
    ax.scatter(x[:, 0], x[:, 1], s=10, color="C0", label="clean $x$")
    ax.scatter(y[:, 0], y[:, 1], s=10, color="C1", label=f"noisy $y$ ($\\sigma={sigma:g}$)")
    ax.quiver(y[:, 0], y[:, 1], step[:, 0], step[:, 1], angles="xy", scale_units="xy", scale=1,
              color="C3", width=0.004, label=r"$y \to \mathbb{E}[x\mid y]$")
    ax.set(xlim=extent[:2], ylim=extent[2:], aspect="equal", xlabel="$x_1$", ylabel="$x_2$",
           title="Tweedie's formula")
    ax.legend(fontsize=8, loc="upper left")
    return ax


def _canvas(images: torch.Tensor, nrow: int | None) -> tuple[torch.Tensor, int, int]:
    """Images (N, C, H, W), C = 1 or 3, tiled ``nrow`` a row with 1-pixel white borders:
    (canvas (H', W') or (H', W', 3), nrow, rows)."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images: expected shape (N, 1 or 3, H, W), got {tuple(images.shape)}")
    n, c, h, w = images.shape
    nrow = nrow or min(n, max(1, round(n**0.5)))
    rows = -(-n // nrow)
    canvas = torch.ones(c, rows * (h + 2), nrow * (w + 2))
    for i, img in enumerate(images.detach().float().cpu().clamp(0, 1)):
        r, col = divmod(i, nrow)
        canvas[:, r * (h + 2) + 1 : r * (h + 2) + 1 + h, col * (w + 2) + 1 : col * (w + 2) + 1 + w] = img
    return (canvas[0] if c == 1 else canvas.permute(1, 2, 0)), nrow, rows


def image_grid(images: torch.Tensor, *, nrow: int | None = None, title: str | None = None,
               labels: list[str] | None = None):
    """A grid of images (N, C, H, W) in [0, 1], grayscale (C = 1) or colour (C = 3), as one Figure,
    ``nrow`` images a row; ``labels`` name the first panels, one label above each."""
    canvas, nrow, rows = _canvas(images, nrow)
    h, w = images.shape[-2:]
    scale = (1.0 if labels else 0.6) * max(1.0, min(h, w) / 28) ** 0.5  # room for labels; larger pictures
    fig, ax = plt.subplots(figsize=(scale * nrow + 0.4, scale * rows * h / w + (0.5 if title else 0.2)))
    ax.imshow(canvas.numpy(), cmap="gray", vmin=0, vmax=1)
    for i, label in enumerate(labels or []):
        r, c = divmod(i, nrow)
        ax.text(c * (w + 2) + 1 + w / 2, r * (h + 2) + 1, label, ha="center", va="top", fontsize=7,
                color="yellow")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def animate_chains(mixture: GaussianMixture, trajectory: torch.Tensor, *, record_every: int = 1, every: int = 1,
                   sigma: float = 0.0, extent=(-4, 4, -4, 4), interval: int = 100):
    r"""An animation of 2D chains ``trajectory`` (B, R, 2), as recorded by the samplers (state 0,
    then every ``record_every`` steps), over :func:`plot_score_field` of ``mixture`` at ``sigma``;
    one frame per ``every`` recorded states, ``interval`` ms apart.

    :returns: a :class:`matplotlib.animation.FuncAnimation` (``.save(path)``, or shown by Jupyter
        and sphinx-gallery).
    """
    from matplotlib.animation import FuncAnimation

    if trajectory.ndim != 3 or trajectory.shape[-1] != 2:
        raise ValueError(f"trajectory: expected shape (B, R, 2), got {tuple(trajectory.shape)}")
    fig, ax = plt.subplots(figsize=(5.5, 5))
    plot_score_field(mixture, sigma, ax=ax, extent=extent)
    points = trajectory.detach().cpu().numpy()
    cloud = ax.scatter(points[:, 0, 0], points[:, 0, 1], s=8, color="C1", zorder=3)
    n_steps = (points.shape[1] - 1) * record_every

    def show(k: int):
        cloud.set_offsets(points[:, k])
        ax.set_title(f"step {k * record_every} of {n_steps}")
        return (cloud,)

    return FuncAnimation(fig, show, frames=range(0, points.shape[1], every), interval=interval)


def animate_images(frames: torch.Tensor, titles: list[str], *, nrow: int | None = None, interval: int = 150):
    """An animation of image grids: ``frames`` (T, N, 1, H, W) in [0, 1], frame ``t`` the grid of its
    N images (as :func:`image_grid`) titled ``titles[t]``, ``interval`` ms apart.

    :returns: a :class:`matplotlib.animation.FuncAnimation`.
    """
    from matplotlib.animation import FuncAnimation

    if frames.ndim != 5 or len(titles) != len(frames):
        raise ValueError(f"frames: expected shape (T, N, 1, H, W) and T titles, got {tuple(frames.shape)} "
                         f"and {len(titles)} titles")
    canvases = [_canvas(f, nrow)[0].numpy() for f in frames]
    height, width = canvases[0].shape[:2]
    inches = min(8.0, width / 30)
    fig, ax = plt.subplots(figsize=(inches, inches * height / width + 0.35))
    fig.subplots_adjust(left=0, right=1, bottom=0, top=1 - 0.35 / (inches * height / width + 0.35))
    shown = ax.imshow(canvases[0], cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()

    def show(t: int):
        shown.set_data(canvases[t])
        ax.set_title(titles[t], fontsize=9)
        return (shown,)

    return FuncAnimation(fig, show, frames=len(frames), interval=interval)


def plot_heatmap(image: torch.Tensor, heat: torch.Tensor, *, title: str = "heat map", alpha: float = 0.5,
                 cmap: str = "jet"):
    """Three panels for one image (C, H, W) in [0, 1] and its map ``heat`` (H, W): the image, the map
    with a colour bar, and the map laid over the image with opacity ``alpha``, as one Figure."""
    if heat.shape != image.shape[-2:]:
        raise ValueError(f"heat: expected the image's shape {tuple(image.shape[-2:])}, got {tuple(heat.shape)}")
    picture = image.clamp(0, 1).permute(1, 2, 0).squeeze(-1).numpy()  # (H, W) or (H, W, 3)
    gray = {"cmap": "gray", "vmin": 0, "vmax": 1} if picture.ndim == 2 else {}
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
    axes[0].imshow(picture, **gray)
    axes[0].set_title("input", fontsize=9)
    shown = axes[1].imshow(heat.numpy(), cmap=cmap)
    fig.colorbar(shown, ax=axes[1], fraction=0.046, pad=0.04)
    axes[1].set_title(title, fontsize=9)
    axes[2].imshow(picture, **gray)
    axes[2].imshow(heat.numpy(), cmap=cmap, alpha=alpha)
    axes[2].set_title("overlay", fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    fig.tight_layout()
    return fig
