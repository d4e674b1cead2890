"""Speed of the toy trainer and of the implicit score-matching trace estimators, in one run.

1. Training steps per second of ``train_toy`` (DSM, batch 512, a 2D mixture) against a plain
   PyTorch loop doing the same work (same network, loss, optimiser, no framework around it), on CPU,
   and on CUDA in float32, bf16 and fp16 when a GPU is present. Target: ratio ours / plain >= 0.9.
2. Cost of one ISM loss + backward (batch 256) as the dimension d grows, for the exact trace
   (ours: the d vector-Jacobian products batched in one backward pass), the exact trace from the full Jacobian by ``torch.func.vmap(jacrev)``
   (the baseline), and Hutchinson's estimator with one probe.

Run: python benchmarks/bench_objectives.py
"""

import math
import time
from functools import partial

import torch

from scoredae import GaussianMixture
from scoredae.nets.toy import ToyDenoiser
from scoredae.objectives import ism_loss
from scoredae.train import train_toy

TRAIN_STEPS, BATCH, SIGMAS = 300, 512, (0.2, 2.0)


def mixture() -> GaussianMixture:
    angles = torch.arange(4, dtype=torch.float64) * torch.pi / 2 + torch.pi / 4
    means = 2.0 * torch.stack([angles.cos(), angles.sin()], dim=1)
    return GaussianMixture(torch.full((4,), 0.25, dtype=torch.float64), means, 0.2)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: torch.device, repeats: int = 3) -> float:
    """Best seconds of one call of fn over repeats, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return min(times)


def plain_loop(gm: GaussianMixture, device: torch.device) -> None:
    """The baseline: the same DSM training written as a bare loop."""
    torch.manual_seed(0)
    model = ToyDenoiser(2).to(device=device, dtype=torch.float32)
    weights, means = gm.weights.to(device, torch.float32), gm.means.to(device, torch.float32)
    std = math.sqrt(float(gm.covs[0, 0, 0]))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(TRAIN_STEPS):
        x = means[torch.multinomial(weights, BATCH, replacement=True)]
        x = x + std * torch.randn(BATCH, 2, device=device)
        u = torch.rand(BATCH, device=device)
        sigma = torch.exp(math.log(SIGMAS[0]) + u * math.log(SIGMAS[1] / SIGMAS[0]))
        noise = torch.randn_like(x)
        score = model.score(x + sigma[:, None] * noise, sigma)
        loss = 0.5 * (sigma[:, None] * score + noise).pow(2).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def training_table() -> None:
    gm = mixture()
    devices = [("cpu", None)]
    if torch.cuda.is_available():
        devices += [("cuda", None), ("cuda", "bf16"), ("cuda", "fp16")]
    print(f"train_toy (DSM, batch {BATCH}, {TRAIN_STEPS} steps) vs a plain loop, "
          f"{torch.get_num_threads()} CPU threads")
    print(f"{'device':<8}{'amp':<7}{'ours steps/s':>14}{'plain steps/s':>15}{'ratio':>8}")
    for name, amp in devices:
        device = torch.device(name)
        ours = timed(partial(train_toy, gm, steps=TRAIN_STEPS, batch_size=BATCH, sigmas=SIGMAS, amp=amp,
                             device=device, progress=False), device)
        base = timed(partial(plain_loop, gm, device), device)
        print(f"{name:<8}{amp or 'fp32':<7}{TRAIN_STEPS / ours:>14.0f}{TRAIN_STEPS / base:>15.0f}{base / ours:>8.2f}")


def jacrev_ism(model: ToyDenoiser, x: torch.Tensor, sigma: float) -> None:
    """The baseline exact ISM + backward: the full (B, d, d) Jacobian by torch.func, then its trace."""
    jac = torch.func.vmap(torch.func.jacrev(lambda z: model.score(z[None], sigma)[0]))(x)  # (B, d, d)
    loss = jac.diagonal(dim1=1, dim2=2).sum(1) + 0.5 * model.score(x, sigma).pow(2).sum(1)
    loss.mean().backward()


def ours_ism(model: ToyDenoiser, x: torch.Tensor, sigma: float, estimator: str) -> None:
    ism_loss(partial(model.score, sigma=sigma), x, estimator=estimator).mean().backward()


def trace_table(batch: int = 256, sigma: float = 0.5) -> None:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"\nISM loss + backward, batch {batch}, on {device} (milliseconds)")
    print(f"{'d':>5}{'exact (ours)':>14}{'exact (jacrev)':>16}{'hutchinson':>12}"
          f"{'ours/jacrev':>13}{'exact/hutch':>13}")
    for d in (2, 16, 128):
        torch.manual_seed(0)
        model = ToyDenoiser(d).to(device)
        x = torch.randn(batch, d, device=device)
        ours = timed(partial(ours_ism, model, x, sigma, "exact"), device)
        base = timed(partial(jacrev_ism, model, x, sigma), device)
        hutch = timed(partial(ours_ism, model, x, sigma, "hutchinson"), device)
        print(f"{d:>5}{1e3 * ours:>14.1f}{1e3 * base:>16.1f}{1e3 * hutch:>12.1f}{ours / base:>13.2f}{ours / hutch:>13.1f}")


if __name__ == "__main__":
    training_table()
    trace_table()
