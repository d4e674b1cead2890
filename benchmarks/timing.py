"""Timing shared by the benchmarks: contenders interleaved, best of several rounds; calls counted."""

import statistics
import time

import torch


def best_times(fns: dict, device: torch.device, repeats: int) -> dict:
    """Best wall time of each function over ``repeats`` rounds, the functions interleaved in each
    round so that background load hits them alike; CUDA work is synchronised around each call."""
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
    return {name: min(t) for name, t in times.items()}


def paired_ratio(fn, baseline, device: torch.device, repeats: int) -> tuple[float, float, float]:
    """The median over ``repeats`` rounds of the time of ``fn`` over that of ``baseline`` run right
    beside it (the order alternating), so that a slow spell of the machine hits both sides of a
    ratio; with the best time of each: ``(median ratio, best fn, best baseline)``."""
    rounds = []
    for round_ in range(repeats):
        pair = [("fn", fn), ("baseline", baseline)]
        rounds.append(best_times(dict(pair if round_ % 2 == 0 else pair[::-1]), device, 1))
    ratio = statistics.median(r["fn"] / r["baseline"] for r in rounds)
    return ratio, min(r["fn"] for r in rounds), min(r["baseline"] for r in rounds)


def counted_calls(run, model: torch.nn.Module):
    """``(run(), the calls of model's forward it made)``, counted by a forward hook."""
    count = [0]
    handle = model.register_forward_hook(lambda *_: count.__setitem__(0, count[0] + 1))
    try:
        return run(), count[0]
    finally:
        handle.remove()
