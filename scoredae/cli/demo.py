"""``scoredae demo``: run the demo scripts of a source checkout and save their figures as PNGs
and their animations as GIFs."""

from __future__ import annotations

import argparse
import os
import runpy
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .args import positive_float, positive_int
from .output import writable_folder

HELP = "run the demos of a source checkout and write their figures as PNGs, their animations as GIFs"
CHECKOUT_DEMOS = Path(__file__).resolve().parents[2] / "demos"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="outputs", help="folder for the PNG figures (default: outputs)")
    p.add_argument("--demos", default=str(CHECKOUT_DEMOS),
                   help="folder of plot_*.py scripts, searched with its subfolders (default: demos/ of the "
                        "source checkout)")
    p.add_argument("--max-memory", type=positive_float, default=None, metavar="GB",
                   help="fail when a demo's peak resident memory exceeds GB (each demo runs in a process "
                        "of its own, whose peak is reported)")
    p.add_argument("--jobs", type=positive_int, default=1, metavar="N",
                   help="demos run at once, each on its share of the CPU threads (default: 1)")
    p.add_argument("names", nargs="*", help="demo names such as plot_posterior_1d (default: all)")


def run(args: argparse.Namespace) -> int:
    """Run each demo in a process of its own (``--jobs`` at once); report its output, time and peak
    resident memory in the demos' order."""
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

    def report(script: Path, code: int, peak: float | None, took: float) -> None:
        if code != 0:
            raise SystemExit(f"scoredae demo: {script.name} failed (exit status {code}); its traceback is above")
        print(f"  done in {took:.1f} s" + (f", peak memory {peak:.2f} GB" if peak is not None else ""), flush=True)
        if args.max_memory and peak is not None and peak > args.max_memory:
            raise SystemExit(f"scoredae demo: {script.name} peaked at {peak:.2f} GB of resident memory, above "
                             f"--max-memory {args.max_memory:g} GB")

    if args.jobs == 1:  # one at a time, its output as it comes
        for script in scripts:
            print(f"running {script.name} ...", flush=True)
            code, peak, took, _ = _run_in_child(script, out)
            report(script, code, peak, took)
        return 0
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    with ThreadPoolExecutor(args.jobs) as pool:  # each job waits on a child process of its own
        runs = [pool.submit(_run_in_child, script, out, threads) for script in scripts]
        for script, run in zip(scripts, runs):  # in the demos' order, each with what it printed
            code, peak, took, printed = run.result()
            print(f"ran {script.name}:\n{printed}", end="", flush=True)
            report(script, code, peak, took)
    return 0


def _run_in_child(script: Path, out: Path, threads: int | None = None) -> tuple[int, float | None, float, str]:
    """Run :func:`run_script` on ``script`` in a new Python process: its exit status, peak resident
    memory in GB (where the system reports it), seconds, and what it printed. With ``threads``,
    the child runs on that many CPU threads and its output is collected; without, it is shown live."""
    code = ("import sys; from scoredae.cli.demo import run_script, write_peak_memory; "
            "run_script(sys.argv[1], sys.argv[2]); write_peak_memory(sys.argv[3])")
    handle, name = tempfile.mkstemp(suffix=".peak")
    os.close(handle)
    peak_file = Path(name)
    command = [sys.executable, "-c", code, str(script), str(out), str(peak_file)]
    env = {**os.environ, "MPLBACKEND": "Agg", **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    start = time.perf_counter()
    pipe = subprocess.PIPE if threads else None
    child = subprocess.Popen(command, env=env, stdout=pipe, stderr=subprocess.STDOUT if threads else None, text=True)
    printed = child.stdout.read() if threads else ""
    if not hasattr(os, "wait4"):  # no resource usage of one child on this system
        return child.wait(), _read_peak(peak_file, None), time.perf_counter() - start, printed
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    # the child's own high-water mark where it wrote one: on Linux ru_maxrss also counts the pages of
    # this process at the fork that started the child
    peak = _read_peak(peak_file, usage.ru_maxrss * scale / 2**30)
    return child.returncode, peak, time.perf_counter() - start, printed


def write_peak_memory(path: str) -> None:
    """Write this process's peak resident memory in GB (Linux's ``VmHWM``) to ``path``; nothing where
    the system does not report it."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                Path(path).write_text(str(int(line.split()[1]) * 1024 / 2**30))


def _read_peak(path: Path, fallback: float | None) -> float | None:
    """The peak a child wrote to ``path`` (the file removed), else ``fallback``."""
    text = path.read_text().strip() if path.exists() else ""
    path.unlink(missing_ok=True)
    return float(text) if text else fallback


def run_script(script: str, out: str) -> None:
    """Run one demo script and save its figures under ``out`` as PNGs and its animations as GIFs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.animation import Animation

    script, out = Path(script), Path(out)
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
        print(f"  wrote {path}", flush=True)
    plt.close("all")
