"""The MNIST subcommands of ``scoredae``: ``data fetch``, ``train`` and ``eval``."""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys

log = logging.getLogger(__name__)


def add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["fetch"], help="fetch: fill the local cache")
    p.add_argument("dataset", choices=["mnist"])
    p.add_argument("--root", default=None, help="cache folder (default: $SCOREDAE_DATA or ~/.cache/scoredae)")
    p.add_argument("--force", action="store_true", help="refetch even when the cache is valid")


def run_data(args: argparse.Namespace) -> int:
    from .data import fetch_mnist

    folder = fetch_mnist(args.root, force=args.force)
    print(f"MNIST cached and verified in {folder}")
    return 0


def _model_option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. width=32), got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def add_train_args(p: argparse.ArgumentParser) -> None:
    from .models import MODELS

    p.add_argument("--model", required=True, choices=sorted(MODELS), help="architecture")
    p.add_argument("--option", type=_model_option, action="append", default=[], metavar="KEY=VALUE",
                   help="model constructor option, JSON value (e.g. width=32, widths=[128,64])")
    level = p.add_mutually_exclusive_group(required=True)
    level.add_argument("--sigma", type=float, help="fixed noise level")
    level.add_argument("--sigma-range", type=float, nargs=2, metavar=("MIN", "MAX"),
                       help="noise-conditional over [MIN, MAX] (log-uniform levels)")
    p.add_argument("--steps", type=int, default=None, help="step budget")
    p.add_argument("--minutes", type=float, default=None, help="wall-clock budget of the training steps")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--ema", type=float, default=0.999, help="EMA decay (0 disables)")
    p.add_argument("--eval-images", type=int, default=500)
    p.add_argument("--save-every", type=int, default=500)
    p.add_argument("--train-images", type=int, default=None, help="use only the first N training images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", choices=["bf16", "fp16"], default=None, help="mixed precision (CUDA)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--out", required=True, help="checkpoint folder")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last")
    p.add_argument("--init", default=None, metavar="STEM",
                   help="start from the weights of this checkpoint (same architecture; fresh optimizer and schedule)")
    p.add_argument("--no-progress", action="store_true")


def run_train(args: argparse.Namespace) -> int:
    import torch

    from .checkpoints import load_into
    from .data import load_mnist
    from .models import model_class
    from .training import TrainConfig, _world, train
    from .utils import resolve_device

    if args.steps is None and args.minutes is None:
        raise SystemExit("give --steps or --minutes")
    if args.threads:
        torch.set_num_threads(args.threads)
    rank, _ = _world()
    device = resolve_device(args.device)
    if device.type == "cuda" and torch.cuda.device_count() > 1:
        device = torch.device("cuda", rank % torch.cuda.device_count())
    level = {"sigma": args.sigma} if args.sigma is not None else {"sigma_range": tuple(args.sigma_range)}
    torch.manual_seed(args.seed)  # same initial weights on every rank
    model = model_class(args.model)(**dict(args.option), **level).to(device)
    if args.init:
        load_into(model, args.init)  # same architecture; the optimizer and schedule start afresh
    x_train, _ = load_mnist("train")
    x_test, _ = load_mnist("test")
    if args.train_images:
        x_train = x_train[: args.train_images]
    config = TrainConfig(
        steps=args.steps, minutes=args.minutes, batch_size=args.batch_size, lr=args.lr,
        ema=args.ema or None, eval_images=args.eval_images, save_every=args.save_every, seed=args.seed,
        amp=args.amp, compile=args.compile, progress=not args.no_progress,
    )
    command = shlex.join(["scoredae", *sys.argv[1:]])
    data = {"dataset": "mnist", "split": "train", "images": len(x_train)}
    meta = train(model, x_train, x_test, config, out=args.out, resume=args.resume,
                 metadata={"name": args.model, "command": command, "data": data})
    if rank == 0:
        print(json.dumps({"step": meta["step"], "metrics": meta["metrics"]}, indent=1))
    return 0


def add_eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--images", type=int, default=2000, help="first N test images for the models (default 2000)")
    p.add_argument("--mmse-images", type=int, default=200,
                   help="first N test images for the exact empirical-prior MMSE (default 200; 0 skips it)")
    p.add_argument("--sigmas", type=float, nargs="+", default=[0.1, 0.25, 0.5])
    p.add_argument("--models", nargs="*", default=None, help="shipped model names (default: all)")
    p.add_argument("--checkpoint", action="append", default=[], help="also evaluate this checkpoint stem")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--update-metadata", action="store_true",
                   help="write the PSNR/SSIM of each shipped model into its JSON metadata")


def _cell(metrics: dict | None) -> str:
    return "-" if metrics is None else f"{metrics['psnr']:6.2f} / {metrics['ssim']:.3f}"


def run_eval(args: argparse.Namespace) -> int:
    """Print PSNR / SSIM per sigma for the noisy input, every shipped model and the empirical MMSE."""
    import torch

    from .checkpoints import load_checkpoint
    from .data import load_mnist
    from .evaluation import denoising_metrics, empirical_mmse
    from .models import WEIGHTS_DIR, constructors, list_pretrained
    from .utils import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    clean = load_mnist("test")[0][: args.images].to(device)
    shipped = list_pretrained()
    names = shipped if args.models is None else args.models
    stems = {n: WEIGHTS_DIR / n for n in names} | {str(c): c for c in args.checkpoint}
    rows = {"noisy input": {s: denoising_metrics(None, clean, s) for s in args.sigmas}}
    for name, stem in stems.items():
        model, meta = load_checkpoint(stem, constructors(), device=device)
        sigmas = args.sigmas if "sigma_range" in meta else [s for s in args.sigmas if s == meta["sigma"]]
        rows[name] = {s: denoising_metrics(model, clean, s) for s in sigmas}
        if args.update_metadata and name in shipped:
            meta["psnr"] = {str(s): round(m["psnr"], 3) for s, m in rows[name].items()}
            meta["ssim"] = {str(s): round(m["ssim"], 4) for s, m in rows[name].items()}
            meta["eval"] = f"first {len(clean)} MNIST test images, noise seed fixed (scoredae eval)"
            (WEIGHTS_DIR / f"{name}.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    if args.mmse_images:
        mmse = empirical_mmse(load_mnist("train")[0].to(device))
        label = f"empirical MMSE (deepinv; first {min(args.mmse_images, len(clean))} images)"
        rows[label] = {s: denoising_metrics(mmse, clean[: args.mmse_images], s, batch_size=50) for s in args.sigmas}
    width = max(len(r) for r in rows)
    print(f"PSNR (dB) / SSIM on the first {len(clean)} MNIST test images, fixed noise seed")
    print(f"{'model':<{width}}  " + "  ".join(f"{'sigma=' + str(s):>15}" for s in args.sigmas))
    for name, cells in rows.items():
        print(f"{name:<{width}}  " + "  ".join(f"{_cell(cells.get(s)):>15}" for s in args.sigmas))
    return 0
