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


@pytest.mark.parametrize("command", ["sample", "train"])
def test_help_imports_no_torch(command):
    """``--help`` reads the recipes' names from the torch-free :mod:`scoredae.recipes.names`."""
    code = (f"import sys\nfrom scoredae.cli import main\ntry:\n    main([{command!r}, '--help'])\n"
            "except SystemExit:\n    pass\nprint('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_the_torch_free_names_are_the_recipes_tables():
    from scoredae.nets.registry import MODELS
    from scoredae.recipes import names
    from scoredae.recipes.generation import ODE_SOLVERS
    from scoredae.recipes.posterior import DIFFUSION_POSTERIOR, TASKS

    assert names.ARCHITECTURES == tuple(sorted(MODELS))
    assert names.ODE_METHODS == tuple(ODE_SOLVERS)
    assert names.DIFFUSION_POSTERIOR_METHODS == tuple(DIFFUSION_POSTERIOR)
    assert names.TASKS == tuple(TASKS)
    runs_steps = {"langevin", "annealed", *names.ODE_METHODS, *names.POSTERIOR_METHODS}
    assert set(names.DEFAULT_STEPS) == runs_steps


def test_sample_help_names_one_default_per_method(capsys):
    with pytest.raises(SystemExit):
        main(["sample", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "dpm++2m 10" in text and "langevin 40" in text and "recipe's" not in text
