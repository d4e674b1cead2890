"""scoredae's solvers against the implementations people run, on the same model and steps: seconds
of each pair in one run, as a ratio (target: ours not slower, ratio <= 1), with the largest
difference between the two samples.

    python benchmarks/bench_peers.py [--steps 20] [--batch 16] [--size 32] [--repeats 3]

The model is a random diffusers ``UNet2DModel`` (epsilon prediction, float32); the peers are
diffusers' schedulers (DDIM with eta 0 and 1, Euler, Heun, DPM-Solver++(2M), UniPC), Meta's
``flow_matching`` ODE solver (Euler, on a velocity model built from the same network) and deepinv's
``FlowMatching`` (Euler). Each pair runs from the same start on the same timesteps; the best of
``--repeats`` runs (taking turns) is kept.
"""

from __future__ import annotations

import argparse
import time

import diffusers
import torch

from scoredae.nets.external import from_diffusers, from_flow_matching
from scoredae.rng import randn
from scoredae.sampling import ddim, dpm_solver_pp, edm_sampler, unipc
from scoredae.sampling.parametrisations import LinearInterpolant


def timed(run):
    start = time.perf_counter()
    with torch.no_grad():
        out = run()
    return time.perf_counter() - start, out


def best_times(peer, ours, repeats: int):
    """The best of ``repeats`` runs of each, the two taking turns so that a slow spell of the machine
    falls on both."""
    t_peer, t_ours = [], []
    for _ in range(repeats):
        (t, a), (u, b) = timed(peer), timed(ours)
        t_peer.append(t)
        t_ours.append(u)
    return min(t_peer), min(t_ours), a, b


def diffusers_loop(unet, scheduler, x_T, steps, **step_kwargs):
    def run():
        scheduler.set_timesteps(steps)
        sample, noise = x_T * scheduler.init_noise_sigma, torch.Generator().manual_seed(1)
        for i, t in enumerate(scheduler.timesteps):
            out = unet(scheduler.scale_model_input(sample, t), t).sample
            if step_kwargs.get("eta"):
                last = i == len(scheduler.timesteps) - 1
                step_kwargs["variance_noise"] = torch.zeros_like(sample) if last else randn(sample.shape, noise)
            sample = scheduler.step(out, t, sample, **step_kwargs).prev_sample
        return sample
    return run


def diffusers_pairs(unet, x_T, steps):
    """(name, peer run, our run) for each diffusers scheduler."""
    pairs = []
    for name, scheduler, ours, kwargs in (
        ("DDIM eta 0", diffusers.DDIMScheduler(clip_sample=False), lambda d, x, s: edm_sampler(d, x, s, solver="euler"), {}),
        ("DDIM eta 1", diffusers.DDIMScheduler(clip_sample=False),
         lambda d, x, s: ddim(d, x, s, eta=1.0, generator=torch.Generator().manual_seed(1)), {"eta": 1.0}),
        ("Euler", diffusers.EulerDiscreteScheduler(timestep_spacing="leading"),
         lambda d, x, s: edm_sampler(d, x, s, solver="euler"), {}),
        ("Heun", diffusers.HeunDiscreteScheduler(timestep_spacing="leading"),
         lambda d, x, s: edm_sampler(d, x, s, solver="heun"), {}),
        ("DPM-Solver++(2M)", diffusers.DPMSolverMultistepScheduler(), lambda d, x, s: dpm_solver_pp(d, x, s), {}),
        ("UniPC-2", diffusers.UniPCMultistepScheduler(), lambda d, x, s: unipc(d, x, s), {}),
    ):
        scheduler.set_timesteps(steps)
        denoiser = from_diffusers(unet, scheduler, data_range=(0.0, 1.0))
        t = scheduler.timesteps.to(torch.float64).unique_consecutive()
        sigmas = torch.cat([denoiser.schedule.sigma(t), t.new_zeros(1)])
        # Euler's and Heun's schedulers hold VE points; the others VP ones, divided by alpha here
        start = x_T * scheduler.init_noise_sigma if name in ("Euler", "Heun") else \
            x_T / denoiser.schedule.alpha(t[0]).float()
        pairs.append((name, diffusers_loop(unet, scheduler, x_T, steps, **kwargs),
                      lambda o=ours, d=denoiser, x=start, s=sigmas: o(d, x, s).samples))
    return pairs


def flow_pairs(unet, x_T, steps):
    """Meta's and deepinv's Euler on a velocity network against Euler on its denoiser."""
    from deepinv.sampling import EulerSolver, FlowMatching
    from flow_matching.solver import ODESolver

    class Velocity(torch.nn.Module):  # flow_matching's convention: t = 0 noise, predicting x_1 - x_0
        def __init__(self):
            super().__init__()
            self.unet = unet

        def forward(self, x, t, **extras):
            return self.unet(x, (1000 * torch.as_tensor(t)).expand(x.shape[0])).sample

    grid = torch.linspace(0.02, 1.0, steps + 1)
    denoiser = from_flow_matching(Velocity())
    ours = lambda: edm_sampler(denoiser, x_T / grid[0], ((1 - grid) / grid).double(), solver="euler").samples
    meta = lambda: ODESolver(velocity_model=Velocity()).sample(x_T, step_size=None, time_grid=grid)
    times = 1 - grid[:-1]  # deepinv's time: 1 at the noise; it stops short of 0 (sigma = 0)
    flow = FlowMatching(denoiser=denoiser, solver=EulerSolver(timesteps=times), minus_one_one=False)
    schedule = LinearInterpolant()
    deepinv_run = lambda: flow.sample(x_T, timesteps=times)
    ours_deepinv = lambda: edm_sampler(denoiser, x_T / grid[0], schedule.sigma(times.double()), solver="euler")
    return [("flow_matching Euler", meta, ours),
            ("deepinv FlowMatching Euler", deepinv_run, lambda: ours_deepinv().samples * (1 - times[-1]))]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=32, help="image side (default 32)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(sample_size=args.size, in_channels=3, out_channels=3, block_out_channels=(32, 64),
                                 layers_per_block=1, down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                                 up_block_types=("AttnUpBlock2D", "UpBlock2D")).eval()
    x_T = torch.randn(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    print(f"{'pair':28s} {'peer s':>8s} {'ours s':>8s} {'ratio':>6s} {'max diff':>9s}")
    for name, peer, ours in [*diffusers_pairs(unet, x_T, args.steps), *flow_pairs(unet, x_T, args.steps)]:
        t_peer, t_ours, a, b = best_times(peer, ours, args.repeats)
        diff = float((a.double() - b.double()).abs().max() / a.double().abs().max())
        print(f"{name:28s} {t_peer:8.3f} {t_ours:8.3f} {t_ours / t_peer:6.2f} {diff:9.1e}", flush=True)


if __name__ == "__main__":
    main()
