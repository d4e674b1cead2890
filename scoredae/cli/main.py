"""The ``scoredae`` command: one module per subcommand, listed once in ``COMMANDS``.

Parsing imports no more than the standard library: each subcommand imports torch and the rest
of scoredae when it runs, so ``scoredae --help`` answers at once.

One error policy: a mistake the user can fix (a ValueError naming the argument, an OSError naming
the file, missing data, a diverged chain, an interrupted training) is one line; any other error
is a bug and shows its traceback; ``-v`` shows the traceback of every error.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys

from . import (
    data,
    demo,
    denoise,
    evaluate,
    fit_mixture,
    sample,
    train,
    train_classifier,
    uncertainty,
)

# (name, module): each module has HELP, add_arguments(parser) and run(args)
COMMANDS = [
    ("demo", demo),
    ("data", data),
    ("train", train),
    ("eval", evaluate),
    ("denoise", denoise),
    ("sample", sample),
    ("uncertainty", uncertainty),
    ("train-classifier", train_classifier),
    ("fit-mixture", fit_mixture),
]


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="scoredae",
        description="Denoisers as MMSE estimators, Tweedie scores and the samplers they drive: Langevin, diffusion ODE solvers and posterior samplers.",
    )
    parser.add_argument("--version", action="version", version=f"scoredae {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in COMMANDS:
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(run=module.run)
    return parser


def _said_to_the_user(err: Exception) -> bool:
    """Errors that are the user's to fix (bad input, missing data, a diverged chain): one line, no traceback."""
    from ..data.images import ImagesUnavailableError
    from ..data.mnist import MNISTUnavailableError
    from ..sampling import SamplerDivergedError
    from ..train.loop import TrainingInterrupted

    return isinstance(err, ValueError | OSError | MNISTUnavailableError | ImagesUnavailableError | SamplerDivergedError | TrainingInterrupted)


def _in_words(err: Exception) -> str:
    """The one line for the user: an OSError as its file and reason, not '[Errno 17] ...'."""
    if isinstance(err, OSError) and err.strerror:
        where = f"{err.filename}: " if err.filename else ""
        return f"{where}{err.strerror.lower()}"
    return str(err)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    # the command a checkpoint records: what reproduces it, a resumed run's without its --resume
    args.command_line = shlex.join(["scoredae", *(a for a in argv if a != "--resume")])
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    try:
        return args.run(args)
    except Exception as err:
        if args.verbose or not _said_to_the_user(err):
            raise
        raise SystemExit(f"scoredae {args.command}: {_in_words(err)}") from err


if __name__ == "__main__":
    sys.exit(main())
