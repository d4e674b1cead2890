"""The MNIST sampling recipes and `scoredae sample`, checked on priors whose posterior is exact.

A Gaussian (mixture) prior on 28 x 28 images, through its exact MMSE denoiser, stands in for a
trained model: the recipes must then produce the known posterior statistics.
"""

import math

import numpy as np
import pytest
import torch

from scoredae import GaussianMixture, MixtureDenoiser
from scoredae.cli import main
from scoredae.nets import UNet
from scoredae.nets.checkpoints import save_checkpoint
from scoredae.recipes import generation as ms
from scoredae.recipes import posterior as mp

D = 28 * 28


def image_prior(means, variance, weights):
    means = torch.stack([torch.full((D,), m, dtype=torch.float64) for m in means])
    return GaussianMixture(torch.tensor(weights, dtype=torch.float64), means, variance)


def test_inpainting_posterior_matches_the_exact_gaussian_posterior():
    """Prior N(mu, v I); the PnP-ULA target is p_{ps}(x) p(y | x), per pixel Gaussian with precision
    a = 1 / (v + ps^2) + M / s^2. ULA with step h keeps the mean and inflates the variance to
    1 / (a (1 - h a / 2)). Tolerances: 5 Monte Carlo standard errors with the AR(1) effective
    sample size n (1 - rho) / (1 + rho), rho = 1 - h a, pooled over chains and pixels."""
    mu, v, s, ps = 0.5, 0.04, 0.05, 0.05
    prior = image_prior([mu], v, [1.0])
    g = torch.Generator().manual_seed(0)
    x = prior.sample(1, generator=g).reshape(1, 1, 28, 28)
    mask = mp.box_mask(size=12, top=8, left=8).double()
    y = mask * x + s * torch.randn(x.shape, generator=g, dtype=torch.float64)
    n_chains, n_steps = 8, 2000
    res = mp.posterior_sampling(MixtureDenoiser(prior), y, noise_sigma=s, forward=(lambda x: mask * x, lambda r: mask * r),
                                n_chains=n_chains, prior_sigma=ps, n_steps=n_steps, warm_start=False, generator=g)
    h = 1 / (3 * (1 / s**2 + 1 / ps**2))
    for observed in (True, False):
        pixels = (mask[0] == 1) if observed else (mask[0] == 0)
        a = 1 / (v + ps**2) + (1 / s**2 if observed else 0.0)
        data_term = y[0, 0] / s**2 if observed else torch.zeros_like(y[0, 0])
        exact_mean = ((mu / (v + ps**2) + data_term) / a)[pixels]
        exact_var = 1 / (a * (1 - h * a / 2))
        rho = 1 - h * a
        ess = res.n_kept * (1 - rho) / (1 + rho) * n_chains * int(pixels.sum())
        mean_err = (res.pooled_mean[0][pixels] - exact_mean).mean().item()
        assert abs(mean_err) < 5 * math.sqrt(exact_var / ess), (observed, mean_err)
        var_ratio = res.pooled_var[0][pixels].mean().item() / exact_var
        assert abs(var_ratio - 1) < 5 * math.sqrt(2 / ess), (observed, var_ratio)


def test_annealed_generation_recovers_mixture_weights():
    """Two image 'digits' (all pixels 0.2 or 0.8, 16.8 apart) with weights 0.3 / 0.7: started at
    sigma_max = 20, above their distance (Song & Ermon 2020, technique 1), the share of samples near
    the second is 0.7 within 4 binomial standard errors (a 50/50 collapse fails)."""
    prior = image_prior([0.2, 0.8], 0.01, [0.3, 0.7])
    n = 200
    res = ms.annealed_generation(MixtureDenoiser(prior), n, sigma_max=20.0, n_steps_each=20, eps=2e-5,
                                 generator=torch.Generator().manual_seed(1))
    share = (res.samples.flatten(1).mean(1) > 0.5).double().mean().item()
    assert abs(share - 0.7) < 4 * math.sqrt(0.21 / n), share
    # every sample is one of the two images, not a blend: its mean pixel is that of a mode, to within
    # 10 standard errors of a mean of 784 pixels of standard deviation 0.1
    means = res.samples.flatten(1).mean(1)
    distance = torch.minimum((means - 0.2).abs(), (means - 0.8).abs())
    assert res.samples.shape == (n, 1, 28, 28) and distance.max() < 10 * 0.1 / 28, distance.max()


class FixedSigmaMixtureDenoiser(MixtureDenoiser):
    """The exact MMSE denoiser of a mixture, declared as trained at one level."""

    trained_sigma = 0.5


def test_langevin_at_level_reaches_the_exact_ula_variance():
    """Prior N(mu, v I) at sigma: ULA on p_sigma = N(mu, s2 I), s2 = v + sigma^2, with the default step
    h = 0.05 sigma^2 has the stationary variance s2 / (1 - h / (2 s2)). 64 chains x 784 pixels after
    400 steps (contraction (1 - h/s2)^400 = 3e-8): the sample variance has standard error
    s2 sqrt(2 / N); 5 of them, where a factor 2 in the noise would move it by 50%."""
    mu, v, sigma = 0.4, 0.04, 0.5
    prior = image_prior([mu], v, [1.0])
    x0 = torch.full((64, 1, 28, 28), mu, dtype=torch.float64)
    res = ms.langevin_at_level(FixedSigmaMixtureDenoiser(prior), x0, n_steps=400,
                                       generator=torch.Generator().manual_seed(3))
    s2, h = v + sigma**2, 0.05 * sigma**2
    exact = s2 / (1 - h / (2 * s2))
    n = res.samples.numel()
    assert abs(res.samples.mean().item() - mu) < 5 * math.sqrt(exact / n)
    assert abs(res.samples.var().item() - exact) < 5 * exact * math.sqrt(2 / n), (res.samples.var().item(), exact)


def test_fixed_sigma_recipes_and_refusals():
    model = UNet(width=4, sigma=0.5).eval()
    x0 = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    with pytest.raises(ValueError, match="needs the level"):
        ms.langevin_at_level(UNet(width=4, sigma_range=(0.01, 1)), x0, n_steps=3)
    with pytest.raises(ValueError, match="trained at sigma = 0.5 only"):
        ms.langevin_at_level(model, x0, sigma=0.3, n_steps=3)
    conditional = ms.langevin_at_level(UNet(width=4, sigma_range=(0.01, 1)).eval(), x0, sigma=0.3, n_steps=3)
    assert conditional.samples.shape == x0.shape
    with pytest.raises(ValueError, match="noise-conditional"):
        ms.annealed_generation(model, 4)
    with pytest.raises(ValueError, match="n: expected a positive integer, got 0"):
        ms.annealed_generation(UNet(width=4, sigma_range=(0.01, 1)), 0)
    with pytest.raises(ValueError, match=r"y: expected the shape of forward\(x\), \(1, 1, 28, 28\)"):
        mp.posterior_sampling(model, x0[:1, :, :14], noise_sigma=0.1)
    with pytest.raises(ValueError, match="does not fit"):
        mp.box_mask(size=20, top=10)


@pytest.fixture
def tiny_checkpoint(tmp_path):
    def make(**level):
        torch.manual_seed(0)
        model = UNet(width=4, **level)
        stem = tmp_path / ("cond" if "sigma_range" in level else "fixed")
        save_checkpoint(stem, model, {"model": "UNet", "config": model.config})
        return str(stem)

    return make


def test_cli_sample_writes_png_pt_and_npy(tiny_checkpoint, tmp_path, capsys):
    stem = tiny_checkpoint(sigma_range=(0.01, 1.0))
    for suffix in (".png", ".pt", ".npy"):
        out = tmp_path / f"samples{suffix}"
        main(["sample", "--model", stem, "--method", "annealed", "--n", "3", "--steps", "2",
              "--out", str(out), "--no-progress"])
        assert out.exists() and "3 annealed Langevin samples" in capsys.readouterr().out
    assert torch.load(tmp_path / "samples.pt").shape == (3, 1, 28, 28)
    assert np.load(tmp_path / "samples.npy").shape == (3, 1, 28, 28)
    a = torch.load(tmp_path / "samples.pt")
    main(["sample", "--model", stem, "--method", "annealed", "--n", "3", "--steps", "2",
          "--out", str(tmp_path / "again.pt"), "--no-progress"])
    torch.testing.assert_close(torch.load(tmp_path / "again.pt"), a)  # same seed, same samples
    main(["sample", "--model", stem, "--method", "annealed", "--n", "5", "--steps", "2",
          "--out", str(tmp_path / "five.pt"), "--no-progress"])
    torch.testing.assert_close(torch.load(tmp_path / "five.pt")[:3], a)  # sample i depends on (seed, i) alone


def test_cli_sample_refuses_bad_requests(tiny_checkpoint, tmp_path):
    fixed = tiny_checkpoint(sigma=0.5)
    with pytest.raises(SystemExit, match="noise-conditional"):
        main(["sample", "--model", fixed, "--method", "annealed", "--out", str(tmp_path / "a.png")])
    with pytest.raises(SystemExit) as exit_info:  # refused by the parser
        main(["sample", "--model", fixed, "--method", "annealed", "--n", "0", "--out", str(tmp_path / "a.png")])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit, match="--out: expected a path ending"):
        main(["sample", "--model", fixed, "--method", "annealed", "--out", str(tmp_path / "a.jpg")])
    with pytest.raises(SystemExit, match="--model: expected a shipped model"):
        main(["sample", "--model", "no-such-model", "--method", "annealed", "--out", str(tmp_path / "a.png")])
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", "--model", fixed, "--method", "magic", "--out", str(tmp_path / "a.png")])
    assert exit_info.value.code == 2
