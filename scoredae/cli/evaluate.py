"""``scoredae eval``: the PSNR/SSIM table of the shipped denoisers (and of any checkpoint)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .args import non_negative_int, positive_float, positive_int

HELP = "PSNR/SSIM table of the shipped MNIST denoisers"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--images", type=positive_int, default=2000, help="first N test images for the models (default 2000)")
    p.add_argument("--mmse-images", type=non_negative_int, default=200,
                   help="first N test images for the exact empirical-prior MMSE (default 200; 0 skips it)")
    p.add_argument("--sigmas", type=positive_float, nargs="+", default=[0.1, 0.25, 0.5])
    p.add_argument("--models", nargs="*", default=None, help="shipped model names (default: all)")
    p.add_argument("--checkpoint", action="append", default=[], help="also evaluate this checkpoint stem")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--write-metadata", metavar="DIR", default=None,
                   help="write each shipped model's metadata, with the PSNR/SSIM measured here, to DIR/NAME.json "
                        "(in a source checkout, DIR = scoredae/weights updates the shipped files)")


def _cell(metrics: dict | None) -> str:
    return "-" if metrics is None else f"{metrics['psnr']:6.2f} / {metrics['ssim']:.3f}"


def run(args: argparse.Namespace) -> int:
    """Print PSNR / SSIM per sigma for the noisy input, every shipped model and the empirical MMSE."""
    import torch
    from tqdm.auto import tqdm

    from .._checks import atomic_write, resolve_device
    from ..data.mnist import load_mnist
    from ..eval.denoising import denoising_metrics, empirical_mmse
    from ..nets.checkpoints import load_checkpoint
    from ..nets.registry import WEIGHTS_DIR, constructors, list_pretrained

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    clean = load_mnist("test")[0][: args.images].to(device)
    shipped = list_pretrained()
    names = shipped if args.models is None else args.models
    unknown = sorted(set(names) - set(shipped))
    if unknown:
        raise ValueError(f"--models: expected names of shipped models {sorted(shipped)}, got {unknown}")
    stems = {n: WEIGHTS_DIR / n for n in names} | {str(c): c for c in args.checkpoint}
    rows = {"noisy input": {s: denoising_metrics(None, clean, s) for s in args.sigmas}}
    for name, stem in tqdm(stems.items(), desc=f"eval on {len(clean)} images", unit="model",
                           disable=args.no_progress):
        model, meta = load_checkpoint(stem, constructors(), device=device)
        sigmas = args.sigmas if model.noise_conditional else [s for s in args.sigmas if s == model.trained_sigma]
        rows[name] = {s: denoising_metrics(model, clean, s) for s in sigmas}
        if args.write_metadata and name in shipped:
            meta["psnr"] = {str(s): round(m["psnr"], 3) for s, m in rows[name].items()}
            meta["ssim"] = {str(s): round(m["ssim"], 4) for s, m in rows[name].items()}
            meta["eval"] = f"first {len(clean)} MNIST test images, noise seed fixed (scoredae eval)"
            text = json.dumps(meta, indent=2, sort_keys=True)
            atomic_write(Path(args.write_metadata) / f"{name}.json", lambda p, t=text: Path(p).write_text(t))
    if args.mmse_images:
        mmse = empirical_mmse(load_mnist("train")[0].to(device))
        label = f"empirical MMSE (deepinv; first {min(args.mmse_images, len(clean))} images)"
        rows[label] = {s: denoising_metrics(mmse, clean[: args.mmse_images], s, batch_size=50) for s in args.sigmas}
    width = max(len(r) for r in rows)
    print(f"PSNR (dB) / SSIM on the first {len(clean)} MNIST test images, fixed noise seed")
    print(f"{'model':<{width}}  " + "  ".join(f"{'sigma=' + str(s):>15}" for s in args.sigmas))
    for name, cells in rows.items():
        print(f"{name:<{width}}  " + "  ".join(f"{_cell(cells.get(s)):>15}" for s in args.sigmas))
    return 0
