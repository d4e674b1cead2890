"""Second-order Tweedie against exact answers: the Jacobian of the exact mixture denoiser is the
posterior covariance over sigma^2, its principal components are those of the exact covariance, the
probed variance and SURE are unbiased, and the trace identity holds for the MMSE denoiser only."""

import math

import pytest
import torch

from scoredae import GaussianMixture
from scoredae.mixtures import MixtureDenoiser
from scoredae.uncertainty import (
    consistency_summary,
    jacobian_vp,
    posterior_covariance,
    posterior_variance,
    principal_components,
    sure,
    tweedie_consistency,
)

F64 = torch.float64


def mixture(d: int, seed: int) -> GaussianMixture:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(3, d, d, generator=g, dtype=F64)
    covs = a @ a.transpose(1, 2) / d + 0.2 * torch.eye(d, dtype=F64)
    return GaussianMixture(torch.tensor([0.5, 0.3, 0.2], dtype=F64), 1.5 * torch.randn(3, d, generator=g, dtype=F64), covs)


class Shrunk:
    """A non-MMSE denoiser: the mixture's posterior mean shrunk by 20% towards 0."""

    def __init__(self, prior):
        self.exact = MixtureDenoiser(prior)

    def __call__(self, y, sigma):
        return 0.8 * self.exact(y, sigma)


@pytest.mark.parametrize("d", [2, 8])
def test_sigma2_jacobian_is_the_exact_posterior_covariance(d):
    prior = mixture(d, seed=d)
    sigma = 0.7
    y = prior.noised(sigma).sample(6, generator=torch.Generator().manual_seed(1))
    cov = posterior_covariance(MixtureDenoiser(prior), y, sigma)
    assert torch.allclose(cov, prior.posterior(y, sigma).cov(), atol=1e-8, rtol=0)


def test_jacobian_vp_equals_autograd_on_a_small_network():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 5)).double()
    denoiser = lambda y, sigma: net(y) * (1 + sigma)
    y = torch.randn(3, 5, dtype=F64)
    v = torch.randn(2, 3, 5, dtype=F64)
    full = torch.autograd.functional.jacobian(lambda z: denoiser(z, 0.3), y)  # (3, 5, 3, 5)
    expected = torch.einsum("bicj,kcj->kbi", full, v)
    assert torch.allclose(jacobian_vp(denoiser, y, 0.3, v), expected, atol=1e-12)
    assert torch.allclose(jacobian_vp(denoiser, y, 0.3, v[0]), expected[0], atol=1e-12)


def test_jacobian_vp_goes_through_attention():
    """The fused attention kernels have no forward-mode derivative; the JVP of a transformer still
    equals autograd's reverse-mode Jacobian."""
    from scoredae.nets import PatchTransformer

    torch.manual_seed(0)
    net = PatchTransformer(sigma=0.5, patch_size=4, d_model=16, depth=1, heads=2).double().eval()
    y = torch.rand(1, 1, 8, 8, dtype=F64)
    v = torch.randn(1, 1, 8, 8, dtype=F64)
    full = torch.autograd.functional.jacobian(lambda z: net(z, 0.5), y).reshape(64, 64)
    assert torch.allclose(jacobian_vp(net, y, 0.5, v).reshape(64), full @ v.reshape(64), atol=1e-10)
    assert torch.backends.mha.get_fastpath_enabled()  # the transformer layers' fast path is restored


def subspace_angle(a: torch.Tensor, b: torch.Tensor) -> float:
    """The largest principal angle between the column spaces of orthonormal a and b (d, k)."""
    s = torch.linalg.svdvals(a.T @ b).clamp(max=1.0)
    return float(torch.acos(s.min()))


def test_principal_components_match_eigh_of_the_exact_covariance():
    prior = mixture(8, seed=3)
    sigma = 0.8
    y = prior.noised(sigma).sample(3, generator=torch.Generator().manual_seed(2))
    values, vectors = principal_components(MixtureDenoiser(prior), y, sigma, k=3, n_iter=200,
                                           generator=torch.Generator().manual_seed(0))
    exact_values, exact_vectors = torch.linalg.eigh(prior.posterior(y, sigma).cov())
    exact_values, exact_vectors = exact_values.flip(-1)[:, :3], exact_vectors.flip(-1)[:, :, :3]
    assert torch.allclose(values, exact_values, rtol=1e-6, atol=0)
    for b in range(3):
        assert subspace_angle(vectors[b].T, exact_vectors[b]) < 1e-6
    assert torch.allclose(vectors[0] @ vectors[0].T, torch.eye(3, dtype=F64), atol=1e-10)


def test_posterior_variance_matches_the_exact_diagonal_within_its_error():
    prior = mixture(8, seed=4)
    sigma = 0.6
    y = prior.noised(sigma).sample(4, generator=torch.Generator().manual_seed(5))
    variance, error = posterior_variance(MixtureDenoiser(prior), y, sigma, n_probes=400,
                                         generator=torch.Generator().manual_seed(6))
    exact = torch.diagonal(prior.posterior(y, sigma).cov(), dim1=1, dim2=2)
    z = (variance - exact) / error
    assert float(z.abs().max()) < 4.0  # 32 entries: |z| < 4 fails by chance with probability 0.002
    assert float(error.max()) < 0.2 * float(exact.mean())  # the error is small enough to mean something


def test_sure_is_unbiased_for_a_non_mmse_denoiser():
    prior = mixture(2, seed=7)
    sigma = 0.5
    g = torch.Generator().manual_seed(8)
    x = prior.sample(4000, generator=g)
    y = x + sigma * torch.randn(x.shape, generator=g, dtype=F64)
    shrunk = Shrunk(prior)
    estimate = sure(shrunk, y, sigma, n_probes=None)  # exact trace: only the noise varies
    true = (shrunk(y, sigma) - x).square().mean(1)
    difference = estimate - true
    assert abs(float(difference.mean())) < 3 * float(difference.std()) / math.sqrt(len(x))


def test_the_trace_identity_holds_for_the_mmse_denoiser_only():
    """E[sigma^2 tr J / d] = E[mse] for the exact posterior mean: the ratio is 1 within 3 of its
    standard errors; the shrunk denoiser's is off by many (and a wrong power of sigma would be too)."""
    prior = mixture(2, seed=7)
    sigma = 0.5
    x = prior.sample(4000, generator=torch.Generator().manual_seed(9))

    def ratio(denoiser) -> tuple[float, float]:
        c = tweedie_consistency(denoiser, x, sigma, n_probes=None, generator=torch.Generator().manual_seed(10))
        summary = consistency_summary(c)
        assert summary["trace/mse"] == pytest.approx(summary["trace"] / summary["mse"])
        return summary["trace/mse"], summary["trace/mse se"]

    r, se = ratio(MixtureDenoiser(prior))
    assert abs(r - 1) < 3 * se
    r, se = ratio(Shrunk(prior))
    assert abs(r - 1) > 10 * se


@pytest.mark.parametrize("call, message", [
    (lambda p, y: principal_components(MixtureDenoiser(p), y, 0.5, k=3), "k: expected 1 <= k <= d = 2"),
    (lambda p, y: principal_components(MixtureDenoiser(p), y, 0.5, k=1, n_iter=0), "n_iter"),
    (lambda p, y: posterior_covariance(MixtureDenoiser(p), y, -0.5), "sigma"),
    (lambda p, y: posterior_covariance(lambda z, s: torch.from_numpy(z.numpy().copy()), y, 0.5), "cannot be differentiated"),
])
def test_bad_arguments_are_refused(call, message):
    prior = mixture(2, seed=1)
    with pytest.raises(ValueError, match=message):
        call(prior, torch.zeros(1, 2, dtype=F64))


def test_uncertainty_command_draws_the_figure(tmp_path, monkeypatch, capsys):
    from scoredae.cli import main
    from scoredae.data import mnist
    from scoredae.nets import UNet
    from scoredae.nets.checkpoints import as_json, save_checkpoint

    monkeypatch.setattr(mnist, "load_mnist", lambda split: (torch.rand(3, 1, 28, 28), None))
    torch.manual_seed(0)
    model = UNet(width=4, sigma=0.5)
    save_checkpoint(tmp_path / "fixed", model, {"model": "UNet", "config": as_json(model.config)})
    out = tmp_path / "u.png"
    assert main(["uncertainty", "--model", str(tmp_path / "fixed"), "--index", "2", "--k", "2", "--n-iter", "2",
                 "--probes", "2", "--out", str(out)]) == 0
    assert out.stat().st_size > 0 and "top-2 posterior variances" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="trained at sigma = 0.5 only"):
        main(["uncertainty", "--model", str(tmp_path / "fixed"), "--sigma", "0.3", "--out", str(out)])
    with pytest.raises(SystemExit, match="--index"):
        main(["uncertainty", "--model", str(tmp_path / "fixed"), "--index", "5", "--out", str(out)])
