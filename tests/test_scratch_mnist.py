"""Noise2Noise vs Noise2Clean on real MNIST with the scratch autoencoder (needs the MNIST cache)."""

import pytest
import torch

import scoredae.scratch as S
from scoredae.data import mnist as data

SIGMA = 0.5


def psnr_per_image(estimate: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    return 10 * torch.log10(1 / (estimate - clean).pow(2).mean((1, 2, 3)))


@pytest.mark.slow
@pytest.mark.mnist
@pytest.mark.skipif(not data.mnist_available(), reason="the MNIST cache is absent: run `scoredae data fetch mnist`")
def test_noise2noise_matches_noise2clean_on_mnist():
    """Same network, initial weights, optimiser and budget (600 Adam steps of batch 32); the
    Noise2Noise denoiser never sees a clean image, yet its test PSNR at sigma = 0.5 is within
    0.5 dB of the Noise2Clean one, and both are far above the noisy input (6 dB)."""
    train, _ = data.load_mnist("train", download=False)
    test, _ = data.load_mnist("test", download=False)
    clean = test[:1000]
    noisy = clean + SIGMA * torch.randn(clean.shape, generator=torch.Generator().manual_seed(2))
    psnr = {}
    for name, batches in [("n2n", S.noise2noise_batches), ("n2c", S.noise2clean_batches)]:
        g = torch.Generator().manual_seed(1)
        net = S.conv_autoencoder(channels=(16, 32), generator=g)
        S.fit(net, S.Adam(net.params(), lr=1e-3), batches(train, SIGMA, 32, 600, generator=g))
        psnr[name] = psnr_per_image(S.ScratchDenoiser(net, SIGMA)(noisy, SIGMA), clean)
    noisy_psnr = float(psnr_per_image(noisy, clean).mean())
    n2n, n2c = float(psnr["n2n"].mean()), float(psnr["n2c"].mean())
    assert n2c > noisy_psnr + 8, (noisy_psnr, n2c)
    assert abs(n2n - n2c) < 0.5, (n2n, n2c)
