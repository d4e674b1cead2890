"""``scoredae sample``: Langevin sampling from a trained denoiser (MNIST or photographs), on any device.

Every draw is made on the device of the data; chain ``i`` draws from its own generator seeded by
``(seed, i)``, so sample ``i`` is the same whatever ``--n``. The methods, tasks and their defaults
are those of :mod:`scoredae.recipes.generation`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..recipes.names import (
    DEFAULT_METHOD,
    DEFAULT_MODEL,
    DEFAULT_STEPS,
    DIFFUSION_METHODS,
    DIFFUSION_POSTERIOR_METHODS,
    ODE_METHODS,
    TASKS,
)
from .args import non_negative_float, non_negative_int, positive_float, positive_int
from .output import writable_output

HELP = ("sample from a trained denoiser: digits by the diffusion-era ODE solvers or annealed Langevin, with or "
        "without labels; Langevin chains and posterior sampling for inverse problems (MNIST, or a photograph "
        "with a colour model)")
METHODS = ("langevin", "annealed", "posterior", *DIFFUSION_METHODS, *DIFFUSION_POSTERIOR_METHODS)
PHOTOGRAPH_PIXELS = (0.45, 0.25)  # the Gaussian fit of p_sigma_max's start for photographs: mean, std
# what --steps counts for each method: the keyword of its recipe
STEPS_KEYWORD = {"langevin": "n_steps", "annealed": "n_steps_each", "posterior": "n_steps",
                 **{m: "steps" for m in (*ODE_METHODS, *DIFFUSION_POSTERIOR_METHODS)}}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"a shipped model name (see `scoredae eval`) or a checkpoint path (default: {DEFAULT_MODEL}, "
                        f"the best shipped generative model)")
    p.add_argument("--diffusers", default=None, metavar="DIR",
                   help="a local diffusers model folder (unet/ and scheduler/, as a pipeline saves them; never a "
                        "download), sampled in place of --model; its data taken in [-1, 1] (needs the diffusers extra)")
    p.add_argument("--method", default=DEFAULT_METHOD, choices=METHODS,
                   help="langevin: ULA at a fixed-sigma model's level; annealed: generation with a "
                        "noise-conditional model; posterior: PnP-ULA for the --task; heun / "
                        "euler: EDM's probability-flow ODE (--churn for its stochastic version); dpm++2m, dpm++3m, "
                        "ipndm, unipc: multistep ODE solvers, one denoiser call a step; ks: Kadkhodaie-Simoncelli; "
                        "dps, pigdm, tmpd, ddrm, diffpir, ddnm, daps, pnp_dm, dpnp, red_diff, mgps, dcps: "
                        "posterior sampling for the --task with a diffusion prior; smc (the twisted diffusion "
                        "sampler), mcgdiff, fps: --n particles "
                        f"(default: {DEFAULT_METHOD})")
    p.add_argument("--nfe", type=positive_int, default=None, metavar="N",
                   help="the ODE solvers: N denoiser calls in all, whatever the method (guided: two a step)")
    p.add_argument("--label", type=_digit, default=None, metavar="K",
                   help="the ODE solvers and a class-conditional model: draw digits of class K (0-9)")
    p.add_argument("--guidance", type=non_negative_float, default=None, metavar="W",
                   help="with --label: classifier-free guidance weight W >= 0 (0: the conditional model; "
                        "more: surer digits, less diverse)")
    p.add_argument("--n", type=positive_int, default=16, help="samples (chains) to draw (default: 16)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--out", required=True, help="a .png image grid, or .pt / .npy raw samples (N, C, H, W)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, ...")
    p.add_argument("--steps", type=positive_int, default=None,
                   help="Langevin steps (annealed: per level; ODE solvers and posterior samplers with a "
                        "diffusion prior: levels); default: "
                        + ", ".join(f"{m} {n}" for m, n in DEFAULT_STEPS.items()))
    p.add_argument("--churn", type=non_negative_float, default=None,
                   help="heun, euler: EDM's S_churn >= 0 (default 0, the ODE)")
    p.add_argument("--step-size", type=positive_float, default=None,
                   help="ULA step (langevin, posterior) or eps of annealed Langevin (default 2e-5)")
    p.add_argument("--start", choices=("noisy", "noise"), default="noisy",
                   help="langevin: start from a noisy test digit (or --image) x + sigma n, or from pure noise")
    p.add_argument("--sigma", type=positive_float, default=None,
                   help="langevin: the level of p_sigma (default: a fixed-sigma model's own; required by a "
                        "noise-conditional model)")
    p.add_argument("--image", default=None, metavar="PNG",
                   help="langevin: start from this photograph (its central --crop pixels) instead of a digit; "
                        "the PNG shows it, the noisy start and each chain's Tweedie estimate D(x_T, sigma); "
                        "posterior methods: the clean image of the --task")
    p.add_argument("--crop", type=positive_int, default=128,
                   help="side of the central crop of --image (default 128)")
    p.add_argument("--task", choices=TASKS, default="denoise",
                   help="posterior methods: denoise (y = x + 0.3 n), inpaint (a 12 x 12 box of 28 missing, "
                        "sigma_y 0.05), super-resolution (2 x 2 block means, sigma_y 0.02), deblur (Gaussian "
                        "blur of width 1, sigma_y 0.02); default denoise")
    p.add_argument("--index", type=non_negative_int, default=0,
                   help="test digit used by langevin and posterior (0 to 9999)")
    p.add_argument("--quality", action="store_true",
                   help="print the classifier-based sample quality, next to that of as many real "
                        "training digits (the floor)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _digit(text: str) -> int:
    if text not in tuple("0123456789"):
        raise argparse.ArgumentTypeError(f"expected a digit class 0 to 9, got {text!r}")
    return int(text)


def _options(args: argparse.Namespace) -> dict:
    """The recipe keywords the user gave (the recipes hold the defaults)."""
    options = {"progress": not args.no_progress}
    ode = args.method in ODE_METHODS
    for flag, value, keyword in (("--nfe", args.nfe, "nfe"), ("--label", args.label, "class_labels"),
                                 ("--guidance", args.guidance, "guidance")):
        if value is not None:
            if not ode:
                raise ValueError(f"{flag}: only the ODE solvers ({', '.join(ODE_METHODS)}) "
                                 f"take it, not {args.method}")
            options[keyword] = value
    if args.guidance is not None and args.label is None:
        raise ValueError("--guidance: give the --label to guide towards")
    if args.nfe is not None and args.steps is not None:
        raise ValueError("--nfe, --steps: give the denoiser calls or the steps, not both")
    if args.steps is not None and args.method in STEPS_KEYWORD:
        options[STEPS_KEYWORD[args.method]] = args.steps
    if args.step_size is not None:
        options["eps" if args.method == "annealed" else "step_size"] = args.step_size
    if args.churn is not None:
        if args.method not in ("heun", "euler"):
            raise ValueError(f"--churn: only the heun and euler methods take it, not {args.method}")
        options["churn"] = args.churn
    return options


def _print_quality(samples, seed: int) -> None:
    """Sample quality against the test set, and the same numbers for real training digits."""
    from ..eval.sample_quality import quality_beside_real

    print(f"{'':<26}{'mean conf':>10}{'conf>=0.9':>10}{'entropy':>9}{'FID':>9}")
    for name, q in quality_beside_real(samples, seed).items():
        print(f"{f'{len(samples)} {name}':<26}{q['mean_confidence']:>10.3f}{q['confident_share']:>10.3f}"
              f"{q['class_entropy']:>9.3f}{q['fid']:>9.2f}")


def _save(images, out: Path, title: str, labels: list[str] | None = None) -> None:
    import numpy as np
    import torch

    from ..viz import image_grid

    if out.suffix == ".png":
        nrow = 4 if labels else None  # the labelled summary fills the first row
        image_grid(images.float().clamp(0, 1), title=title, labels=labels, nrow=nrow).savefig(
            out, dpi=120, bbox_inches="tight")
    elif out.suffix == ".pt":
        torch.save(images.cpu(), out)
    else:
        np.save(out, images.cpu().numpy())


def run(args: argparse.Namespace) -> int:
    """Draw samples with the recipe of ``--method`` (:mod:`scoredae.recipes.generation`)."""

    from .._checks import resolve_device
    from ..recipes import generation as ms
    from ..rng import RowGenerators
    from .models import load_model

    out = writable_output(args.out, (".png", ".pt", ".npy"))  # found out now, not after the sampling
    if args.image and args.method not in ("langevin", "posterior", *DIFFUSION_POSTERIOR_METHODS):
        raise ValueError("--image: only the langevin and posterior methods take a photograph")
    if args.method in ("posterior", *DIFFUSION_POSTERIOR_METHODS) and args.n < 2:
        raise ValueError(f"--n: posterior sampling reports the samples' spread and intervals, which need at least "
                         f"2 samples, got --n {args.n}")
    if args.quality and args.n < 2:
        raise ValueError(f"--quality: the Frechet distance needs at least 2 samples, got --n {args.n}")
    options = _options(args)
    device = resolve_device(args.device)
    if args.diffusers:
        from ..nets.external import load_diffusers

        model, args.model = load_diffusers(args.diffusers, device), args.diffusers
        if args.method in DIFFUSION_METHODS:
            options["shape"] = model.image_shape
    else:
        model = load_model(args.model, device)
    if args.label is not None and not getattr(model, "label_conditional", False):
        raise ValueError(f"--label: {args.model} is unconditional (trained without labels); drop --label or give "
                         f"a class-conditional model")
    chains = RowGenerators(args.seed, args.n, device)  # chain i draws from (seed, i) alone
    labels = None
    if args.method == "annealed":
        result = ms.annealed_generation(model, args.n, device=device, generator=chains, **options)
        images, what = result.samples, f"{args.n} annealed Langevin samples"
    elif args.method in DIFFUSION_METHODS:
        result = ms.diffusion_generation(model, args.n, method=args.method, device=device, generator=chains,
                                         **options)
        calls = (ms.denoiser_calls(args.method, result.n_steps, bool(args.guidance)) if args.method != "ks"
                 else result.n_steps)
        label = "" if args.label is None else f", digit {args.label}, guidance {args.guidance or 0:g}"
        images, what = result.samples, f"{args.n} samples, {args.method}, {calls} denoiser calls{label}"
    elif args.image and args.method == "langevin":
        images, what, labels, result = _photograph_chains(args, model, chains, device, options)
    elif args.method == "langevin":
        sigma = ms.sampling_level(model, args.sigma)
        x0 = ms.chain_starts(_test_digit(args.index, device), args.n, sigma, start=args.start, generator=chains)
        result = ms.langevin_at_level(model, x0, sigma=sigma, generator=chains, **options)
        images, what = result.samples, f"{args.n} ULA chains from {args.start}"
    else:
        images, what, labels, result = _posterior(args, model, chains, device, options, out)
    _save(images, out, what, labels)
    print(f"{what} from {args.model} ({args.method}, seed {args.seed}) -> {out}")
    if args.quality:
        _print_quality(result.samples, args.seed)
    return 0


def _posterior(args: argparse.Namespace, model, chains, device, options: dict, out: Path):
    """Posterior sampling for ``--task`` on a test digit or ``--image``; prints the PSNR of the
    samples' mean and the coverage of the clean pixels by their 90% intervals. Returns (grid or raw
    samples, title, labels, result)."""
    import torch

    from ..recipes import posterior as mp
    from ..rng import seeded

    x = _photograph(args, model, device) if args.image else _test_digit(args.index, device)
    y, op, noise_sigma = mp.observe(args.task, x, args.seed)
    shape = tuple(x.shape[1:])
    if args.method == "posterior":
        result = mp.posterior_sampling(model, y, noise_sigma=noise_sigma, forward=op, shape=shape, n_chains=args.n,
                                       generator=chains, **options)
    else:
        pixels = ({"data_mean": PHOTOGRAPH_PIXELS[0], "data_std": PHOTOGRAPH_PIXELS[1], "start": "observation"}
                  if args.image else {})
        generator = seeded(args.seed, device=device) if args.method in mp.PARTICLE_METHODS else chains  # one system
        result = mp.diffusion_posterior(model, y, noise_sigma=noise_sigma, forward=op, method=args.method, n=args.n,
                                        shape=shape, generator=generator, **pixels, **options)
    summary = mp.posterior_summary(result.samples, x)
    print(f"{args.method} on {args.task} ({mp.TASKS[args.task].description}): PSNR of the mean of {args.n} samples "
          f"{summary['psnr']:.2f} dB, clean pixels inside their 90% intervals {summary['coverage']:.3f}")
    what = f"{args.method}, {args.task}: truth, A^+ y, mean, std (scaled to its max), then {args.n} samples"
    if out.suffix != ".png":
        return result.samples, what, None, result
    std = summary["std"]
    images = torch.cat([x, op.pinv(y).reshape(x.shape), summary["mean"], std / std.max().clamp(min=1e-12),
                        result.samples])
    return images, what, ["truth", "A^+ y", "posterior mean", "posterior std"], result


def _photograph(args: argparse.Namespace, model, device):
    """The central ``--crop`` of ``--image`` in the model's channels, (1, C, s, s) on ``device``."""
    from ..data.images import center_crops, evaluation_side, read_image, to_channels

    picture = to_channels(read_image(args.image), model.config.channels)
    return center_crops([picture], evaluation_side([picture], model.size_multiple, args.crop)).to(device)


def _test_digit(index: int, device):
    """MNIST test digit ``index`` as (1, 1, 28, 28) on ``device``."""
    from ..data.mnist import load_mnist

    test = load_mnist("test")[0]
    if index >= len(test):
        raise ValueError(f"--index: expected a test digit in 0..{len(test) - 1}, got {index}")
    return test[index : index + 1].to(device)


def _photograph_chains(args: argparse.Namespace, model, chains, device, options: dict):
    """ULA at ``--sigma`` from the noisy central crop of ``--image``: (grid or raw samples, title,
    labels, result)."""
    import torch

    from ..recipes import generation as ms

    x = _photograph(args, model, device)  # (1, C, s, s)
    sigma = ms.sampling_level(model, args.sigma)
    x0 = ms.chain_starts(x, args.n, sigma, generator=chains)
    result = ms.langevin_at_level(model, x0, sigma=sigma, generator=chains, **options)
    if Path(args.out).suffix != ".png":
        return result.samples, f"{args.n} ULA chains at sigma = {sigma:g} from {args.image}", None, result
    with torch.no_grad():
        estimates = model(result.samples, sigma).clamp(0, 1)  # each chain's Tweedie estimate of the clean crop
    images = torch.cat([x, x0[:1].clamp(0, 1), estimates])
    return (images, f"ULA at sigma = {sigma:g} from {Path(args.image).name}: D(x_T) of {args.n} chains",
            ["clean", "noisy start"], result)
