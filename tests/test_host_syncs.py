"""No device-to-host synchronisation in the score path: 20 more sampler steps cost only the loop's
own periodic divergence checks (one every 10 steps).

A synchronisation is any read of a tensor's value by the host: ``bool(t)``, ``float(t)``,
``t.item()``, ``t.tolist()``, ``torch.allclose``, ``torch.equal``... The test counts every such call
while the sampler runs (on the CPU they are cheap, on a GPU each stalls the pipeline).
"""

import pytest
import torch

from scoredae import TweedieScore
from scoredae.nets import MODELS
from scoredae.sampling import annealed_langevin, ula

TENSOR_READS = ("__bool__", "__float__", "__int__", "__index__", "item", "tolist")
TORCH_READS = ("allclose", "equal", "is_nonzero")


@pytest.fixture
def count_host_reads(monkeypatch):
    calls = []

    def counted(owner, name):
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            calls.append(name)
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapper)

    for name in TENSOR_READS:
        counted(torch.Tensor, name)
    for name in TORCH_READS:
        counted(torch, name)
    return calls


def loop_checks(n_steps: int, every: int = 10) -> int:
    """The loop's own reads: one divergence check every ``every`` steps and one at the end."""
    return len({t for t in range(1, n_steps + 1) if t % every == 0 or t == n_steps})


def reads_per_run(calls, run, n_steps: int) -> int:
    calls.clear()
    run(n_steps)
    return len(calls)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_ula_step_with_a_tweedie_score_reads_nothing_back(name, count_host_reads):
    torch.manual_seed(0)
    model = MODELS[name](sigma_range=(0.01, 1.0)).eval()
    score = TweedieScore(model)
    x0 = torch.rand(2, 1, 28, 28)
    sigma = torch.full((2,), 0.3)  # a per-chain tensor sigma: nothing about it may be read back
    reads = {n: reads_per_run(count_host_reads, lambda n: ula(lambda x: score(x, sigma), x0, 1e-4, n), n)
             for n in (20, 40)}
    assert reads[40] - reads[20] == loop_checks(40) - loop_checks(20) == 2, reads


def test_annealed_langevin_with_float_levels_reads_nothing_back(count_host_reads):
    torch.manual_seed(0)
    score = TweedieScore(MODELS["unet"](width=4, sigma_range=(0.01, 1.0)).eval())
    x0 = torch.rand(2, 1, 28, 28)
    reads = {n: reads_per_run(count_host_reads, lambda n: annealed_langevin(score, x0, [1.0, 0.5], n // 2, 1e-5), n)
             for n in (20, 40)}
    assert reads[40] - reads[20] == loop_checks(40) - loop_checks(20) == 2, reads
