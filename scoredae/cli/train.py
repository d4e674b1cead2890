"""``scoredae train``: train an image denoiser of the registry on MNIST or on photographs."""

from __future__ import annotations

import argparse
import json
import math

from ..recipes.names import ARCHITECTURES
from .args import positive_float, positive_int

HELP = "train an image denoiser (MNIST, the image collection, or a folder of images)"


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
    p.add_argument("--log-normal", type=float, nargs=2, default=None, metavar=("MEAN", "STD"),
                   help="draw the training levels with ln sigma ~ N(MEAN, STD^2), clipped to the range, "
                        "as EDM does (-1.2 1.2 for images in [-1, 1]) instead of log-uniformly")
    p.add_argument("--loss", choices=["mse", "l1", "charb", "edge"], default="mse",
                   help="squared error (default: the MMSE estimator, a Tweedie score), absolute error (the "
                        "posterior median), Charbonnier, or squared error plus that of the image gradients")
    p.add_argument("--objective", choices=["denoising", "flow"], default="denoising",
                   help="the weighted denoising loss of EDM, or conditional flow matching on the linear "
                        "interpolant (the denoising loss weighted by 1 / t^2, t = sigma / (1 + sigma) uniform); "
                        "both make the posterior mean (default: denoising)")
    p.add_argument("--data", default="mnist", metavar="mnist|MIXTURE|images|FOLDER",
                   help="MNIST digits, fresh draws of a shipped mixture prior (mnist_mixture: a network "
                        "that should learn its exact denoiser), the photographs and textures of "
                        "`scoredae data fetch images`, or a folder of PNG/JPEG files (default: mnist)")
    p.add_argument("--crop-size", type=positive_int, default=64,
                   help="side of the random training crops of photographs (default: 64)")
    p.add_argument("--channels", type=positive_int, choices=[1, 3], default=None,
                   help="image channels (default: 1 for mnist, 3 for photographs)")
    p.add_argument("--eval-sigmas", type=positive_float, nargs="+", default=None, metavar="S",
                   help="noise levels of the evaluation during training (default: those of `scoredae eval`, "
                        "0.1 0.25 0.5 for mnist, 0.05 0.1 0.2 for photographs)")
    _schedule_arguments(p)
    p.add_argument("--label-dropout", type=float, default=None, metavar="P",
                   help="train class-conditional on the MNIST labels (10 classes), each label dropped with "
                        "probability P for classifier-free guidance (e.g. 0.15)")
    p.add_argument("--eval-images", type=positive_int, default=500)
    p.add_argument("--eval-every", type=positive_int, default=None,
                   help="steps between evaluations (default: every epoch of MNIST, 500 steps of crops)")
    p.add_argument("--save-every", type=positive_int, default=500)
    p.add_argument("--train-images", type=positive_int, default=None, help="use only the first N MNIST training images")
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


def _schedule_arguments(p: argparse.ArgumentParser) -> None:
    """The budget, the optimiser's schedule and the weight averages."""
    p.add_argument("--steps", type=positive_int, default=None, help="step budget")
    p.add_argument("--minutes", type=positive_float, default=None, help="wall-clock budget of the training steps")
    p.add_argument("--batch-size", type=positive_int, default=128)
    p.add_argument("--lr", type=positive_float, default=2e-3)
    p.add_argument("--ema", type=float, default=0.999, help="EMA decay (0 disables)")
    p.add_argument("--lr-schedule", choices=["cosine", "rsqrt"], default="cosine",
                   help="cosine decay over the budget (default), or constant then 1/sqrt(step / REF) after "
                        "--lr-ref-steps REF (EDM2; independent of the budget, so a run can be extended)")
    p.add_argument("--warmup", type=positive_int, default=None, metavar="STEPS", help="linear learning-rate warm-up")
    p.add_argument("--lr-ref-steps", type=positive_int, default=None, metavar="REF",
                   help="where the rsqrt decay starts")
    p.add_argument("--phema", type=float, nargs="+", default=(), metavar="STD",
                   help="keep power-function EMAs of these relative widths (EDM2: 0.05 0.1) and write their "
                        "snapshots every --snapshot-every steps, for the post-hoc EMA")
    p.add_argument("--snapshot-every", type=positive_int, default=None, metavar="STEPS")


def run(args: argparse.Namespace) -> int:
    import torch

    from .._checks import resolve_device
    from ..eval.report import eval_sigmas
    from ..nets.checkpoints import load_into
    from ..nets.registry import list_pretrained_mixtures, model_class
    from ..train.loop import TrainConfig, distributed_world
    from ..train.trainers import train_denoiser
    from .output import writable_folder

    if args.steps is None and args.minutes is None:
        raise SystemExit("give --steps or --minutes")
    if args.log_normal and (args.sigma_range is None or args.log_normal[1] <= 0):
        raise SystemExit("--log-normal: needs --sigma-range and a positive STD")
    if args.objective == "flow" and (args.sigma is not None or args.log_normal or args.loss != "mse"):
        raise SystemExit("--objective flow: needs --sigma-range, the mse loss and no --log-normal (its times are uniform)")
    if args.label_dropout is not None and (args.data != "mnist" or not 0 <= args.label_dropout < 1):
        raise SystemExit("--label-dropout: a probability in [0, 1), for MNIST (the labelled data)")
    writable_folder(args.out)
    if args.threads:
        torch.set_num_threads(args.threads)
    rank, _ = distributed_world()
    device = resolve_device(args.device)
    if device.type == "cuda" and torch.cuda.device_count() > 1:
        device = torch.device("cuda", rank % torch.cuda.device_count())
    level = {"sigma": args.sigma} if args.sigma is not None else {"sigma_range": tuple(args.sigma_range)}
    torch.manual_seed(args.seed)  # same initial weights on every rank
    digits = args.data == "mnist" or args.data in list_pretrained_mixtures()
    channels = args.channels or (1 if digits else 3)
    if digits and channels != 1:
        raise SystemExit("--channels: digits have 1 channel")
    if "channels" in dict(args.option):
        raise SystemExit("give the number of channels with --channels, not --option")
    labelled = {"num_classes": 10} if args.label_dropout is not None else {}
    model = model_class(args.model)(**dict(args.option), channels=channels, **level, **labelled).to(device)
    if args.init:
        load_into(model, args.init)  # same architecture; the optimizer and schedule start afresh
    train_data, train_labels, x_test, data = _training_data(args, channels, model.size_multiple, device)
    config = TrainConfig(
        steps=args.steps, minutes=args.minutes, batch_size=args.batch_size, lr=args.lr,
        ema=args.ema or None, lr_schedule=args.lr_schedule, warmup_steps=args.warmup or 0,
        lr_ref_steps=args.lr_ref_steps, phema=tuple(args.phema), snapshot_every=args.snapshot_every,
        save_every=args.save_every,
        eval_every=args.eval_every or (None if isinstance(train_data, torch.Tensor) else 500), seed=args.seed,
        amp=args.amp, compile=args.compile, progress=not args.no_progress,
    )
    result = train_denoiser(model, train_data, x_test, config, eval_images=args.eval_images,
                            log_normal=tuple(args.log_normal) if args.log_normal else None, loss=args.loss,
                            train_labels=train_labels if args.label_dropout is not None else None,
                            label_dropout=args.label_dropout or 0.0, objective=args.objective, out=args.out,
                            resume=args.resume, metadata={"name": args.model, "command": args.command_line, "data": data},
                            eval_sigmas=tuple(args.eval_sigmas or eval_sigmas("mnist" if digits else "images")))
    if rank == 0:
        print(json.dumps({"step": result.metadata["step"], "metrics": result.metadata["metrics"]}, indent=1))
    return 0


def _mixture_draws(name: str, batch_size: int, eval_images: int, device):
    """Fresh draws of the shipped mixture ``name`` as (B, 1, 28, 28) digits every step, and a fixed
    set of its draws (seed 0) to evaluate on."""
    import torch

    from ..data.batches import SampledBatches
    from ..mixtures.storage import load_mixture
    from ..nets.registry import MIXTURES_DIR
    from ..rng import seeded

    mixture = load_mixture(MIXTURES_DIR / name, dtype=torch.float32, device=device)[0]
    side = math.isqrt(mixture.dim)
    batches = SampledBatches(lambda n, generator: mixture.sample(n, generator).view(n, 1, side, side), batch_size)
    x_eval = mixture.sample(eval_images, seeded(0, device=device))
    return batches, None, x_eval.view(-1, 1, side, side), {"dataset": name, "draws": "fresh every step"}


def _training_data(args: argparse.Namespace, channels: int, multiple: int, device):
    """The training data (images or a crop source), their labels (None for photographs), the
    evaluation images, and their description."""
    if args.data == "mnist":
        from ..data.mnist import load_mnist

        x_train, y_train = load_mnist("train")
        x_train, y_train = (x_train[: args.train_images], y_train[: args.train_images]) if args.train_images else \
            (x_train, y_train)
        x_test, _ = load_mnist("test")
        return x_train, y_train, x_test, {"dataset": "mnist", "split": "train", "images": len(x_train)}
    from ..nets.registry import list_pretrained_mixtures

    if args.data in list_pretrained_mixtures():
        return _mixture_draws(args.data, args.batch_size, args.eval_images, device)
    from ..data.images import RandomCrops, center_crops, evaluation_side, load_images

    train, train_names = load_images(args.data, "train", channels)
    test, test_names = load_images(args.data, "test", channels)
    side = evaluation_side(test, multiple)
    data = {"dataset": str(args.data), "crop_size": args.crop_size, "train_files": train_names,
            "test_files": test_names, "eval": f"central {side} x {side} crops of the test files"}
    return RandomCrops(train, args.crop_size, args.batch_size, device), None, center_crops(test, side), data
