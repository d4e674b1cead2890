"""Jacobian products of a denoiser: (a) one forward-mode JVP (``scoredae.uncertainty.jacobian_vp``)
against one forward pass of the same model and batch (target: at most 3x); (b) against the two
other routes to J v: a central finite difference (two forward passes, approximate) and the
double-backward trick (reverse mode twice: :math:`J v = \\nabla_u \\langle J^\\top u, v \\rangle`);
(c) the time of k = 4 principal components with 50 subspace iterations on one MNIST image.
The shipped ``unet`` at sigma 0.5 on MNIST test digits; printed as ratios in one run.

    python benchmarks/bench_uncertainty.py [--model unet] [--batch 64] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import torch
from timing import best_times

from scoredae.data import load_mnist
from scoredae.nets import load_pretrained
from scoredae.uncertainty import jacobian_vp, principal_components

SIGMA = 0.5


def finite_difference_jvp(model, y: torch.Tensor, v: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """(D(y + eps v) - D(y - eps v)) / (2 eps): two forward passes, error O(eps^2) plus rounding."""
    with torch.no_grad():
        return (model(y + eps * v, SIGMA) - model(y - eps * v, SIGMA)) / (2 * eps)


def double_backward_jvp(model, y: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """J v as the gradient in u of <J^T u, v>: a backward pass with a graph, then another."""
    y = y.detach().requires_grad_(True)
    out = model(y, SIGMA)
    u = torch.zeros_like(out, requires_grad=True)
    (vjp,) = torch.autograd.grad(out, y, u, create_graph=True)  # J^T u, linear in u
    (jv,) = torch.autograd.grad(vjp, u, v)
    return jv


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="unet")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = load_pretrained(args.model, device=device)
    g = torch.Generator().manual_seed(0)
    x = load_mnist("test")[0][: args.batch]
    y = (x + SIGMA * torch.randn(x.shape, generator=g)).to(device)
    v = torch.randn(y.shape, generator=g).to(device)

    exact = jacobian_vp(model, y, SIGMA, v)
    for name, other in (("finite difference", finite_difference_jvp(model, y, v)),
                        ("double backward", double_backward_jvp(model, y, v))):
        print(f"relative difference to the forward-mode JVP, {name}: {float((other - exact).norm() / exact.norm()):.1e}")

    def forward():
        with torch.no_grad():
            model(y, SIGMA)

    times = best_times({
        "forward pass": forward,
        "jacobian_vp (forward mode)": lambda: jacobian_vp(model, y, SIGMA, v),
        "finite difference (2 forwards)": lambda: finite_difference_jvp(model, y, v),
        "double backward": lambda: double_backward_jvp(model, y, v),
    }, device, args.repeats)
    print(f"{args.model}, batch {args.batch} of 28 x 28, sigma {SIGMA}, {device}, best of {args.repeats}")
    for name, seconds in times.items():
        print(f"  {name:<34}{seconds * 1e3:9.1f} ms")
    jvp = times["jacobian_vp (forward mode)"]
    print(f"(a) JVP / forward pass:       {jvp / times['forward pass']:.2f} (target <= 3)")
    print(f"(b) JVP / finite difference:  {jvp / times['finite difference (2 forwards)']:.2f}")
    print(f"    JVP / double backward:    {jvp / times['double backward']:.2f}")

    start = time.perf_counter()
    values, _ = principal_components(model, y[:1], SIGMA, k=4, n_iter=50, generator=torch.Generator().manual_seed(1))
    if device.type == "cuda":
        torch.cuda.synchronize()
    print(f"(c) k = 4 principal components, 50 iterations, one image: {time.perf_counter() - start:.2f} s "
          f"(variances {[round(float(s), 3) for s in values[0]]})")


if __name__ == "__main__":
    main()
