"""Demos run one after another in one process (as sphinx-gallery and `scoredae demo` run them), so
none may change global state: torch's default dtype and matplotlib's settings stay as they were."""

import runpy
from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt

DEMOS = Path(__file__).resolve().parents[1] / "demos"
FAST = ["plot_posterior_1d", "plot_score_field_2d", "plot_tweedie_2d"]  # the exact toy world, seconds each


@pytest.mark.parametrize("name", FAST)
def test_a_demo_leaves_global_state_as_it_found_it(name):
    dtype, rc = torch.get_default_dtype(), dict(matplotlib.rcParams)
    try:
        runpy.run_path(str(next(DEMOS.rglob(f"{name}.py"))), run_name="__main__")
        assert plt.get_fignums(), "the demo drew no figure"
    finally:
        plt.close("all")
    assert torch.get_default_dtype() == dtype
    assert dict(matplotlib.rcParams) == rc


@pytest.mark.parametrize("script", sorted(DEMOS.rglob("plot_*.py")), ids=lambda p: p.stem)
def test_no_demo_sets_a_global_default(script):
    text = script.read_text()
    for call in ("set_default_dtype", "set_default_device", "set_default_tensor_type", "rcParams.update",
                 "plt.rc("):
        assert call not in text, f"{script.name} calls {call}"


def test_demo_command_writes_figures_as_png_and_animations_as_gif(tmp_path):
    from PIL import Image

    from scoredae.cli import main

    (tmp_path / "demos").mkdir()
    (tmp_path / "demos" / "plot_tiny.py").write_text(
        "import matplotlib.pyplot as plt\n"
        "from matplotlib.animation import FuncAnimation\n"
        "plt.subplots()\n"
        "fig, ax = plt.subplots()\n"
        "animation = FuncAnimation(fig, lambda k: ax.set_title(str(k)), frames=3)\n"
    )
    assert main(["demo", "--demos", str(tmp_path / "demos"), "--out", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["plot_tiny_1.png", "plot_tiny_2.gif"]
    with Image.open(tmp_path / "out" / "plot_tiny_2.gif") as gif:
        assert gif.n_frames == 3


def test_demo_command_reports_peak_memory_and_refuses_a_demo_above_the_limit(tmp_path, capsys):
    from scoredae.cli import main

    (tmp_path / "demos").mkdir()
    (tmp_path / "demos" / "plot_big.py").write_text("import numpy as np\nblock = np.ones(2**27)  # 1 GiB\n")
    (tmp_path / "demos" / "plot_small.py").write_text("print('small demo ran')\n")
    assert main(["demo", "--demos", str(tmp_path / "demos"), "--out", str(tmp_path / "out"), "--jobs", "2",
                 "plot_small"]) == 0
    out = capsys.readouterr().out
    assert "small demo ran" in out and "peak memory" in out
    with pytest.raises(SystemExit, match=r"plot_big.py peaked at 1\.\d\d GB of resident memory, above --max-memory 0.5 GB"):
        main(["demo", "--demos", str(tmp_path / "demos"), "--out", str(tmp_path / "out"), "--max-memory", "0.5"])
