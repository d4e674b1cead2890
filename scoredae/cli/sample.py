"""``scoredae sample``: Langevin sampling from a trained denoiser (MNIST or photographs), on any device.

Every draw is made on the device of the data; chain ``i`` draws from its own generator seeded by
``(seed, i)``, so sample ``i`` is the same whatever ``--n``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .args import non_negative_float, non_negative_int, positive_float, positive_int

HELP = "Langevin sampling from a trained denoiser (MNIST digits, or a photograph with a colour model)"
METHODS = ("langevin", "annealed", "posterior", "edm", "euler", "ks")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True,
                   help="a shipped model name (see `scoredae eval`) or a checkpoint path")
    p.add_argument("--method", required=True, choices=METHODS,
                   help="langevin: ULA at a fixed-sigma model's level; annealed: generation with a "
                        "noise-conditional model; posterior: PnP-ULA for denoising or inpainting; edm / "
                        "euler: EDM's Heun / Euler ODE (--steps levels, --churn); ks: Kadkhodaie-Simoncelli")
    p.add_argument("--n", type=positive_int, default=16, help="samples (chains) to draw (default: 16)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--out", required=True, help="a .png image grid, or .pt / .npy raw samples (N, C, H, W)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, ...")
    p.add_argument("--steps", type=positive_int, default=None,
                   help="Langevin steps (annealed: per level; edm, euler: ODE levels); defaults: 40, 100, "
                        "1000, 18")
    p.add_argument("--churn", type=non_negative_float, default=0.0, help="edm, euler: EDM's S_churn >= 0 (default 0, the ODE)")
    p.add_argument("--step-size", type=positive_float, default=None,
                   help="ULA step (langevin, posterior) or eps of annealed Langevin (default 2e-5)")
    p.add_argument("--start", choices=("noisy", "noise"), default="noisy",
                   help="langevin: start from a noisy test digit (or --image) x + sigma n, or from pure noise")
    p.add_argument("--sigma", type=positive_float, default=None,
                   help="langevin: the level of p_sigma (default: a fixed-sigma model's own; required by a "
                        "noise-conditional model)")
    p.add_argument("--image", default=None, metavar="PNG",
                   help="langevin: start from this photograph (its central --crop pixels) instead of a digit; "
                        "the PNG shows it, the noisy start and each chain's Tweedie estimate D(x_T, sigma)")
    p.add_argument("--crop", type=positive_int, default=128,
                   help="side of the central crop of --image (default 128)")
    p.add_argument("--task", choices=("denoise", "inpaint"), default="denoise",
                   help="posterior: y = x + 0.3 n, or a 12 x 12 box missing and y = M x + 0.05 n")
    p.add_argument("--index", type=non_negative_int, default=0,
                   help="test digit used by langevin and posterior (0 to 9999)")
    p.add_argument("--quality", action="store_true",
                   help="print the classifier-based sample quality, next to that of as many real "
                        "training digits (the floor)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _print_quality(samples, seed: int) -> None:
    """Sample quality against the test set, and the same numbers for real training digits."""
    import torch

    from ..data.mnist import load_mnist
    from ..eval.sample_quality import mnist_sample_quality
    from ..nets.registry import load_classifier

    classifier, test = load_classifier(), load_mnist("test")[0]
    train = load_mnist("train")[0]
    real = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[: len(samples)]]
    print(f"{'':<26}{'mean conf':>10}{'conf>=0.9':>10}{'entropy':>9}{'FID':>9}")
    for name, images in ((f"{len(samples)} samples", samples.cpu().clamp(0, 1)), (f"{len(samples)} training digits", real)):
        q = mnist_sample_quality(images.float(), classifier, test)
        print(f"{name:<26}{q['mean_confidence']:>10.3f}{q['confident_share']:>10.3f}"
              f"{q['class_entropy']:>9.3f}{q['fid']:>9.2f}")


def _save(images, out: Path, title: str, labels: list[str] | None = None) -> None:
    import numpy as np
    import torch

    from ..viz import image_grid

    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".png":
        nrow = 4 if labels else None  # the labelled summary fills the first row
        image_grid(images, title=title, labels=labels, nrow=nrow).savefig(out, dpi=120, bbox_inches="tight")
    elif out.suffix == ".pt":
        torch.save(images.cpu(), out)
    else:
        np.save(out, images.cpu().numpy())


def run(args: argparse.Namespace) -> int:
    """Draw samples with one of the three recipes of :mod:`scoredae.recipes`."""
    import torch

    from .. import recipes
    from .._checks import resolve_device
    from ..data.mnist import load_mnist
    from ..rng import RowGenerators, rand, randn, seeded
    from ..score import trained_sigma
    from .models import load_model

    out = Path(args.out)
    if out.suffix not in (".png", ".pt", ".npy"):
        raise ValueError(f"--out: expected a path ending in .png, .pt or .npy, got {args.out!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    if not os.access(out.parent, os.W_OK):  # found out now, not after the sampling
        raise ValueError(f"--out: the folder {out.parent} is not writable")
    if args.image and args.method != "langevin":
        raise ValueError("--image: only the langevin method starts from a photograph")
    if args.quality and args.n < 2:
        raise ValueError(f"--quality: the Frechet distance needs at least 2 samples, got --n {args.n}")
    device = resolve_device(args.device)
    model = load_model(args.model, device)
    chains = RowGenerators(args.seed, args.n, device)  # chain i draws from (seed, i) alone
    progress = not args.no_progress
    if args.method == "annealed":
        result = recipes.annealed_generation(model, args.n, n_steps_each=args.steps or 100,
                                             eps=args.step_size or recipes.ANNEALED_DEFAULTS["eps"],
                                             device=device, generator=chains, progress=progress)
        images, what = result.samples, f"{args.n} annealed Langevin samples"
    elif args.method in ("edm", "euler", "ks"):
        method = {"edm": "heun", "euler": "euler", "ks": "ks"}[args.method]
        result = recipes.diffusion_generation(model, args.n, method=method, steps=args.steps or 18, churn=args.churn,
                                              device=device, generator=chains, progress=progress)
        images, what = result.samples, f"{args.n} samples, {args.method}, {result.n_steps} steps"
    elif args.image:
        images, what, labels = _photograph_chains(args, model, chains, device)
        _save(images, out, what, labels)
        print(f"{what} from {args.model} (seed {args.seed}) -> {out}")
        return 0
    else:
        test = load_mnist("test")[0]
        if args.index >= len(test):
            raise ValueError(f"--index: expected a test digit in 0..{len(test) - 1}, got {args.index}")
        x = test[args.index : args.index + 1].to(device)  # (1, 1, 28, 28)
        shape = (args.n, *x.shape[1:])
        if args.method == "langevin":
            sigma = args.sigma or trained_sigma(model)
            x0 = (x + (sigma or 0.5) * randn(shape, chains, device=device) if args.start == "noisy"
                  else rand(shape, chains, device=device))
            result = recipes.langevin_at_level(model, x0, sigma=args.sigma, n_steps=args.steps or 40,
                                               step_size=args.step_size, generator=chains, progress=progress)
            images, what = result.samples, f"{args.n} ULA chains from {args.start}"
        else:
            mask = (recipes.box_mask() if args.task == "inpaint" else torch.ones(1, 28, 28)).to(device)
            noise_sigma = 0.05 if args.task == "inpaint" else 0.3
            y = mask * x + noise_sigma * torch.randn(x.shape, generator=seeded(args.seed, -1, device=device),
                                                     device=device)
            result = recipes.posterior_sampling(model, y, noise_sigma=noise_sigma, mask=mask,
                                                n_chains=args.n, n_steps=args.steps or 1000,
                                                step_size=args.step_size, generator=chains,
                                                warm_start_sigma=None if trained_sigma(model) else 0.5,
                                                progress=progress)
            images = result.samples
            if out.suffix == ".png":  # truth, observation, posterior mean and std, then the chains
                std = result.pooled_var.sqrt()[None]
                images = torch.cat([x, y, result.pooled_mean[None], std / std.max(), images])
            what = f"posterior {args.task}: truth, y, mean, std (scaled to its max), then {args.n} chains"
    labels = ["truth", "observation y", "posterior mean", "posterior std"] if args.method == "posterior" else None
    _save(images.float().clamp(0, 1) if out.suffix == ".png" else images, out, what, labels)
    print(f"{what} from {args.model} ({args.method}, seed {args.seed}) -> {out}")
    if args.quality:
        _print_quality(result.samples, args.seed)
    return 0


def _photograph_chains(args: argparse.Namespace, model, chains, device):
    """ULA at ``--sigma`` from the noisy central crop of ``--image``: (grid or raw samples, title, labels)."""
    import torch

    from .. import recipes
    from ..data.images import read_image, to_channels
    from ..rng import randn
    from ..score import trained_sigma

    sigma = args.sigma or trained_sigma(model)
    if sigma is None:
        raise ValueError("--sigma: a noise-conditional model needs the level to sample at")
    picture = to_channels(read_image(args.image), model.config.channels).float().div(255)
    h, w = picture.shape[-2:]
    side = min(args.crop, h, w) // model.size_multiple * model.size_multiple
    top, left = (h - side) // 2, (w - side) // 2
    x = picture[None, :, top : top + side, left : left + side].to(device)  # (1, C, side, side)
    x0 = x + sigma * randn((args.n, *x.shape[1:]), chains, device=device)
    result = recipes.langevin_at_level(model, x0, sigma=args.sigma, n_steps=args.steps or 40,
                                       step_size=args.step_size, generator=chains, progress=not args.no_progress)
    if Path(args.out).suffix != ".png":
        return result.samples, f"{args.n} ULA chains at sigma = {sigma:g} from {args.image}", None
    with torch.no_grad():
        estimates = model(result.samples, sigma).clamp(0, 1)  # each chain's Tweedie estimate of the clean crop
    images = torch.cat([x, x0[:1].clamp(0, 1), estimates])
    return images, f"ULA at sigma = {sigma:g} from {Path(args.image).name}: D(x_T) of {args.n} chains", ["clean", "noisy start"]
