"""The figures draw what their docstrings say."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from scoredae import GaussianMixture  # noqa: E402
from scoredae.viz import (  # noqa: E402
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
    assert len(plot_score_field(gm, 0.5, n_grid=30).collections) > 0
    assert len(plot_noised_densities(gm, [0.0, 1.0], n_grid=30).axes) == 2
    ax = plot_tweedie(gm, 0.5, n=10, generator=torch.Generator().manual_seed(0))
    assert ax.get_title() == "Tweedie's formula"
    with pytest.raises(ValueError, match="expected a 1D GaussianMixture"):
        plot_posterior_1d(gm, y=0.0, sigma=1.0)
    plt.close("all")
