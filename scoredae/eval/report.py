"""The tables of ``scoredae eval``: every model's PSNR / SSIM per noise level on MNIST or on
held-out pictures, its Tweedie consistency, and the metadata files they update.

The command line prints what these functions measure; a Python user gets the same numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .._checks import atomic_write
from ..data.images import center_crops, evaluation_side, load_images
from ..data.mnist import load_mnist
from ..nets.checkpoints import load_checkpoint
from ..nets.registry import WEIGHTS_DIR, constructors, list_pretrained
from .denoising import denoising_metrics, empirical_mmse, picture_metrics

#: the default evaluation levels of each kind of data, for training and evaluation alike
EVAL_SIGMAS = {"mnist": (0.1, 0.25, 0.5), "pictures": (0.05, 0.1, 0.2)}


def eval_sigmas(data: str) -> tuple[float, ...]:
    """The default evaluation levels of ``data`` ("mnist", or photographs: "images" or a folder)."""
    return EVAL_SIGMAS["mnist" if str(data) == "mnist" else "pictures"]


def shipped_stems(data: str, names: list[str] | None = None) -> dict[str, Path]:
    """Name -> checkpoint stem of the shipped models trained on ``data`` (or of ``names``)."""
    shipped = list_pretrained()
    if names is None:
        names = [n for n, meta in shipped.items() if meta.get("data", {}).get("dataset", "mnist") == str(data)]
    unknown = sorted(set(names) - set(shipped))
    if unknown:
        raise ValueError(f"--models: expected names of shipped models {sorted(shipped)}, got {unknown}")
    return {n: WEIGHTS_DIR / n for n in names}


def _levels(model, sigmas) -> list[float]:
    """The levels of ``sigmas`` a model serves: all for a noise-conditional one, its own otherwise."""
    return list(sigmas) if model.noise_conditional else [s for s in sigmas if s == model.trained_sigma]


def consistency_by_sigma(model, images: torch.Tensor, sigmas) -> dict:
    """sigma -> :func:`~scoredae.uncertainty.consistency_summary` over ``images`` (N, C, H, W), in
    batches, one Rademacher probe per image, fixed seeds."""
    from ..uncertainty import consistency_summary, tweedie_consistency

    summaries = {}
    for s in sigmas:
        generator = torch.Generator(images.device).manual_seed(0)
        parts = [tweedie_consistency(model, batch, s, generator=generator) for batch in images.split(100)]
        summaries[s] = consistency_summary({key: torch.cat([p[key] for p in parts]) for key in parts[0]})
    return summaries


def mnist_report(stems: dict, sigmas, *, images: int = 2000, mmse_images: int = 200, consistency: bool = False,
                 device="cpu", progress: bool = True) -> dict:
    """PSNR / SSIM on the first ``images`` MNIST test digits for the noisy input, each model of
    ``stems`` and (``mmse_images`` > 0) deepinv's exact empirical-prior MMSE on the first
    ``mmse_images``: ``{"rows": name -> sigma -> metrics, "consistency": name -> sigma -> summary,
    "metadata": name -> checkpoint metadata, "images": what was measured, "description": ...}``."""
    clean = load_mnist("test")[0][:images].to(device)
    rows = {"noisy input": {s: denoising_metrics(None, clean, s) for s in sigmas}}
    report = {"rows": rows, "consistency": {}, "metadata": {}, "images": f"the first {len(clean)} MNIST test images",
              "description": f"first {len(clean)} MNIST test images, noise seed fixed (scoredae eval)"}
    for name, stem in tqdm(stems.items(), desc=f"eval on {len(clean)} images", unit="model", disable=not progress):
        model, report["metadata"][name] = load_checkpoint(stem, constructors(), device=device)
        rows[name] = {s: denoising_metrics(model, clean, s) for s in _levels(model, sigmas)}
        if consistency:
            report["consistency"][name] = consistency_by_sigma(model, clean, _levels(model, sigmas))
    if mmse_images:
        mmse = empirical_mmse(load_mnist("train")[0].to(device))
        label = f"empirical MMSE (deepinv; first {min(mmse_images, len(clean))} images)"
        rows[label] = {s: denoising_metrics(mmse, clean[:mmse_images], s, batch_size=50) for s in sigmas}
    return report


def picture_report(data: str, stems: dict, sigmas, *, bm3d: bool = False, tile: int = 256, consistency: bool = False,
                   device="cpu", progress: bool = True) -> dict:
    """PSNR / SSIM per test picture of ``data`` for the noisy input, each model of ``stems`` and
    (``bm3d``) deepinv's BM3D: ``{"rows": name -> sigma -> per-picture metrics, "means": name ->
    sigma -> mean metrics, "files", "consistency", "metadata", "images", "description"}``; the
    consistency on the central evaluation crops."""
    import deepinv

    if not stems and not bm3d:
        raise ValueError(f"no model to evaluate on {data}: give --models, --checkpoint or --bm3d")
    loaded = {name: load_checkpoint(stem, constructors(), device=device) for name, stem in stems.items()}
    channels = {model.config.channels for model, _ in loaded.values()} or {3}
    if len(channels) > 1:
        raise ValueError(f"the models read different numbers of channels {sorted(channels)}; evaluate them apart")
    images, files = load_images(data, "test", channels.pop())
    pictures = [x.to(device, torch.float32).div(255) for x in images]
    denoisers = {"noisy input": (None, list(sigmas))}
    denoisers.update({name: (model, _levels(model, sigmas)) for name, (model, _) in loaded.items()})
    if bm3d:
        try:
            import bm3d as _
        except ImportError as err:
            raise ValueError("--bm3d needs the bm3d package: pip install 'scoredae[bm3d]'") from err
        denoisers["BM3D"] = (deepinv.models.BM3D(), list(sigmas))
    jobs = [(name, s) for name, (_, levels) in denoisers.items() for s in levels]
    rows = {name: {} for name in denoisers}  # name -> sigma -> per-picture scores
    for name, s in tqdm(jobs, desc=f"eval on {len(pictures)} pictures", unit="run", disable=not progress):
        rows[name][s] = picture_metrics(denoisers[name][0], pictures, s, tile=tile)
    means = {name: {s: {k: sum(p[k] for p in cells) / len(cells) for k in ("psnr", "ssim")}
                    for s, cells in by_sigma.items()} for name, by_sigma in rows.items()}
    report = {"rows": rows, "means": means, "files": files, "consistency": {},
              "images": f"central crops of {', '.join(files)}",
              "metadata": {name: meta for name, (_, meta) in loaded.items()},
              "description": f"test pictures {', '.join(files)} of {data}, noise seed fixed (scoredae eval --data {data})"}
    if consistency:
        for name, (model, _) in loaded.items():
            crops = center_crops(images, evaluation_side(images, model.size_multiple)).to(device)
            report["consistency"][name] = consistency_by_sigma(model, crops, denoisers[name][1])
    return report


def write_metadata(folder: str | Path, report: dict, cells_of: str = "rows") -> list[Path]:
    """``folder/NAME.json`` for every shipped model of ``report``: its metadata with the mean PSNR
    and SSIM per sigma measured (``report[cells_of]``) and the Tweedie consistency when measured."""
    shipped, written = list_pretrained(), []
    for name, meta in report["metadata"].items():
        if name not in shipped:
            continue
        cells = report[cells_of][name]
        meta = {**meta, "psnr": {str(s): round(m["psnr"], 3) for s, m in cells.items()},
                "ssim": {str(s): round(m["ssim"], 4) for s, m in cells.items()}, "eval": report["description"]}
        if name in report["consistency"]:
            meta["consistency"] = {str(s): {k: float(f"{v:.4g}") for k, v in c.items() if k not in ("sure", "trace")}
                                   for s, c in report["consistency"][name].items()}
        text = json.dumps(meta, indent=2, sort_keys=True)
        path = Path(folder) / f"{name}.json"
        atomic_write(path, lambda p, t=text: Path(p).write_text(t))
        written.append(path)
    return written
