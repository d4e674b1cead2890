"""``scoredae eval``: the PSNR/SSIM table of the shipped denoisers (and of any checkpoint), on MNIST
or on held-out photographs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .args import non_negative_int, positive_float, positive_int

HELP = "PSNR/SSIM table of the shipped denoisers, on MNIST or on held-out photographs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="mnist", metavar="mnist|images|FOLDER",
                   help="MNIST digits (default), the held-out pictures of the image collection, or the "
                        "test files of a folder of PNG/JPEG files")
    p.add_argument("--images", type=positive_int, default=2000,
                   help="first N MNIST test images for the models (default 2000)")
    p.add_argument("--mmse-images", type=non_negative_int, default=200,
                   help="first N test images for the exact empirical-prior MMSE (default 200; 0 skips it)")
    p.add_argument("--sigmas", type=positive_float, nargs="+", default=None,
                   help="noise levels (default: 0.1 0.25 0.5 on MNIST, 0.05 0.1 0.2 on photographs)")
    p.add_argument("--bm3d", action="store_true",
                   help="photographs: add BM3D (deepinv.models.BM3D; needs the bm3d package, `pip install "
                        "scoredae[bm3d]`) as the classical reference")
    p.add_argument("--tile", type=positive_int, default=256, help="photographs: tile side of the networks (default 256)")
    p.add_argument("--consistency", action="store_true",
                   help="also measure Tweedie consistency: the true MSE, SURE and sigma^2 tr(J)/d of each model "
                        "(one Hutchinson probe per image; central 256 x 256 crops of photographs)")
    p.add_argument("--models", nargs="*", default=None,
                   help="shipped model names (default: all those trained on the data evaluated)")
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

    from .._checks import resolve_device
    from ..data.mnist import load_mnist
    from ..eval.denoising import denoising_metrics, empirical_mmse
    from ..nets.checkpoints import load_checkpoint
    from ..nets.registry import constructors, list_pretrained

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    stems = _stems(args)
    if args.data != "mnist":
        return _pictures(args, stems, device)
    args.sigmas = args.sigmas or [0.1, 0.25, 0.5]
    clean = load_mnist("test")[0][: args.images].to(device)
    shipped = list_pretrained()
    rows = {"noisy input": {s: denoising_metrics(None, clean, s) for s in args.sigmas}}
    consistency = {}  # name -> sigma -> consistency_summary
    for name, stem in tqdm(stems.items(), desc=f"eval on {len(clean)} images", unit="model",
                           disable=args.no_progress):
        model, meta = load_checkpoint(stem, constructors(), device=device)
        sigmas = args.sigmas if model.noise_conditional else [s for s in args.sigmas if s == model.trained_sigma]
        rows[name] = {s: denoising_metrics(model, clean, s) for s in sigmas}
        if args.consistency:
            consistency[name] = _consistency(model, clean, sigmas)
        if args.write_metadata and name in shipped:
            _write_metadata(args.write_metadata, name, meta, rows[name],
                            f"first {len(clean)} MNIST test images, noise seed fixed (scoredae eval)",
                            consistency.get(name))
    if args.mmse_images:
        mmse = empirical_mmse(load_mnist("train")[0].to(device))
        label = f"empirical MMSE (deepinv; first {min(args.mmse_images, len(clean))} images)"
        rows[label] = {s: denoising_metrics(mmse, clean[: args.mmse_images], s, batch_size=50) for s in args.sigmas}
    width = max(len(r) for r in rows)
    print(f"PSNR (dB) / SSIM on the first {len(clean)} MNIST test images, fixed noise seed")
    print(f"{'model':<{width}}  " + "  ".join(f"{'sigma=' + str(s):>15}" for s in args.sigmas))
    for name, cells in rows.items():
        print(f"{name:<{width}}  " + "  ".join(f"{_cell(cells.get(s)):>15}" for s in args.sigmas))
    _print_consistency(consistency, f"the first {len(clean)} MNIST test images")
    return 0


def _stems(args: argparse.Namespace) -> dict:
    """Name -> checkpoint stem of every model to evaluate: the shipped ones trained on ``args.data``
    (or ``--models``), then ``--checkpoint``."""
    from ..nets.registry import WEIGHTS_DIR, list_pretrained

    shipped = list_pretrained()
    if args.models is None:
        names = [n for n, meta in shipped.items() if meta.get("data", {}).get("dataset", "mnist") == str(args.data)]
    else:
        names = args.models
    unknown = sorted(set(names) - set(shipped))
    if unknown:
        raise ValueError(f"--models: expected names of shipped models {sorted(shipped)}, got {unknown}")
    return {n: WEIGHTS_DIR / n for n in names} | {str(c): c for c in args.checkpoint}


def _consistency(model, images, sigmas) -> dict:
    """sigma -> :func:`~scoredae.uncertainty.consistency_summary` over ``images`` (N, C, H, W), in
    batches, one Rademacher probe per image, fixed seeds."""
    import torch

    from ..uncertainty import consistency_summary, tweedie_consistency

    summaries = {}
    for s in sigmas:
        generator = torch.Generator(images.device).manual_seed(0)
        parts = [tweedie_consistency(model, batch, s, generator=generator) for batch in images.split(100)]
        summaries[s] = consistency_summary({key: torch.cat([p[key] for p in parts]) for key in parts[0]})
    return summaries


def _print_consistency(consistency: dict, images: str) -> None:
    """The Tweedie-consistency table: MSE, and SURE and sigma^2 tr(J)/d relative to it."""
    if not consistency:
        return
    width = max(len(name) for name in consistency)
    print(f"\nTweedie consistency on {images} (ratio +- standard error; trace/mse = 1 for the MMSE denoiser)")
    print(f"{'model':<{width}}  {'sigma':>6}  {'mse':>9}  {'sure/mse':>15}  {'trace/mse':>15}")
    for name, by_sigma in consistency.items():
        for s, c in by_sigma.items():
            print(f"{name:<{width}}  {s:>6g}  {c['mse']:>9.3g}  {c['sure/mse']:>8.3f} +- {c['sure/mse se']:.3f}"
                  f"  {c['trace/mse']:>8.3f} +- {c['trace/mse se']:.3f}")


def _write_metadata(folder: str, name: str, meta: dict, cells: dict, description: str,
                    consistency: dict | None = None) -> None:
    """``folder/name.json``: ``meta`` with the mean PSNR and SSIM per sigma measured here, and the
    Tweedie consistency when measured."""
    from .._checks import atomic_write

    meta["psnr"] = {str(s): round(m["psnr"], 3) for s, m in cells.items()}
    meta["ssim"] = {str(s): round(m["ssim"], 4) for s, m in cells.items()}
    meta["eval"] = description
    if consistency:
        meta["consistency"] = {str(s): {k: float(f"{v:.4g}") for k, v in c.items() if k not in ("sure", "trace")}
                               for s, c in consistency.items()}
    text = json.dumps(meta, indent=2, sort_keys=True)
    atomic_write(Path(folder) / f"{name}.json", lambda p, t=text: Path(p).write_text(t))


def _pictures(args: argparse.Namespace, stems: dict, device) -> int:
    """The per-picture PSNR/SSIM table on the test pictures of ``args.data``."""
    import deepinv
    import torch
    from tqdm.auto import tqdm

    from ..data.images import center_crops, evaluation_side, load_images
    from ..eval.denoising import picture_metrics
    from ..nets.checkpoints import load_checkpoint
    from ..nets.registry import constructors, list_pretrained

    sigmas = args.sigmas or [0.05, 0.1, 0.2]
    if not stems and not args.bm3d:
        raise ValueError(f"no model to evaluate on {args.data}: give --models, --checkpoint or --bm3d")
    loaded = {name: load_checkpoint(stem, constructors(), device=device) for name, stem in stems.items()}
    channels = {model.config.channels for model, _ in loaded.values()} or {3}
    if len(channels) > 1:
        raise ValueError(f"the models read different numbers of channels {sorted(channels)}; evaluate them apart")
    images, files = load_images(args.data, "test", channels.pop())
    pictures = [x.to(device, torch.float32).div(255) for x in images]
    denoisers = {"noisy input": (None, sigmas)}
    for name, (model, _) in loaded.items():
        denoisers[name] = (model, sigmas if model.noise_conditional else [s for s in sigmas if s == model.trained_sigma])
    if args.bm3d:
        try:
            import bm3d  # noqa: F401 - deepinv's BM3D needs it
        except ImportError as err:
            raise ValueError("--bm3d needs the bm3d package: pip install 'scoredae[bm3d]'") from err
        denoisers["BM3D"] = (deepinv.models.BM3D(), sigmas)
    jobs = [(name, s) for name, (_, levels) in denoisers.items() for s in levels]
    rows = {name: {} for name in denoisers}  # name -> sigma -> per-picture scores
    for name, s in tqdm(jobs, desc=f"eval on {len(pictures)} pictures", unit="run", disable=args.no_progress):
        rows[name][s] = picture_metrics(denoisers[name][0], pictures, s, tile=args.tile)
    means = {name: {s: {k: sum(p[k] for p in cells) / len(cells) for k in ("psnr", "ssim")}
                    for s, cells in by_sigma.items()} for name, by_sigma in rows.items()}
    consistency = {}
    if args.consistency:
        for name, (model, _) in loaded.items():
            crops = center_crops(images, evaluation_side(images, model.size_multiple)).to(device)
            consistency[name] = _consistency(model, crops, denoisers[name][1])
    shipped = list_pretrained()
    for name, (_, meta) in loaded.items():
        if args.write_metadata and name in shipped:
            _write_metadata(args.write_metadata, name, meta, means[name],
                            f"test pictures {', '.join(files)} of {args.data}, noise seed fixed (scoredae eval "
                            f"--data {args.data})", consistency.get(name))
    width = max(len(r) for r in rows)
    print(f"PSNR (dB) / SSIM on the test pictures of {args.data}, fixed noise seed")
    for s in sigmas:
        print(f"\nsigma = {s:g}")
        print(f"{'model':<{width}}  " + "  ".join(f"{f[:15]:>15}" for f in [*files, "mean"]))
        for name, by_sigma in rows.items():
            if s in by_sigma:
                cells = [*by_sigma[s], means[name][s]]
                print(f"{name:<{width}}  " + "  ".join(f"{_cell(c):>15}" for c in cells))
    _print_consistency(consistency, f"central crops of {', '.join(files)}")
    return 0
