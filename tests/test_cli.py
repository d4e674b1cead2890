"""The command line follows --help conventions and refuses bad arguments clearly."""

import subprocess
import sys

import pytest

from scoredae.cli import COMMANDS, build_parser, main


def test_every_subcommand_has_help(capsys):
    for name, *_ in COMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        assert f"usage: scoredae {name}" in capsys.readouterr().out


def test_console_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "scoredae", "--help"], capture_output=True, text=True, check=True)
    for name, *_ in COMMANDS:
        assert name in out.stdout


def test_demo_refuses_unknown_names():
    with pytest.raises(SystemExit, match="unknown demo"):
        main(["demo", "--out", "unused", "plot_does_not_exist"])


def test_a_subcommand_is_required(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([])
    assert exit_info.value.code == 2
