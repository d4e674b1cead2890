"""Forward + backward time per batch: the scratch autoencoder (hand-written backward passes) vs
the identical torch.nn network differentiated by autograd, measured in the same run on the CPU.

Target: scratch <= 2x autograd. Run: `python benchmarks/bench_scratch.py [--batch 64] [--reps 30]`.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import scoredae.scratch as S


def median_times(steps, reps: int) -> list[float]:
    """Median wall time of each step; the steps alternate within every repetition, so a change of
    machine load affects them alike."""
    times = [[] for _ in steps]
    for rep in range(reps + 1):
        for step, record in zip(steps, times):
            start = time.perf_counter()
            step()
            if rep > 0:  # repetition 0 is a warm-up (allocations, kernel selection)
                record.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    net = S.conv_autoencoder(channels=(32, 64), generator=g)
    twin = net.to_torch()
    x = torch.rand(args.batch, 1, 28, 28, generator=g)
    target = torch.rand(args.batch, 1, 28, 28, generator=g)
    loss = S.MSE()

    def scratch_step():
        net.zero_grad()
        loss(net(x), target)
        net.backward(loss.backward())

    def autograd_step():
        twin.zero_grad()
        torch.nn.functional.mse_loss(twin(x), target).backward()

    t_scratch, t_autograd = median_times([scratch_step, autograd_step], args.reps)
    print(f"conv autoencoder (32, 64) on MNIST-size images, batch {args.batch}, float32, "
          f"{torch.get_num_threads()} thread(s), median of {args.reps}")
    print(f"  scratch  forward+backward: {1e3 * t_scratch:8.2f} ms/batch")
    print(f"  autograd forward+backward: {1e3 * t_autograd:8.2f} ms/batch")
    print(f"  ratio scratch / autograd : {t_scratch / t_autograd:8.2f}  (target <= 2)")


if __name__ == "__main__":
    main()
