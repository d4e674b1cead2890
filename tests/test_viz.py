"""The figures draw what their docstrings say."""

import matplotlib
import matplotlib.quiver

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch

from scoredae import GaussianMixture
from scoredae.viz import (
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
