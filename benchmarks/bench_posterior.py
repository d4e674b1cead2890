r"""The posterior samplers with a diffusion prior: (a) each against the bare loop of its own denoiser
calls and Jacobian products (one vector-Jacobian product a level for DPS, PiGDM and the twisted
diffusion sampler, one more Jacobian-vector product for TMPD's row sums, one plain call for DDRM
and DiffPIR; target: overhead <= 5%); (b) ours against deepinv's ``DPS`` (the variance-exploding
schedule, its ancestral solver) and ``DiffPIR`` at the same number of denoiser calls and batch
(target: ours not slower). Inpainting of MNIST test digits with ``unet_edm``; printed as ratios in
one run, each ratio the median over rounds of the sampler timed right beside its baseline.

    python benchmarks/bench_posterior.py [--batch 8] [--steps 50] [--repeats 10]
"""

from __future__ import annotations

import argparse

import deepinv
import torch
from timing import counted_calls, paired_ratio

from scoredae.data import load_mnist
from scoredae.inverse import ddrm, diffpir, dps, pigdm, tmpd, twisted_diffusion
from scoredae.nets import load_pretrained
from scoredae.recipes.posterior import box_mask
from scoredae.sampling import karras_sigmas
from scoredae.uncertainty import denoise_with_pullback, jacobian_vp


@torch.no_grad()
def bare(model, x: torch.Tensor, levels: list[float], pullback: bool, jvp: bool) -> None:
    """The denoiser calls alone: a call (or a JVP, then a call and its pullback) per level, under
    ``no_grad`` as the samplers run."""
    for sigma in levels:
        if jvp:
            jacobian_vp(model, x, sigma, torch.ones_like(x))
        if pullback:
            _, back = denoise_with_pullback(model, x, sigma)
            back(x)
        else:
            model(x, sigma)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8, help="chains (default 8)")
    parser.add_argument("--steps", type=int, default=50, help="levels, one denoiser call each (default 50)")
    parser.add_argument("--repeats", type=int, default=10, help="rounds per ratio (default 10)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    model = load_pretrained("unet_edm")
    x = load_mnist("test")[0][: args.batch]
    noise_sigma = 0.05
    physics = deepinv.physics.Inpainting(img_size=(1, 28, 28), mask=box_mask(),
                                         noise_model=deepinv.physics.GaussianNoise(noise_sigma))
    y = physics(x)
    sigmas = karras_sigmas(0.002, 80.0, args.steps)
    levels = sigmas[:-1].tolist()  # the levels the denoiser is called at
    x_T = 80.0 * torch.randn_like(x)
    common = (model, y, physics, noise_sigma, x_T, sigmas)
    gen = lambda: torch.Generator().manual_seed(1)
    ours = {
        "dps": lambda: dps(*common, zeta=1.0, generator=gen()),
        "pigdm": lambda: pigdm(*common, generator=gen()),
        "tmpd": lambda: tmpd(*common, covariance="row_sum", generator=gen()),
        "ddrm": lambda: ddrm(*common, generator=gen()),
        "diffpir": lambda: diffpir(*common, generator=gen()),
        "smc": lambda: twisted_diffusion(model, y[:1].expand_as(y), physics, noise_sigma, x_T, sigmas, generator=gen()),
    }
    floors = {
        "vjp loop": lambda: bare(model, x_T, levels, pullback=True, jvp=False),
        "vjp + jvp loop": lambda: bare(model, x_T, levels, pullback=True, jvp=True),
        "call loop": lambda: bare(model, x_T, levels, pullback=False, jvp=False),
    }
    floor_of = {"dps": "vjp loop", "pigdm": "vjp loop", "smc": "vjp loop", "tmpd": "vjp + jvp loop",
                "ddrm": "call loop", "diffpir": "call loop"}
    theirs = {
        "deepinv DPS": lambda: deepinv.sampling.DPS(model, schedule="ve", solver="ancestral", num_steps=args.steps,
                                                    dtype=torch.float32)(y, physics, seed=1),
        "deepinv DiffPIR": lambda: deepinv.sampling.DiffPIR(model, deepinv.optim.L2(), sigma=noise_sigma,
                                                            max_iter=args.steps)(y, physics, seed=1),
    }
    runs = {"dps": ours["dps"], "diffpir": ours["diffpir"], **theirs}
    calls = {name: counted_calls(run, model)[1] for name, run in runs.items()}
    cpu = torch.device("cpu")
    print(f"batch {args.batch}, {args.steps} levels, unet_edm, inpainting; median ratio of {args.repeats} "
          f"rounds, each sampler beside its baseline; best seconds")
    print(f"{'sampler':>10} {'seconds':>8} {'bare loop':>16} {'seconds':>8} {'overhead':>9}")
    for name, run in ours.items():
        floor = floor_of[name]
        ratio, ours_s, floor_s = paired_ratio(run, floors[floor], cpu, args.repeats)
        print(f"{name:>10} {ours_s:8.3f} {floor:>16} {floor_s:8.3f} {ratio - 1:+9.1%}")
    for name, rival in (("dps", "deepinv DPS"), ("diffpir", "deepinv DiffPIR")):
        ratio, ours_s, theirs_s = paired_ratio(ours[name], theirs[rival], cpu, args.repeats)
        print(f"{name} against {rival}: {ours_s:.3f} s for {calls[name]} denoiser calls vs {theirs_s:.3f} s "
              f"for {calls[rival]}, ratio {ratio:.2f}, per call {ratio * calls[rival] / calls[name]:.2f} (ours / theirs)")


if __name__ == "__main__":
    main()
