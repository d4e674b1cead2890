"""``scoredae train-classifier``: train the MNIST classifier of the sample-quality metric."""

from __future__ import annotations

import argparse

from .args import positive_float, positive_int

HELP = "train the MNIST classifier used by the sample-quality metric"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=positive_int, default=8, help="passes over the 60,000 training images (default: 8)")
    p.add_argument("--batch-size", type=positive_int, default=128, help="default: 128")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate (default: 1e-3)")
    p.add_argument("--seed", type=int, default=0, help="seeds the initial weights and the batch order")
    p.add_argument("--out", default="runs/classifier", help="checkpoint stem (default: runs/classifier)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    """Train the classifier and report its test accuracy."""
    from .. import __version__
    from ..data.mnist import load_mnist
    from ..eval.sample_quality import accuracy
    from ..nets.checkpoints import save_checkpoint
    from ..train.trainers import train_classifier
    from .output import writable_output

    writable_output(args.out)
    images, labels = load_mnist("train")
    model = train_classifier(images, labels, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                             seed=args.seed, progress=not args.no_progress).model
    test_acc = accuracy(model, *load_mnist("test"))
    metadata = {"model": "MNISTClassifier", "config": model.config, "test_accuracy": test_acc,
                "data": "MNIST train (60,000), evaluated on test (10,000)",
                "command": args.command_line, "version": __version__}
    path = save_checkpoint(args.out, model, metadata)
    print(f"test accuracy {100 * test_acc:.2f}%  ->  {path}")
    return 0
