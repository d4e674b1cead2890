"""The image-scale exact benchmark: its operators against the image operations they stand for, its
measures at their floors for exact posterior draws and away from them for a posterior too wide."""

import math

import pytest
import torch

from scoredae.eval.digits import (
    LEVELS,
    DigitImages,
    digit_operator,
    digit_problem,
    evaluate_digits,
    exact_floors,
)
from scoredae.mixtures import GaussianMixture
from scoredae.nets.registry import load_pretrained

F64 = torch.float64


@pytest.fixture(scope="module")
def prior():
    return load_pretrained("mnist_mixture").mixture


def test_the_operators_are_the_image_operations():
    image = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0), dtype=F64)
    flat = image.reshape(3, -1)
    box = digit_operator("box")
    assert box.shape == (588, 784) and torch.equal(box @ flat[0], flat[0][box.argmax(1)])
    assert bool((image[:, 0, 7:21, 7:21].reshape(3, -1)[:, :, None] != (flat @ box.T)[:, None, :]).all())
    half = digit_operator("half", seed=1)
    assert half.shape == (392, 784) and torch.equal(half.sum(0).bool(), half.sum(0) == 1)
    assert not torch.equal(half, digit_operator("half", seed=2))
    for task, f in (("sr2", 2), ("sr4", 4)):
        pooled = torch.nn.functional.avg_pool2d(image, f).reshape(3, -1)
        torch.testing.assert_close(flat @ digit_operator(task).T, pooled, rtol=0, atol=1e-14)
    blur = digit_operator("blur")
    t = torch.arange(-3, 4, dtype=F64)
    kernel = torch.exp(-0.5 * (t[:, None] ** 2 + t[None] ** 2))
    expected = torch.nn.functional.conv2d(image, (kernel / kernel.sum())[None, None], padding=3).reshape(3, -1)
    torch.testing.assert_close(flat @ blur.T, expected, rtol=0, atol=1e-14)


def test_exact_draws_score_at_the_floors_and_a_posterior_twice_as_wide_does_not(prior):
    """A sampler that returns exact posterior draws: coverage within 3 Monte Carlo standard errors
    of each level (sd sqrt(p (1 - p) / n) for one pixel, an upper bound for the pixel average), the
    sliced distance within the spread of the floor. Draws spread twice as far from the posterior
    mean: coverage of the 50% intervals near P(|z| < 0.337) = 0.26, the sliced ratio above 2."""
    problem = digit_problem(prior, "half", 0.2, seed=0)
    n = 256

    def exact(denoiser, y, forward, noise_sigma, x_T, sigmas, *, generator=None):
        return problem.posterior.sample(len(x_T), generator=generator)[:, 0]

    def wide(denoiser, y, forward, noise_sigma, x_T, sigmas, *, generator=None):
        draws = exact(denoiser, y, forward, noise_sigma, x_T, sigmas, generator=generator)
        return 2 * draws - problem.posterior.mean()

    floors = exact_floors(problem, n)
    right = evaluate_digits(exact, problem, n, 2, name="exact", floors=floors)
    for p, share in zip(LEVELS, right["coverage"]):
        assert abs(share - p) < 3 * math.sqrt(p * (1 - p) / n)
    assert 0.7 < right["sw_ratio"] < 1.4 and right["mode_tv"] <= floors["mode_tv"] + 0.05
    assert abs(right["mean_psnr"] - floors["mean_psnr"]) < 3
    wrong = evaluate_digits(wide, problem, n, 2, name="wide", floors=floors)
    assert abs(wrong["coverage"][0] - 0.26) < 0.08 and wrong["sw_ratio"] > 2
    assert right["calls"] == 0 and right["steps"] == 2


def test_a_sampler_on_the_digits_is_counted_and_measured(prior):
    from scoredae.inverse import ddrm

    problem = digit_problem(prior, "sr4", 0.05, digit=torch.zeros(28, 28))
    row = evaluate_digits(ddrm, problem, 16, 10, name="ddrm")
    assert row["calls"] == 10 and len(row["coverage"]) == 4 and math.isfinite(row["sw_ratio"])
    assert torch.equal(problem.x, torch.zeros(1, 784, dtype=F64))


def test_an_image_network_is_seen_on_flat_digits():
    net = load_pretrained("unet_edm")
    x = torch.rand(2, 784, generator=torch.Generator().manual_seed(0), dtype=F64)
    flat = DigitImages(net)(x, 0.3)
    assert flat.dtype == F64 and flat.shape == (2, 784)
    torch.testing.assert_close(flat.float().reshape(2, 1, 28, 28), net(x.float().reshape(2, 1, 28, 28), 0.3))
    per_row = DigitImages(net)(x, torch.tensor([0.3, 0.3], dtype=F64))
    torch.testing.assert_close(per_row, flat)


def test_bad_problems_are_refused_by_name(prior):
    with pytest.raises(ValueError, match="task"):
        digit_operator("inpaint")
    with pytest.raises(ValueError, match="prior"):
        digit_problem(GaussianMixture(torch.ones(1, dtype=F64), torch.zeros(1, 4, dtype=F64), 1.0), "box", 0.1)
    with pytest.raises(ValueError, match="digit"):
        digit_problem(prior, "box", 0.1, digit=torch.zeros(27, 27))
    with pytest.raises(ValueError, match="noise_sigma"):
        digit_problem(prior, "box", 0.0)
