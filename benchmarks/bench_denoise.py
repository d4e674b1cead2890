"""Seconds per megapixel of denoising a photograph: each shipped colour model (through
``denoise_image``, as ``scoredae denoise`` runs it) against BM3D (deepinv.models.BM3D, CPU) on the
same picture and noise, printed as ratios to BM3D in one run; CUDA rows too when a GPU is present.

    python benchmarks/bench_denoise.py [--picture chelsea.png] [--sigma 0.098] [--repeats 3]
"""

from __future__ import annotations

import argparse

import deepinv
import torch
from timing import best_times

from scoredae.data import load_images
from scoredae.nets import list_pretrained, load_pretrained
from scoredae.nets.tiling import denoise_image


def denoiser(model, y: torch.Tensor, sigma: float):
    """A call of ``denoise_image`` on ``y``, as ``scoredae denoise`` makes it."""
    return lambda: denoise_image(model, y, sigma)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--picture", default="chelsea.png", help="a test picture of the image collection")
    p.add_argument("--sigma", type=float, default=25 / 255)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    images, names = load_images("images", "test", channels=3)
    clean = images[names.index(args.picture)].float().div(255)[None]
    noisy = clean + args.sigma * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    megapixels = clean.shape[-2] * clean.shape[-1] / 1e6
    colour = [n for n, meta in list_pretrained().items() if meta.get("data", {}).get("dataset") == "images"]
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    bm3d = deepinv.models.BM3D()
    rows = {"BM3D (cpu)": best_times({"BM3D": lambda: bm3d(noisy, args.sigma)}, devices[0], args.repeats)["BM3D"]}
    for device in devices:
        models = {f"{n} ({device.type})": load_pretrained(n, device=device) for n in colour}
        fns = {name: denoiser(model, noisy.to(device), args.sigma) for name, model in models.items()}
        for fn in fns.values():  # warm-up
            fn()
        rows |= best_times(fns, device, args.repeats)
    print(f"{args.picture}: {clean.shape[-1]} x {clean.shape[-2]} pixels, sigma = {args.sigma:.4f}, "
          f"best of {args.repeats}, {torch.get_num_threads()} CPU threads")
    print(f"{'denoiser':<28}{'s / megapixel':>14}{'x BM3D':>9}")
    for name, seconds in rows.items():
        print(f"{name:<28}{seconds / megapixels:>14.2f}{seconds / rows['BM3D (cpu)']:>9.3f}")


if __name__ == "__main__":
    main()
