r"""The posterior-sampler leaderboard: every sampler of :func:`~scoredae.eval.exact_posterior.benchmark_samplers`
(and any callable of the signature) on the exact mixture problems, at its own recommended setting
and at equal budgets of network evaluations per sample.

A budget counts what a sampler asks of the denoiser (:class:`~scoredae.eval.counting.CountingDenoiser`):
one per evaluation, two for an evaluation whose vector-Jacobian or Jacobian-vector product is taken.
A sampler meets a budget through its number of levels: :func:`levels_for_budget` finds the most
levels whose run costs no more than the budget.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from ..sampling import karras_sigmas
from .counting import CountingDenoiser
from .exact_posterior import SIGMA_MIN, MixtureProblem, evaluate, rounded

BUDGETS = (100, 1000)
SHIPPED = Path(__file__).with_name("posterior_leaderboard.json")
PUBLISHED_PROTOCOL = Path(__file__).with_name("posterior_published_protocol.json")
COLUMNS = ("sampler", "d_x", "d_y", "seed", "budget", "steps", "evaluations", "calls", "vjps", "jvps", "sw_ratio",
           "mode_tv", "coverage_min", "coverage_max", "evidence_error", "seconds")


def _zero_denoiser(x: torch.Tensor, sigma) -> torch.Tensor:
    return 0 * x


def evaluations_at(sampler: Callable, problem: MixtureProblem, steps: int) -> int:
    """The evaluations per sample of one run of ``sampler`` on ``steps`` EDM levels (two chains).
    A sampler asks for as many evaluations whatever the denoiser answers, so the run uses the zero
    denoiser, under which no chain diverges before the count is complete."""
    counted = CountingDenoiser(_zero_denoiser)
    gen = torch.Generator().manual_seed(0)
    x_T = problem.prior.noised(problem.sigma_max).sample(2, generator=gen)
    sampler(counted, problem.y, problem.A, problem.noise_sigma, x_T, karras_sigmas(SIGMA_MIN, problem.sigma_max, steps),
            generator=gen)
    return counted.evaluations


def levels_for_budget(sampler: Callable, problem: MixtureProblem, budget: int) -> int:
    """The most levels (2 to ``budget``) whose run costs at most ``budget`` evaluations per sample,
    by bisection on :func:`evaluations_at`; a ``ValueError`` naming the cost if two levels cost more."""
    cheapest = evaluations_at(sampler, problem, 2)
    if cheapest > budget:
        raise ValueError(f"budget: this sampler needs {cheapest} network evaluations per sample on two levels, "
                         f"more than the budget of {budget}; raise the budget or shorten its inner loops")
    low, high = 2, budget
    while low < high:
        mid = (low + high + 1) // 2
        if evaluations_at(sampler, problem, mid) <= budget:
            low = mid
        else:
            high = mid - 1
    return low


def leaderboard_rows(samplers: dict[str, Callable], problems: Iterable[tuple[int, int, int, MixtureProblem]],
                     budgets: Iterable[int] = BUDGETS, n: int = 1024, default_steps: int = 100,
                     progress: Callable[[dict], None] | None = None) -> list[dict]:
    """One row per sampler, problem (``(d_x, d_y, seed, problem)``) and budget: ``"default"`` (its own
    setting on ``default_steps`` levels) and each budget of network evaluations per sample. A sampler
    that cannot meet a budget gets a row saying why. ``progress(row)`` sees each row as it comes."""
    rows = []
    for d_x, d_y, seed, problem in problems:
        for name, sampler in samplers.items():
            for budget in ("default", *budgets):
                try:
                    steps = default_steps if budget == "default" else levels_for_budget(sampler, problem, budget)
                except ValueError as err:
                    row = {"sampler": name, "budget": budget, "unmet": str(err).split("; ")[0]}
                else:
                    row = evaluate(sampler, problem, n, steps, seed, name=name)
                    row["sw_ratio"] = row["sw"] / row["sw_floor"]
                row.update(d_x=d_x, d_y=d_y, seed=seed, budget=budget)
                rows.append(rounded(row))
                if progress is not None:
                    progress(rows[-1])
    return rows


def shipped_leaderboard(path: Path = SHIPPED) -> dict:
    """The leaderboard shipped with the package: ``command`` (what regenerates it), ``protocol``,
    ``torch``, ``threads`` and ``rows`` (:func:`leaderboard_rows`'s); ``path`` another record of the
    same command, such as ``PUBLISHED_PROTOCOL`` (DDRM, DPS and MCGdiff on 20 problems per cell,
    as MCGdiff's published run)."""
    return json.loads(Path(path).read_text())
