"""Forward + backward time per batch: the scratch autoencoder (hand-written backward passes) vs
the identical torch.nn network differentiated by autograd, measured in the same run on the CPU.

Target: scratch <= 2x autograd. Run: `python benchmarks/bench_scratch.py [--batch 64] [--reps 30]`.
"""

from __future__ import annotations

import argparse

import torch
from timing import best_times

import scoredae.scratch as S


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

    times = best_times({"scratch": scratch_step, "autograd": autograd_step}, torch.device("cpu"), args.reps)
    t_scratch, t_autograd = times["scratch"], times["autograd"]
    print(f"conv autoencoder (32, 64) on MNIST-size images, batch {args.batch}, float32, "
          f"{torch.get_num_threads()} thread(s), best of {args.reps} interleaved rounds")
    print(f"  scratch  forward+backward: {1e3 * t_scratch:8.2f} ms/batch")
    print(f"  autograd forward+backward: {1e3 * t_autograd:8.2f} ms/batch")
    print(f"  ratio scratch / autograd : {t_scratch / t_autograd:8.2f}  (target <= 2)")


if __name__ == "__main__":
    main()
