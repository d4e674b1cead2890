"""The sampling subcommands of ``scoredae``: ``sample`` and ``train-classifier``."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

METHODS = ("langevin", "annealed", "posterior")


def add_sample_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True,
                   help="a shipped model name (see `scoredae eval`) or a checkpoint path")
    p.add_argument("--method", required=True, choices=METHODS,
                   help="langevin: ULA at a fixed-sigma model's level; annealed: generation with a "
                        "noise-conditional model; posterior: PnP-ULA for denoising or inpainting")
    p.add_argument("--n", type=int, default=16, help="samples (chains) to draw (default: 16)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--out", required=True, help="a .png image grid, or .pt / .npy raw samples (N, 1, 28, 28)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, ...")
    p.add_argument("--steps", type=int, default=None,
                   help="Langevin steps (annealed: per level); defaults: 40, 100, 1000")
    p.add_argument("--step-size", type=float, default=None,
                   help="ULA step (langevin, posterior) or eps of annealed Langevin (default 2e-5)")
    p.add_argument("--start", choices=("noisy", "noise"), default="noisy",
                   help="langevin: start from a noisy test digit x + 0.5 n, or from pure noise")
    p.add_argument("--task", choices=("denoise", "inpaint"), default="denoise",
                   help="posterior: y = x + 0.3 n, or a 12 x 12 box missing and y = M x + 0.05 n")
    p.add_argument("--index", type=int, default=0, help="test digit used by langevin and posterior")
    p.add_argument("--quality", action="store_true",
                   help="print the classifier-based sample quality, next to that of as many real "
                        "training digits (the floor)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _print_quality(samples, seed: int) -> None:
    """Sample quality against the test set, and the same numbers for real training digits."""
    import torch

    from .classifier import load_classifier
    from .data import load_mnist
    from .metrics import mnist_sample_quality

    classifier, test = load_classifier(), load_mnist("test")[0]
    train = load_mnist("train")[0]
    real = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[: len(samples)]]
    print(f"{'':<26}{'mean conf':>10}{'conf>=0.9':>10}{'entropy':>9}{'FID':>9}")
    for name, images in ((f"{len(samples)} samples", samples.cpu().clamp(0, 1)), (f"{len(samples)} training digits", real)):
        q = mnist_sample_quality(images.float(), classifier, test)
        print(f"{name:<26}{q['mean_confidence']:>10.3f}{q['confident_share']:>10.3f}"
              f"{q['class_entropy']:>9.3f}{q['fid']:>9.2f}")


def _load_denoiser(name: str, device):
    from .checkpoints import load_checkpoint
    from .models import constructors, list_pretrained, load_pretrained

    if name in list_pretrained():
        return load_pretrained(name, device=device)
    if Path(name).with_suffix(".json").exists() or Path(name + ".json").exists():
        return load_checkpoint(name, constructors(), device=device)[0]
    raise SystemExit(f"--model: expected a shipped model {sorted(list_pretrained())} or a checkpoint path, "
                     f"got {name!r}")


def _save(images, out: Path, title: str) -> None:
    import numpy as np
    import torch

    from .viz import image_grid

    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".png":
        image_grid(images, title=title).savefig(out, dpi=120, bbox_inches="tight")
    elif out.suffix == ".pt":
        torch.save(images.cpu(), out)
    else:
        np.save(out, images.cpu().numpy())


def run_sample(args: argparse.Namespace) -> int:
    """Draw samples with one of the three recipes of :mod:`scoredae.mnist_sampling`."""
    import torch

    from . import mnist_sampling as ms
    from .data import load_mnist
    from .utils import resolve_device

    out = Path(args.out)
    if out.suffix not in (".png", ".pt", ".npy"):
        raise SystemExit(f"--out: expected a path ending in .png, .pt or .npy, got {args.out!r}")
    if args.n < 1:
        raise SystemExit(f"--n: expected a positive number of samples, got {args.n}")
    device = resolve_device(args.device)
    model = _load_denoiser(args.model, device)
    generator = torch.Generator().manual_seed(args.seed)
    progress = not args.no_progress
    try:
        if args.method == "annealed":
            result = ms.annealed_generation(model, args.n, n_steps_each=args.steps or 100,
                                            eps=args.step_size or ms.ANNEALED_DEFAULTS["eps"], device=device,
                                            generator=generator, progress=progress)
            images, what = result.samples, f"{args.n} annealed Langevin samples"
        else:
            x = load_mnist("test")[0][args.index : args.index + 1]  # (1, 1, 28, 28)
            if args.method == "langevin":
                x0 = (x + 0.5 * torch.randn(args.n, *x.shape[1:], generator=generator)
                      if args.start == "noisy" else torch.rand(args.n, *x.shape[1:], generator=generator))
                result = ms.langevin_at_trained_sigma(model, x0.to(device), n_steps=args.steps or 40,
                                                      step_size=args.step_size, generator=generator,
                                                      progress=progress)
                images, what = result.samples, f"{args.n} ULA chains from {args.start}"
            else:
                mask = ms.box_mask() if args.task == "inpaint" else torch.ones(1, 28, 28)
                noise_sigma = 0.05 if args.task == "inpaint" else 0.3
                y = mask * x + noise_sigma * torch.randn(x.shape, generator=generator)
                result = ms.posterior_sampling(model, y.to(device), noise_sigma=noise_sigma, mask=mask,
                                               n_chains=args.n, n_steps=args.steps or 1000,
                                               step_size=args.step_size, generator=generator,
                                               warm_start_sigma=None if getattr(model, "trained_sigma", None) else 0.5,
                                               progress=progress)
                images = result.samples
                if out.suffix == ".png":  # truth, observation, posterior mean and std, then the chains
                    std = result.pooled_var.sqrt()[None]
                    summary = [x, y, result.pooled_mean[None], std / std.max()]
                    images = torch.cat([t.to(device) for t in summary] + [images])
                what = f"posterior {args.task}: truth, y, mean, std (scaled to its max), then {args.n} chains"
    except ValueError as err:
        raise SystemExit(f"scoredae sample: {err}") from err
    _save(images.float().clamp(0, 1) if out.suffix == ".png" else images, out, what)
    print(f"{what} from {args.model} ({args.method}, seed {args.seed}) -> {out}")
    if args.quality:
        _print_quality(result.samples, args.seed)
    return 0


def add_train_classifier_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=int, default=8, help="passes over the 60,000 training images (default: 8)")
    p.add_argument("--batch-size", type=int, default=128, help="default: 128")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: 1e-3)")
    p.add_argument("--seed", type=int, default=0, help="seeds the initial weights and the batch order")
    p.add_argument("--out", default="runs/classifier", help="checkpoint stem (default: runs/classifier)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run_train_classifier(args: argparse.Namespace) -> int:
    """Train the MNIST classifier of the sample-quality metric and report its test accuracy."""
    import torch

    from . import __version__
    from .checkpoints import save_checkpoint
    from .classifier import accuracy, train_classifier
    from .data import load_mnist

    torch.manual_seed(args.seed)
    images, labels = load_mnist("train")
    model = train_classifier(images, labels, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                             generator=torch.Generator().manual_seed(args.seed), progress=not args.no_progress)
    test_acc = accuracy(model, *load_mnist("test"))
    metadata = {"model": "MNISTClassifier", "config": model.config, "test_accuracy": test_acc,
                "data": "MNIST train (60,000), evaluated on test (10,000)",
                "command": shlex.join(["scoredae", *sys.argv[1:]]), "version": __version__}
    path = save_checkpoint(args.out, model, metadata)
    print(f"test accuracy {100 * test_acc:.2f}%  ->  {path}")
    return 0
