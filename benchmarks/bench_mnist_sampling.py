"""MNIST sampling with the shipped noise-conditional UNet, in one run (batch of 64, ``--steps`` steps):

(a) ``annealed_langevin`` (10 levels, ``steps // 10`` steps each) against the bare loop of the same
    denoiser calls alone (no Langevin arithmetic, no statistics). Target: overhead <= 5 %.
(b) against ``deepinv.sampling.ULA`` driving the same denoiser (``ScorePrior``) for the same steps and
    chains, on 28 x 28 inpainting (half the pixels, noise 0.1, burn-in 20 %, thinning 1): our
    ``posterior_langevin`` on the same problem (the like-for-like chain) and ``annealed_langevin``.
    Target: ours not slower (ratio <= 1.00).
(c) on CUDA only: ``annealed_langevin`` steps per second in fp32 and under bf16 autocast.

Each time is the best over ``--repeats`` rounds, the contenders interleaved within a round so that
background load hits them alike. Weights: ``load_pretrained("unet_ncsn")``; when they are absent a
random-init UNet(width=32, sigma_range=(0.01, 1)) of the same architecture is timed instead (said in
the output).

Run: OMP_NUM_THREADS=1 python benchmarks/bench_mnist_sampling.py [--steps 1000] [--device cuda]
"""

import argparse
from contextlib import nullcontext

import deepinv
import torch
from timing import best_times

from scoredae.inverse import posterior_langevin
from scoredae.nets import UNet, load_pretrained
from scoredae.recipes.generation import ANNEALED_DEFAULTS
from scoredae.sampling import annealed_langevin, geometric_sigmas
from scoredae.score import TweedieScore

N_LEVELS, SIGMA_Y, PRIOR_SIGMA, STEP = 10, 0.1, 0.05, 1e-5


def load_model(device) -> tuple[torch.nn.Module, str]:
    try:
        return load_pretrained("unet_ncsn", device=device), "shipped unet_ncsn"
    except ValueError:
        torch.manual_seed(0)
        model = UNet(width=32, sigma_range=(0.01, 1.0)).to(device).eval()
        return model, "unet_ncsn ABSENT: random-init UNet(width=32, sigma_range=(0.01, 1))"


@torch.no_grad()
def bare_denoiser_calls(denoiser, x, levels, n_each):
    for sigma in levels:
        for _ in range(n_each):
            denoiser(x, sigma)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="total steps, a multiple of 10 (default 1000)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    if args.steps < N_LEVELS or args.steps % N_LEVELS:
        parser.error(f"--steps: expected a positive multiple of {N_LEVELS}, got {args.steps}")
    device, n_each = torch.device(args.device), args.steps // N_LEVELS
    model, origin = load_model(device)
    levels = [float(s) for s in geometric_sigmas(ANNEALED_DEFAULTS["sigma_max"], ANNEALED_DEFAULTS["sigma_min"], N_LEVELS)]
    g = torch.Generator(device=device).manual_seed(0)
    x0 = torch.rand(args.batch, 1, 28, 28, generator=g, device=device)
    score = TweedieScore(model)

    def ours_annealed():
        annealed_langevin(score, x0, levels, n_each, ANNEALED_DEFAULTS["eps"], generator=g)

    physics = deepinv.physics.Inpainting(img_size=(1, 28, 28), mask=0.5, device=device,
                                         noise_model=deepinv.physics.GaussianNoise(SIGMA_Y),
                                         rng=torch.Generator(device=device).manual_seed(1))
    y = physics(x0)
    theirs = deepinv.sampling.ULA(deepinv.optim.ScorePrior(model), deepinv.optim.data_fidelity.L2(SIGMA_Y),
                                  step_size=STEP, sigma=PRIOR_SIGMA, max_iter=args.steps, thinning=1,
                                  burnin_ratio=0.2, clip=(-1.0, 2.0), verbose=False)

    def deepinv_ula():
        with torch.no_grad():
            theirs.sample(y, physics, x_init=y.clone())

    def ours_posterior():
        posterior_langevin(score, y, physics, SIGMA_Y, y.clone(), STEP, args.steps, prior_sigma=PRIOR_SIGMA,
                           clip=(-1.0, 2.0), burn_in=args.steps // 5, generator=g)

    t = best_times({"bare": lambda: bare_denoiser_calls(model, x0, levels, n_each), "annealed": ours_annealed,
                    "deepinv ULA": deepinv_ula, "posterior": ours_posterior}, device, args.repeats)
    print(f"model: {origin}; device {device}, {torch.get_num_threads()} threads, batch {args.batch}, "
          f"{args.steps} steps, best of {args.repeats}")
    print(f"{'case':<58}{'baseline s':>11}{'ours s':>9}{'ratio':>7}  target")
    rows = [("(a) annealed_langevin vs bare denoiser calls", t["bare"], t["annealed"], "<= 1.05"),
            ("(b) posterior_langevin vs deepinv ULA (inpainting)", t["deepinv ULA"], t["posterior"], "<= 1.00"),
            ("(b) annealed_langevin vs deepinv ULA", t["deepinv ULA"], t["annealed"], "<= 1.00")]
    for name, base, ours, target in rows:
        print(f"{name:<58}{base:>11.3f}{ours:>9.3f}{ours / base:>7.3f}  {target}")

    if device.type != "cuda":
        print("(c) skipped: no CUDA device")
        return
    contexts = {"fp32": nullcontext, "bf16 autocast": lambda: torch.autocast("cuda", dtype=torch.bfloat16)}

    def under(ctx):
        def run():
            with ctx():
                ours_annealed()
        return run

    t = best_times({name: under(ctx) for name, ctx in contexts.items()}, device, args.repeats)
    print(f"{'(c) annealed_langevin on ' + torch.cuda.get_device_name(device):<58}{'steps/s':>11}")
    for name, seconds in t.items():
        print(f"{'    ' + name:<58}{args.steps / seconds:>11.1f}")
    print(f"{'    bf16 speed-up over fp32':<58}{t['fp32'] / t['bf16 autocast']:>11.2f}")


if __name__ == "__main__":
    main()
