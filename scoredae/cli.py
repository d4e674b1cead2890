"""The ``scoredae`` command. Every subcommand is one entry of ``COMMANDS`` at the bottom."""

from __future__ import annotations

import argparse
import logging
import runpy
import sys
import time
from pathlib import Path

from . import cli_mnist, cli_sampling

DEMOS_DIR = Path(__file__).resolve().parents[1] / "demos"


def _add_demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="outputs", help="folder for the PNG figures (default: outputs)")
    p.add_argument("names", nargs="*", help="demo names such as plot_posterior_1d (default: all)")


def _run_demo(args: argparse.Namespace) -> int:
    """Run each demos/plot_*.py script and save every figure it leaves open as a PNG."""
    import matplotlib
    import torch

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scripts = sorted(DEMOS_DIR.glob("plot_*.py"))
    if args.names:
        known = {s.stem: s for s in scripts}
        unknown = [n for n in args.names if n not in known]
        if unknown:
            raise SystemExit(f"unknown demo(s) {unknown}; available: {sorted(known)}")
        scripts = [known[n] for n in args.names]
    if not scripts:
        raise SystemExit(f"no demos found in {DEMOS_DIR}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for script in scripts:
        start = time.perf_counter()
        print(f"running {script.name} ...", flush=True)
        dtype = torch.get_default_dtype()
        try:
            runpy.run_path(str(script), run_name="__main__")
        finally:
            torch.set_default_dtype(dtype)  # a demo's global settings stay in that demo
        for i, num in enumerate(plt.get_fignums(), start=1):
            path = out / f"{script.stem}_{i}.png"
            plt.figure(num).savefig(path, dpi=110, bbox_inches="tight")
            print(f"  wrote {path}")
        plt.close("all")
        print(f"  done in {time.perf_counter() - start:.1f} s", flush=True)
    return 0


# (name, help, add_arguments, run): the one table of subcommands.
COMMANDS = [
    ("demo", "run the demos and write their figures as PNGs", _add_demo_args, _run_demo),
    ("data", "fetch a data set into the local cache", cli_mnist.add_data_args, cli_mnist.run_data),
    ("train", "train an MNIST denoiser", cli_mnist.add_train_args, cli_mnist.run_train),
    ("eval", "PSNR/SSIM table of the shipped MNIST denoisers", cli_mnist.add_eval_args, cli_mnist.run_eval),
    ("sample", "Langevin sampling from a trained MNIST denoiser", cli_sampling.add_sample_args,
     cli_sampling.run_sample),
    ("train-classifier", "train the MNIST classifier used by the sample-quality metric",
     cli_sampling.add_train_classifier_args, cli_sampling.run_train_classifier),
]


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="scoredae",
        description="Denoisers as MMSE estimators, Tweedie scores and Langevin samplers.",
    )
    parser.add_argument("--version", action="version", version=f"scoredae {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help_text, add_arguments, run in COMMANDS:
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(p)
        p.set_defaults(run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
