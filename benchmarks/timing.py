"""Timing shared by the benchmarks: contenders interleaved, best of several rounds."""

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
