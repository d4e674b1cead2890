"""``scoredae demo``: run the demo scripts of a source checkout and save their figures as PNGs
and their animations as GIFs."""

from __future__ import annotations

import argparse
import runpy
import time
from pathlib import Path

from .output import writable_folder

HELP = "run the demos of a source checkout and write their figures as PNGs, their animations as GIFs"
CHECKOUT_DEMOS = Path(__file__).resolve().parents[2] / "demos"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="outputs", help="folder for the PNG figures (default: outputs)")
    p.add_argument("--demos", default=str(CHECKOUT_DEMOS),
                   help="folder of plot_*.py scripts, searched with its subfolders (default: demos/ of the "
                        "source checkout)")
    p.add_argument("names", nargs="*", help="demo names such as plot_posterior_1d (default: all)")


def run(args: argparse.Namespace) -> int:
    """Run each plot_*.py script; save every figure it leaves open as a PNG, or as a GIF when the
    script holds a matplotlib animation of that figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.animation import Animation

    scripts = sorted(Path(args.demos).rglob("plot_*.py"))  # section folders in the learner's order
    if not scripts:
        raise SystemExit(f"scoredae demo: no plot_*.py scripts in {args.demos}. The demos ship with the "
                         f"source checkout, not the installed package: run this command from a clone of the "
                         f"repository, or pass --demos DIR")
    if args.names:
        known = {s.stem: s for s in scripts}
        unknown = [n for n in args.names if n not in known]
        if unknown:
            raise SystemExit(f"unknown demo(s) {unknown}; available: {sorted(known)}")
        scripts = [known[n] for n in args.names]
    out = writable_folder(args.out)
    for script in scripts:
        start = time.perf_counter()
        print(f"running {script.name} ...", flush=True)
        names = runpy.run_path(str(script), run_name="__main__")
        animations = {a._fig: a for a in names.values() if isinstance(a, Animation)}  # figure -> animation
        for i, num in enumerate(plt.get_fignums(), start=1):
            figure = plt.figure(num)
            if figure in animations:
                path = out / f"{script.stem}_{i}.gif"
                animations[figure].save(path, writer="pillow", dpi=80)
            else:
                path = out / f"{script.stem}_{i}.png"
                figure.savefig(path, dpi=110, bbox_inches="tight")
            print(f"  wrote {path}")
        plt.close("all")
        print(f"  done in {time.perf_counter() - start:.1f} s", flush=True)
    return 0
