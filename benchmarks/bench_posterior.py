r"""The posterior samplers with a diffusion prior: (a) each against the bare loop of its own denoiser
calls and Jacobian products, as many of each kind as the sampler asks for
(:class:`~scoredae.eval.counting.CountingDenoiser`): plain calls, calls with their
vector-Jacobian product, Jacobian-vector products (target: overhead <= 5%); (b) ours against deepinv's ``DPS`` (the variance-exploding
schedule, its ancestral solver) and ``DiffPIR`` at the same number of denoiser calls and batch
(target: ours not slower). Inpainting of MNIST test digits with ``unet_edm``; printed as ratios in
one run, each ratio the median over rounds of the sampler timed right beside its baseline.

    python benchmarks/bench_posterior.py [--batch 8] [--steps 50] [--repeats 10] [--samplers dps mcgdiff ...]

DAPS, PnP-DM, DPnP and MGPS run shortened inner loops here (the overhead is a ratio to their own
network work, whatever its amount).
"""

from __future__ import annotations

import argparse

import deepinv
import torch
from timing import counted_calls, paired_ratio

from scoredae.data import load_mnist
from scoredae.eval.counting import CountingDenoiser
from scoredae.inverse import (
    daps,
    dcps,
    ddnm,
    ddrm,
    diffpir,
    dpnp,
    dps,
    fps,
    mcgdiff,
    mgps,
    pigdm,
    pnp_dm,
    red_diff,
    tmpd,
    twisted_diffusion,
)
from scoredae.nets import load_pretrained
from scoredae.recipes.posterior import box_mask
from scoredae.sampling import karras_sigmas
from scoredae.uncertainty import denoise_with_pullback, jacobian_vp


@torch.no_grad()
def bare(model, x: torch.Tensor, levels: list[float], counts: CountingDenoiser) -> None:
    """The denoiser's work alone, under ``no_grad`` as the samplers run: as many plain calls, calls
    with their pullback and Jacobian-vector products as ``counts`` holds, at the levels in turn."""
    plain = counts.calls - counts.vjps - counts.jvps
    kinds = ["jvp"] * counts.jvps + ["vjp"] * counts.vjps + ["call"] * plain
    for i, kind in enumerate(kinds):
        sigma = levels[i % len(levels)]
        if kind == "jvp":
            jacobian_vp(model, x, sigma, torch.ones_like(x))
        elif kind == "vjp":
            _, back = denoise_with_pullback(model, x, sigma)
            back(x)
        else:
            model(x, sigma)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8, help="chains (default 8)")
    parser.add_argument("--steps", type=int, default=50, help="levels, one denoiser call each (default 50)")
    parser.add_argument("--repeats", type=int, default=10, help="rounds per ratio (default 10)")
    parser.add_argument("--samplers", nargs="+", default=None, help="only these samplers (default: all)")
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
    shared = y[:1].expand_as(y)  # the particle samplers' one observation
    samplers = {
        "dps": lambda d: dps(d, *common[1:], zeta=1.0, generator=gen()),
        "pigdm": lambda d: pigdm(d, *common[1:], generator=gen()),
        "tmpd": lambda d: tmpd(d, *common[1:], covariance="row_sum", generator=gen()),
        "ddrm": lambda d: ddrm(d, *common[1:], generator=gen()),
        "diffpir": lambda d: diffpir(d, *common[1:], generator=gen()),
        "ddnm": lambda d: ddnm(d, *common[1:], generator=gen()),
        "smc": lambda d: twisted_diffusion(d, shared, physics, noise_sigma, x_T, sigmas, generator=gen()),
        "mcgdiff": lambda d: mcgdiff(d, shared, physics, noise_sigma, x_T, sigmas, generator=gen()),
        "fps": lambda d: fps(d, shared, physics, noise_sigma, x_T, sigmas, generator=gen()),
        "daps": lambda d: daps(d, *common[1:], langevin_steps=20, generator=gen()),
        "pnp_dm": lambda d: pnp_dm(d, *common[1:], rho_max=1.0, iterations=5, generator=gen()),
        "dpnp": lambda d: dpnp(d, *common[1:], eta_max=0.4, eta_min=0.16, iterations=5, hold=1, generator=gen()),
        "red_diff": lambda d: red_diff(d, *common[1:], generator=gen()),
        "mgps": lambda d: mgps(d, *common[1:], boosted_steps=2, generator=gen()),
        "dcps": lambda d: dcps(d, *common[1:], generator=gen()),
    }
    samplers = {name: run for name, run in samplers.items() if args.samplers is None or name in args.samplers}
    ours = {name: (lambda run=run: run(model)) for name, run in samplers.items()}
    floors = {}
    for name, run in samplers.items():
        counts = CountingDenoiser(model)
        run(counts)
        floors[name] = (lambda counts=counts: bare(model, x_T, levels, counts))
    theirs = {
        "deepinv DPS": lambda: deepinv.sampling.DPS(model, schedule="ve", solver="ancestral", num_steps=args.steps,
                                                    dtype=torch.float32)(y, physics, seed=1),
        "deepinv DiffPIR": lambda: deepinv.sampling.DiffPIR(model, deepinv.optim.L2(), sigma=noise_sigma,
                                                            max_iter=args.steps)(y, physics, seed=1),
    }
    pairs = [(name, rival) for name, rival in (("dps", "deepinv DPS"), ("diffpir", "deepinv DiffPIR")) if name in ours]
    calls = {name: counted_calls(run, model)[1] for name, run in {**ours, **theirs}.items()
             if name in {n for pair in pairs for n in pair}}
    cpu = torch.device("cpu")
    print(f"batch {args.batch}, {args.steps} levels, unet_edm, inpainting; median ratio of {args.repeats} "
          f"rounds, each sampler beside its baseline; best seconds")
    print(f"{'sampler':>10} {'seconds':>8} {'bare loop':>10} {'overhead':>9}")
    for name, run in ours.items():
        ratio, ours_s, floor_s = paired_ratio(run, floors[name], cpu, args.repeats)
        print(f"{name:>10} {ours_s:8.3f} {floor_s:10.3f} {ratio - 1:+9.1%}")
    for name, rival in pairs:
        ratio, ours_s, theirs_s = paired_ratio(ours[name], theirs[rival], cpu, args.repeats)
        print(f"{name} against {rival}: {ours_s:.3f} s for {calls[name]} denoiser calls vs {theirs_s:.3f} s "
              f"for {calls[rival]}, ratio {ratio:.2f}, per call {ratio * calls[rival] / calls[name]:.2f} (ours / theirs)")


if __name__ == "__main__":
    main()
