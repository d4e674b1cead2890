"""``scoredae uncertainty``: what a denoiser's Jacobian says about one noisy digit (second-order Tweedie)."""

from __future__ import annotations

import argparse

from .args import non_negative_int, positive_float, positive_int

HELP = "posterior mean, per-pixel std and principal components of one noisy MNIST digit"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="a shipped MNIST model name or a checkpoint stem")
    p.add_argument("--sigma", type=positive_float, default=None,
                   help="noise level (default: a fixed-sigma model's own; required by a noise-conditional one)")
    p.add_argument("--index", type=non_negative_int, default=0, help="test digit (0 to 9999)")
    p.add_argument("--k", type=positive_int, default=4, help="principal components (default 4)")
    p.add_argument("--n-iter", type=positive_int, default=50, help="subspace iterations (default 50)")
    p.add_argument("--probes", type=positive_int, default=64, help="probes of the per-pixel variance (default 64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="the figure (PNG)")


def run(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from ..data.mnist import load_mnist
    from ..uncertainty import posterior_variance, principal_components
    from .models import load_model, noise_level
    from .output import writable_output

    writable_output(args.out, (".png",))
    model = load_model(args.model, "cpu")
    sigma = noise_level(model, args.sigma)
    test = load_mnist("test")[0]
    if args.index >= len(test):
        raise ValueError(f"--index: expected a test digit in 0..{len(test) - 1}, got {args.index}")
    x = test[args.index : args.index + 1]
    g = torch.Generator().manual_seed(args.seed)
    y = x + sigma * torch.randn(x.shape, generator=g)
    with torch.no_grad():
        mean = model(y, sigma)
    variance, _ = posterior_variance(model, y, sigma, n_probes=args.probes, generator=g)
    values, vectors = principal_components(model, y, sigma, args.k, args.n_iter, generator=g)
    panels = [(y, "noisy input"), (mean, "posterior mean D(y)"), (variance.clamp(min=0).sqrt(), "per-pixel std")]
    for i in range(args.k):
        step = 2 * values[0, i].clamp(min=0).sqrt() * vectors[0, i]
        panels += [(mean - step, f"mean - 2 sqrt(l{i + 1}) v{i + 1}"), (mean + step, f"mean + 2 sqrt(l{i + 1}) v{i + 1}")]
    cols = 3 + 2 * args.k
    fig, axes = plt.subplots(1, cols, figsize=(1.6 * cols, 2.1))
    for ax, (image, title) in zip(axes, panels):
        shown = image[0, 0].numpy()
        ax.imshow(shown, cmap="magma" if "std" in title else "gray", vmin=None if "std" in title else 0,
                  vmax=None if "std" in title else 1)
        ax.set_title(title, fontsize=6)
        ax.set_axis_off()
    fig.suptitle(f"{args.model}, test digit {args.index}, sigma = {sigma:g}: posterior variances "
                 + ", ".join(f"{v:.3g}" for v in values[0].tolist()), fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=130)
    print(f"wrote {args.out}; top-{args.k} posterior variances {[round(v, 4) for v in values[0].tolist()]}")
    return 0
