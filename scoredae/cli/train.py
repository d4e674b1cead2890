"""``scoredae train``: train an image denoiser of the registry on MNIST."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from .args import positive_float, positive_int

HELP = "train an MNIST denoiser"
# the command-line names of scoredae.nets.registry.MODELS, listed here so that --help imports nothing
ARCHITECTURES = ("conv", "drunet", "hybrid", "mlp", "transformer", "unet")


def _model_option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. width=32), got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, choices=ARCHITECTURES, help="architecture")
    p.add_argument("--option", type=_model_option, action="append", default=[], metavar="KEY=VALUE",
                   help="model constructor option, JSON value (e.g. width=32, widths=[128,64])")
    level = p.add_mutually_exclusive_group(required=True)
    level.add_argument("--sigma", type=positive_float, help="fixed noise level")
    level.add_argument("--sigma-range", type=positive_float, nargs=2, metavar=("MIN", "MAX"),
                       help="noise-conditional over [MIN, MAX] (log-uniform levels)")
    p.add_argument("--steps", type=positive_int, default=None, help="step budget")
    p.add_argument("--minutes", type=positive_float, default=None, help="wall-clock budget of the training steps")
    p.add_argument("--batch-size", type=positive_int, default=128)
    p.add_argument("--lr", type=positive_float, default=2e-3)
    p.add_argument("--ema", type=float, default=0.999, help="EMA decay (0 disables)")
    p.add_argument("--eval-images", type=positive_int, default=500)
    p.add_argument("--save-every", type=positive_int, default=500)
    p.add_argument("--train-images", type=positive_int, default=None, help="use only the first N training images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", choices=["bf16", "fp16"], default=None, help="mixed precision (CUDA)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    p.add_argument("--out", required=True, help="checkpoint folder")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last")
    p.add_argument("--init", default=None, metavar="STEM",
                   help="start from the weights of this checkpoint (same architecture; fresh optimizer and schedule)")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    import torch

    from .._checks import resolve_device
    from ..data.mnist import load_mnist
    from ..nets.checkpoints import load_into
    from ..nets.registry import model_class
    from ..train.loop import TrainConfig, distributed_world
    from ..train.recipes import train_denoiser

    if args.steps is None and args.minutes is None:
        raise SystemExit("give --steps or --minutes")
    if args.threads:
        torch.set_num_threads(args.threads)
    rank, _ = distributed_world()
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
        ema=args.ema or None, save_every=args.save_every, seed=args.seed,
        amp=args.amp, compile=args.compile, progress=not args.no_progress,
    )
    command = shlex.join(["scoredae", *sys.argv[1:]])
    data = {"dataset": "mnist", "split": "train", "images": len(x_train)}
    result = train_denoiser(model, x_train, x_test, config, eval_images=args.eval_images, out=args.out,
                            resume=args.resume, metadata={"name": args.model, "command": command, "data": data})
    if rank == 0:
        print(json.dumps({"step": result.metadata["step"], "metrics": result.metadata["metrics"]}, indent=1))
    return 0
