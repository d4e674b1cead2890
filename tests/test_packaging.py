"""Installed from a wheel (not a source checkout), scoredae works and says what needs a checkout."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The package built into a wheel from a copy of the sources and installed into a bare folder."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "scoredae", src / "scoredae", ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), str(src)], check=True)
    wheel = next((tmp / "dist").glob("scoredae-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(tmp / "site"), str(wheel)], check=True)
    return tmp


def run_installed(installed, *args):
    """``python -m scoredae ARGS`` from the installed copy, in a folder with no checkout."""
    env = {"PYTHONPATH": str(installed / "site"), "PATH": "/usr/bin:/bin", "HOME": str(installed)}
    return subprocess.run([sys.executable, "-m", "scoredae", *args], cwd=installed, env=env, capture_output=True,
                          text=True, check=False)


def test_the_installed_package_answers_and_ships_its_weights(installed):
    done = run_installed(installed, "--help")
    assert done.returncode == 0 and "sample" in done.stdout
    weights = installed / "site" / "scoredae" / "weights"
    assert (weights / "unet_ncsn.safetensors").exists() and (weights / "classifier" / "mnist_cnn.json").exists()


def test_demo_from_a_wheel_says_it_needs_a_source_checkout(installed):
    done = run_installed(installed, "demo", "--out", str(installed / "figures"))
    assert done.returncode != 0
    assert "ship with the source checkout" in done.stderr and "--demos DIR" in done.stderr
    assert not (installed / "figures").exists() or not any((installed / "figures").iterdir())
