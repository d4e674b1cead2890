r"""Choosing the EMA after training: the post-hoc EMAs of several relative widths (EDM2's power-function
profiles rebuilt from a run's snapshots, :mod:`scoredae.train.posthoc`) against the run's own EMA
(``TrainConfig.ema``, the baseline), each by the quality of the digits it generates from the same
initial noise: the classifier's confident share and FID, and the FID as a ratio to the baseline's.

    python benchmarks/bench_posthoc_ema.py --run ~/.cache/scoredae/runs/resunet_cfg
        [--stds 0.03 0.05 0.1 0.15 0.2] [--n 500] [--method dpm++2m] [--nfe 20] [--guidance W]
        [--out DIR]

Each reconstruction is written as a checkpoint ``DIR/phema-STD`` (default: the run's folder,
``posthoc/``), so the one chosen can be shipped or evaluated further with ``--model DIR/phema-STD``.
With ``--guidance W`` each row also samples with classifier-free guidance of weight W, sample i
asking for digit i mod 10, and reports the share the classifier gives the requested label.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from bench_generation import quality

from scoredae.cli.models import load_model
from scoredae.data import load_mnist
from scoredae.eval.sample_quality import accuracy
from scoredae.nets.registry import load_classifier
from scoredae.recipes.generation import ODE_SOLVERS, diffusion_generation
from scoredae.train.posthoc import save_posthoc_ema, snapshots


def evaluate(model, args, classifier, test) -> dict:
    """Unconditional (and, with ``--guidance``, guided) quality of ``args.n`` samples of ``model``."""
    def draw(**options):
        return diffusion_generation(model, args.n, method=args.method, nfe=args.nfe,
                                    generator=torch.Generator().manual_seed(args.seed), **options).samples.clamp(0, 1)

    row = quality(draw(), classifier, test)
    if args.guidance is not None:
        labels = torch.arange(args.n) % 10
        guided = draw(class_labels=labels, guidance=args.guidance)
        row |= {f"guided {k}": v for k, v in quality(guided, classifier, test).items()}
        row["label agreement"] = accuracy(classifier, guided, labels)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="a training run's folder, trained with --phema and --snapshot-every")
    p.add_argument("--stds", type=float, nargs="+", default=[0.03, 0.05, 0.1, 0.15, 0.2],
                   help="relative widths of the post-hoc EMAs (default 0.03 0.05 0.1 0.15 0.2)")
    p.add_argument("--step", type=int, default=None, help="the step to read them at (default: the last snapshot's)")
    p.add_argument("--n", type=int, default=500, help="samples per row (default 500)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial noise, the same for every row")
    p.add_argument("--method", default="dpm++2m", choices=ODE_SOLVERS, help="the ODE solver (default dpm++2m)")
    p.add_argument("--nfe", type=int, default=20, help="denoiser calls per sample (default 20)")
    p.add_argument("--guidance", type=float, default=None, metavar="W", help="also sample guided with weight W")
    p.add_argument("--out", default=None, metavar="DIR", help="where the reconstructions go (default RUN/posthoc)")
    args = p.parse_args()
    run = Path(args.run).expanduser()
    step = snapshots(run)[-1]["step"] if args.step is None else args.step
    out = Path(args.out) if args.out else run / "posthoc"
    classifier, test = load_classifier(), load_mnist("test")[0]
    print(f"{run}, step {step}: {args.n} samples a row, {args.method} at {args.nfe} calls, "
          f"{torch.get_num_threads()} threads")
    baseline = f"run's EMA at step {json.loads((run / 'model.json').read_text())['step']}"
    rows = {baseline: evaluate(load_model(str(run / "model"), "cpu"), args, classifier, test)}
    for std in args.stds:
        stem = out / f"phema-{std:.3f}-{step:07d}"
        save_posthoc_ema(run, std, stem, step)
        rows[f"post-hoc, width {std:g}"] = evaluate(load_model(str(stem), "cpu"), args, classifier, test)
        print(f"  wrote {stem}", flush=True)
    columns = [*rows[baseline], "FID / baseline"]
    for row in rows.values():
        row["FID / baseline"] = row["fid"] / rows[baseline]["fid"]
    print(f"{'EMA':<28}" + "".join(f"{c:>{max(len(c) + 2, 10)}}" for c in columns))
    for name, row in rows.items():
        print(f"{name:<28}" + "".join(f"{row[c]:>{max(len(c) + 2, 10)}.3f}" for c in columns))


if __name__ == "__main__":
    main()
