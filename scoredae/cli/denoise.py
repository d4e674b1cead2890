"""``scoredae denoise``: denoise a photograph of any size with a shipped model or a checkpoint."""

from __future__ import annotations

import argparse

from .args import positive_float, positive_int

HELP = "denoise an image file (PNG/JPEG, any size) with a shipped model or a checkpoint"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="IN", help="the image to denoise (PNG or JPEG, grayscale or RGB)")
    p.add_argument("--model", required=True, help="a shipped model name (scoredae eval lists them) or a checkpoint stem")
    p.add_argument("--out", required=True, help="where to write the denoised image (PNG)")
    p.add_argument("--sigma", type=positive_float, default=None,
                   help="noise standard deviation of IN, pixels in [0, 1] (default: --add-noise, or the "
                        "level a fixed-sigma model was trained at)")
    p.add_argument("--add-noise", type=positive_float, default=None, metavar="S",
                   help="first add Gaussian noise of standard deviation S (IN is then the clean reference)")
    p.add_argument("--seed", type=int, default=0, help="seed of --add-noise (default 0)")
    p.add_argument("--reference", default=None, metavar="CLEAN", help="a clean image: print the PSNR against it")
    p.add_argument("--figure", default=None, metavar="FIG", help="also write a side-by-side figure (PNG)")
    p.add_argument("--tile", type=positive_int, default=256, help="tile side for large images (default 256)")
    p.add_argument("--device", default="auto")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar over the tiles")


def run(args: argparse.Namespace) -> int:
    import torch

    from .._checks import resolve_device
    from ..data.images import read_image, to_channels, write_image
    from ..nets.tiling import denoise_image
    from .models import load_model, noise_level
    from .output import writable_output

    writable_output(args.out, (".png",))
    if args.figure:
        writable_output(args.figure, (".png",), "--figure")
    device = resolve_device(args.device)
    model = load_model(args.model, device)
    sigma = noise_level(model, args.sigma or args.add_noise)
    image = read_image(args.input)  # uint8 (C, H, W)
    channels = model.config.channels
    if image.shape[0] != channels:  # documented: gray repeated to RGB, RGB to luma; written back as read
        print(f"note: {args.input} has {image.shape[0]} channel(s), the model {channels}: converted for the model")
    x = to_channels(image, channels).to(device, torch.float32).div(255)[None]  # (1, C, H, W)
    clean = x if args.add_noise else None
    if args.add_noise:
        noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(args.seed))
        x = x + args.add_noise * noise.to(device)
    out = denoise_image(model, x, sigma, tile=args.tile, progress=not args.no_progress).clamp(0, 1)
    write_image(args.out, to_channels(out[0].cpu(), image.shape[0]))
    print(f"wrote {args.out} ({image.shape[-1]} x {image.shape[-2]}, sigma = {sigma:g})")
    if args.reference:
        clean = to_channels(read_image(args.reference), channels).to(device, torch.float32).div(255)[None]
        if clean.shape != x.shape:
            raise ValueError(f"--reference: expected an image of {tuple(x.shape[-2:])} pixels, got {tuple(clean.shape[-2:])}")
    if clean is not None:
        from ..eval.denoising import psnr

        noisy_db, denoised_db = (float(psnr(v.clamp(0, 1), clean)) for v in (x, out))
        print(f"PSNR: noisy {noisy_db:.2f} dB, denoised {denoised_db:.2f} dB")
    if args.figure:
        _figure(args.figure, x, out, clean, args.model, sigma)
        print(f"wrote {args.figure}")
    return 0


def _figure(path: str, noisy, denoised, clean, name: str, sigma: float) -> None:
    """Noisy | denoised (| clean) side by side, with PSNRs in the titles when the clean image is known."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..eval.denoising import psnr

    panels = [("noisy", noisy), (f"{name}", denoised)] + ([("clean", clean)] if clean is not None else [])
    h, w = noisy.shape[-2:]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4 * h / w + 0.5), squeeze=False)
    for ax, (label, img) in zip(axes[0], panels):
        shown = img[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy()
        ax.imshow(shown[:, :, 0] if shown.shape[2] == 1 else shown, cmap="gray", vmin=0, vmax=1)
        title = f"{label} (sigma = {sigma:g})" if label == "noisy" else label
        if clean is not None and label != "clean":
            title += f": {float(psnr(img.clamp(0, 1), clean)):.2f} dB"
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
