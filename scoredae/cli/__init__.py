"""The ``scoredae`` command line (see :mod:`scoredae.cli.main`)."""

from .main import COMMANDS, build_parser, main

__all__ = ["COMMANDS", "build_parser", "main"]
