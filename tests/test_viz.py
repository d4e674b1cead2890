"""The figures draw what their docstrings say."""

import matplotlib
import matplotlib.quiver

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch

from scoredae import GaussianMixture
from scoredae.viz import (
    animate_chains,
    animate_images,
    plot_estimators_1d,
    plot_noised_densities,
    plot_posterior_1d,
    plot_score_field,
    plot_tweedie,
)

F64 = torch.float64


def test_posterior_1d_marks_the_mmse_and_the_map():
    prior = GaussianMixture(torch.tensor([0.5, 0.5], dtype=F64), torch.tensor([[-2.0], [2.0]], dtype=F64), 0.35)
    ax = plot_posterior_1d(prior, y=0.3, sigma=1.0)
    post = prior.posterior(torch.tensor([[0.3]], dtype=F64), 1.0)
    lines = {line.get_label().split(" =")[0]: line for line in ax.get_lines()}
    assert lines["MMSE"].get_xdata()[0] == pytest.approx(post.mean().item())
    assert lines["MAP"].get_xdata()[0] == pytest.approx(post.mode().item())
    posterior_curve = lines[r"posterior $p(x\mid y)$"]
    x, dens = posterior_curve.get_xdata(), posterior_curve.get_ydata()
    assert float((dens[1:] * (x[1:] - x[:-1])).sum()) == pytest.approx(1.0, abs=1e-3)
    plot_estimators_1d(prior, sigma=1.0)
    plt.close("all")


def test_2d_figures_and_dimension_checks():
    gm = GaussianMixture(torch.tensor([0.5, 0.5], dtype=F64), torch.tensor([[-1.0, 0.0], [1.0, 0.0]], dtype=F64), 0.3)
    ax = plot_score_field(gm, 0.5, n_grid=30, n_arrows=7)
    arrows = next(c for c in ax.collections if isinstance(c, matplotlib.quiver.Quiver))
    points = torch.as_tensor(arrows.XY, dtype=F64)  # (49, 2) arrow tails
    field = torch.stack([torch.as_tensor(arrows.U), torch.as_tensor(arrows.V)], dim=1).to(F64)
    torch.testing.assert_close(field, gm.score(points, 0.5), rtol=1e-6, atol=1e-9)  # the arrows are the score
    assert len(plot_noised_densities(gm, [0.0, 1.0], n_grid=30).axes) == 2
    ax = plot_tweedie(gm, 0.5, n=10, generator=torch.Generator().manual_seed(0))
    assert ax.get_title() == "Tweedie's formula"
    with pytest.raises(ValueError, match="expected a 1D GaussianMixture"):
        plot_posterior_1d(gm, y=0.0, sigma=1.0)
    plt.close("all")


def _saved_frames(animation, path) -> int:
    from PIL import Image

    animation.save(path, writer="pillow", dpi=20)
    with Image.open(path) as gif:
        return gif.n_frames


def test_animate_chains_shows_each_recorded_state(tmp_path):
    mixture = GaussianMixture(torch.tensor([1.0], dtype=F64), torch.zeros(1, 2, dtype=F64), 1.0)
    trajectory = torch.randn(5, 7, 2, generator=torch.Generator().manual_seed(0), dtype=F64)  # (B, R, 2)
    animation = animate_chains(mixture, trajectory, record_every=4, every=2)
    assert _saved_frames(animation, tmp_path / "chains.gif") == 4  # recorded states 0, 2, 4, 6
    ax = plt.gcf().axes[0]
    assert ax.get_title() == "step 24 of 24"  # the last frame drawn
    cloud = next(c for c in ax.collections if c.get_offsets().shape == (5, 2))
    assert cloud.get_offsets() == pytest.approx(trajectory[:, 6].numpy())
    with pytest.raises(ValueError, match=r"\(B, R, 2\)"):
        animate_chains(mixture, trajectory[0])
    plt.close("all")


def test_animate_images_shows_one_grid_per_frame(tmp_path):
    frames = torch.zeros(3, 4, 1, 5, 5)
    frames[2, 1] = 1.0  # the second image of the last frame is white
    animation = animate_images(frames, ["a", "b", "c"], nrow=2)
    assert _saved_frames(animation, tmp_path / "grid.gif") == 3
    ax = plt.gcf().axes[0]
    assert ax.get_title() == "c"
    shown = ax.get_images()[0].get_array()
    assert shown[1:6, 8:13].min() == 1.0 and shown[1:6, 1:6].max() == 0.0  # grid cell (0, 1) is white
    with pytest.raises(ValueError, match="T titles"):
        animate_images(frames, ["a"])
    plt.close("all")
