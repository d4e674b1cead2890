"""Training throughput: scoredae's loop against a per-sample Dataset + DataLoader loop, and against
the bare model step.

All train the same MLPDAE (784-128-64-10, sigma = 0.5) with Adam on the same images, on the CPU,
in this run. scoredae's ``train_denoiser`` holds the images as one tensor, draws a batch by
indexing and the noise on the fly (its default batch size, and 1024), clips the gradient norm and
checks the loss; the baseline is the common tutorial loop: a Python list of (noisy, clean) pairs,
a ``Dataset`` returning one pair per ``__getitem__``, and ``DataLoader(batch_size=32,
shuffle=True)``. The ceiling of any training loop is the bare model step (forward, backward, the
same Adam) repeated on one fixed batch of 1024: no data, no noise, no checks. The two runs at
batch 1024 are interleaved, best of three.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import DataLoader, Dataset

from scoredae.data import load_mnist, mnist_available
from scoredae.nets import MLPDAE
from scoredae.objectives import denoising_loss
from scoredae.train import TrainConfig, train_denoiser

N_IMAGES = 10_000
SIGMA = 0.5


class PairDataset(Dataset):
    def __init__(self, pairs):
        self.pairs = pairs

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, i):
        return self.pairs[i]


def images() -> tuple[torch.Tensor, str]:
    if mnist_available():
        return load_mnist("train", download=False)[0][:N_IMAGES], "MNIST"
    g = torch.Generator().manual_seed(0)
    return torch.rand(N_IMAGES, 1, 28, 28, generator=g), "uniform noise images (MNIST cache absent)"


def ours(x: torch.Tensor, batch_size: int) -> float:
    torch.manual_seed(0)
    config = TrainConfig(steps=51_200 // batch_size, batch_size=batch_size, ema=None, progress=False)
    meta = train_denoiser(MLPDAE(sigma=SIGMA), x, x, config, eval_images=10).metadata
    return config.steps * config.batch_size / meta["elapsed_s"]


def baseline(x: torch.Tensor, epochs: int = 1) -> float:
    torch.manual_seed(0)
    model = MLPDAE(sigma=SIGMA)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    pairs = [(xi + SIGMA * torch.randn_like(xi), xi) for xi in x]  # list of (noisy, clean), each (1, 28, 28)
    loader = DataLoader(PairDataset(pairs), batch_size=32, shuffle=True)
    seen, start = 0, time.perf_counter()
    for _ in range(epochs):
        for noisy, clean in loader:
            loss = torch.nn.functional.mse_loss(model(noisy, SIGMA), clean)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            seen += len(noisy)
    return seen / (time.perf_counter() - start)


def bare_model_step(x: torch.Tensor, batch_size: int = 1024, steps: int = 50, objective: bool = False) -> float:
    """Images per second of forward + backward + Adam on one fixed batch; with ``objective``, each
    step also draws its noise and takes the per-sample MMSE loss, as the denoising objective must."""
    torch.manual_seed(0)
    model = MLPDAE(sigma=SIGMA)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3, foreach=True)  # the loop's optimizer
    clean = x[:batch_size]
    noisy = clean + SIGMA * torch.randn_like(clean)
    sigma = torch.full((batch_size,), SIGMA)
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for _ in range(steps):
        if objective:
            loss = denoising_loss(model, clean, SIGMA, generator).mean()
        else:
            loss = torch.nn.functional.mse_loss(model.denoise(noisy, sigma), clean)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return steps * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    threads = parser.parse_args().threads
    torch.set_num_threads(threads)
    x, source = images()
    base_rate = baseline(x)
    print(f"MLPDAE training on {len(x)} {source}, CPU, {threads} thread(s)")
    print(f"  Dataset + DataLoader(batch_size=32) loop: {base_rate:10.0f} images/s")
    rate = ours(x, TrainConfig.batch_size)
    print(f"  scoredae train_denoiser, batch {TrainConfig.batch_size:5d}: {rate:10.0f} images/s"
          f"   ratio {rate / base_rate:.1f}x")
    loop_rate, bare_rate, objective_rate = 0.0, 0.0, 0.0
    for _ in range(3):  # interleaved, best of three
        loop_rate = max(loop_rate, ours(x, 1024))
        bare_rate = max(bare_rate, bare_model_step(x))
        objective_rate = max(objective_rate, bare_model_step(x, objective=True))
    print(f"  scoredae train_denoiser, batch  1024: {loop_rate:10.0f} images/s   ratio {loop_rate / base_rate:.1f}x")
    print(f"  bare model step, fixed batch 1024:    {bare_rate:10.0f} images/s   ratio {bare_rate / base_rate:.1f}x")
    print(f"  bare step + noise draw + per-sample loss: {objective_rate:6.0f} images/s")
    print(f"  loop / bare model step at batch 1024: {loop_rate / bare_rate:.0%} (target >= 90%)")
    print(f"  loop / bare step with the objective:  {loop_rate / objective_rate:.0%} (what the loop itself costs)")


if __name__ == "__main__":
    main()
