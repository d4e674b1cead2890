"""``scoredae eval``: the PSNR/SSIM table of the shipped denoisers (and of any checkpoint), on MNIST
or on held-out photographs."""

from __future__ import annotations

import argparse

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
                   help="noise levels (default: 0.1 0.25 0.5 on MNIST, 0.05 0.1 0.2 on photographs; "
                        "scoredae.eval.report.EVAL_SIGMAS)")
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
    """Print PSNR / SSIM per sigma for the noisy input, every model and the empirical MMSE (MNIST),
    or per test picture (photographs); :mod:`scoredae.eval.report` measures."""
    import torch

    from .._checks import resolve_device
    from ..eval import report as reports

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    stems = reports.shipped_stems(args.data, args.models) | {str(c): c for c in args.checkpoint}
    sigmas = args.sigmas or reports.eval_sigmas(args.data)
    if args.data == "mnist":
        report = reports.mnist_report(stems, sigmas, images=args.images, mmse_images=args.mmse_images,
                                      consistency=args.consistency, device=device, progress=not args.no_progress)
        rows = report["rows"]
        width = max(len(r) for r in rows)
        print(f"PSNR (dB) / SSIM on {report['images']}, fixed noise seed")
        print(f"{'model':<{width}}  " + "  ".join(f"{'sigma=' + str(s):>15}" for s in sigmas))
        for name, cells in rows.items():
            print(f"{name:<{width}}  " + "  ".join(f"{_cell(cells.get(s)):>15}" for s in sigmas))
    else:
        report = reports.picture_report(args.data, stems, sigmas, bm3d=args.bm3d, tile=args.tile,
                                        consistency=args.consistency, device=device, progress=not args.no_progress)
        _print_pictures(report, args.data, sigmas)
    _print_consistency(report["consistency"], report["images"])
    if args.write_metadata:
        reports.write_metadata(args.write_metadata, report, "rows" if args.data == "mnist" else "means")
    return 0


def _print_pictures(report: dict, data: str, sigmas) -> None:
    """The per-picture table, one block per noise level, with the mean over the pictures."""
    rows, means, files = report["rows"], report["means"], report["files"]
    width = max(len(r) for r in rows)
    print(f"PSNR (dB) / SSIM on the test pictures of {data}, fixed noise seed")
    for s in sigmas:
        print(f"\nsigma = {s:g}")
        print(f"{'model':<{width}}  " + "  ".join(f"{f[:15]:>15}" for f in [*files, "mean"]))
        for name, by_sigma in rows.items():
            if s in by_sigma:
                cells = [*by_sigma[s], means[name][s]]
                print(f"{name:<{width}}  " + "  ".join(f"{_cell(c):>15}" for c in cells))


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
