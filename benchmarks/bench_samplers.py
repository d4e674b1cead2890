"""Sampler overhead, in one run:

(a) ``scoredae.sampling.ula`` against the bare loop ``x += eta * score(x) + sqrt(2 eta) * randn``
    written inline, for the same score functions (a Gaussian mixture score on 4096 points in 2D, a
    small conv denoiser's Tweedie score on 16 images 28 x 28). Target: ours <= 1.10x.
(b) ``scoredae.inverse.posterior_langevin`` against ``deepinv.sampling.ULA`` on the same
    inpainting problem, denoiser-based prior (the same conv denoiser), steps, chains, burn-in and
    thinning. Target: ours not slower (ratio <= 1.00).

Run: OMP_NUM_THREADS=1 python benchmarks/bench_samplers.py [--device cuda]
"""

import argparse
import math

import deepinv
import torch
from timing import best_times

from scoredae import GaussianMixture, TweedieScore
from scoredae.inverse import posterior_langevin
from scoredae.sampling import ula

N_STEPS, REPEATS, STEP = 100, 5, 1e-4


@torch.no_grad()
def bare_loop(score, x0, eta, n_steps, generator):
    x = x0.clone()
    for _ in range(n_steps):
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        x = x + eta * score(x) + math.sqrt(2 * eta) * noise
    return x


def conv_denoiser(device) -> deepinv.models.Denoiser:
    return deepinv.models.DnCNN(1, 1, depth=4, nf=16, pretrained=None, device=device).eval()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    device = torch.device(parser.parse_args().device)
    g = torch.Generator(device=device).manual_seed(0)
    gm = GaussianMixture(torch.full((8,), 1 / 8), 3 * torch.randn(8, 2, generator=torch.Generator().manual_seed(0)), 0.5)
    gm = GaussianMixture(gm.weights.to(device), gm.means.to(device), gm.covs.to(device))
    denoiser = conv_denoiser(device)
    tweedie = TweedieScore(denoiser)
    cases = {
        "mixture score, 4096 x 2": (gm.score, torch.randn(4096, 2, device=device), 0.01),
        "DnCNN Tweedie score, 16 x 1 x 28 x 28": (lambda x: tweedie(x, 0.1), torch.rand(16, 1, 28, 28, device=device), STEP),
    }
    print(f"device {device}, {torch.get_num_threads()} threads, {N_STEPS} steps, best of {REPEATS}")
    print(f"{'(a) case':<44}{'bare loop s':>12}{'ula s':>10}{'ratio':>8}  target <= 1.10")
    for name, (score, x0, eta) in cases.items():
        t = best_times({"bare": lambda s=score, x=x0, e=eta: bare_loop(s, x, e, N_STEPS, g),
                        "ours": lambda s=score, x=x0, e=eta: ula(s, x, e, N_STEPS, generator=g)}, device, REPEATS)
        t_bare, t_ours = t["bare"], t["ours"]
        print(f"{name:<44}{t_bare:>12.3f}{t_ours:>10.3f}{t_ours / t_bare:>8.2f}")

    # (b) inpainting of 16 images with the same denoiser prior, burn-in 20%, thinning 5
    sigma_y, prior_sigma = 0.1, 0.05
    physics = deepinv.physics.Inpainting(img_size=(1, 28, 28), mask=0.5, device=device,
                                         noise_model=deepinv.physics.GaussianNoise(sigma_y))
    x_true = torch.rand(16, 1, 28, 28, device=device)
    y = physics(x_true)
    theirs = deepinv.sampling.ULA(deepinv.optim.ScorePrior(denoiser), deepinv.optim.data_fidelity.L2(sigma_y),
                                  step_size=STEP, sigma=prior_sigma, max_iter=N_STEPS, thinning=5,
                                  burnin_ratio=0.2, clip=(-1.0, 2.0), verbose=False)
    with torch.no_grad():
        t = best_times({"deepinv": lambda: theirs.sample(y, physics, x_init=y.clone()),
                        "ours": lambda: posterior_langevin(
                            tweedie, y, physics, sigma_y, y.clone(), STEP, N_STEPS, prior_sigma=prior_sigma,
                            clip=(-1.0, 2.0), burn_in=N_STEPS // 5, thinning=5, generator=g)}, device, REPEATS)
        t_deepinv, t_ours = t["deepinv"], t["ours"]
    print(f"{'(b) case':<44}{'deepinv s':>12}{'ours s':>10}{'ratio':>8}  target <= 1.00")
    print(f"{'PnP-ULA inpainting, DnCNN prior, 16 images':<44}{t_deepinv:>12.3f}{t_ours:>10.3f}{t_ours / t_deepinv:>8.2f}")


if __name__ == "__main__":
    main()
