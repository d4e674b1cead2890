"""EM for mixtures of factor analysers: it recovers a known mixture (held-out log-likelihood equal
to the truth's within its Monte Carlo error), never lowers the likelihood, refuses bad data, and
its fitted prior round-trips through disk; the shipped MNIST prior loads as an exact denoiser."""

import pytest
import torch

from scoredae.cli.main import main
from scoredae.data.mnist import mnist_available
from scoredae.mixtures import GaussianMixture, LowRank, MixtureDenoiser
from scoredae.mixtures.fit import fit_factor_analysers
from scoredae.mixtures.storage import load_mixture, save_mixture
from scoredae.nets import list_pretrained_mixtures, load_pretrained

F64 = torch.float64


def _truth():
    gen = torch.Generator().manual_seed(0)
    k, d, r = 3, 10, 2
    return GaussianMixture(torch.tensor([0.2, 0.3, 0.5], dtype=F64), 4 * torch.randn(k, d, generator=gen, dtype=F64),
                           LowRank(torch.randn(k, d, r, generator=gen, dtype=F64),
                                   0.1 + torch.rand(k, d, generator=gen, dtype=F64)))


def test_em_recovers_a_mixture_of_factor_analysers():
    truth, gen = _truth(), torch.Generator().manual_seed(1)
    x, held = truth.sample(20_000, generator=gen), truth.sample(20_000, generator=gen)
    result = fit_factor_analysers(x, 3, 2, iterations=300, tol=1e-7, generator=gen, progress=False)
    assert result.converged
    steps = torch.tensor(result.log_likelihood).diff()
    assert bool((steps > -1e-9).all())  # EM never lowers the likelihood
    truth_lp, fitted_lp = truth.log_prob(held), result.prior.log_prob(held)
    se = float((fitted_lp - truth_lp).std()) / len(held) ** 0.5
    assert abs(float(fitted_lp.mean() - truth_lp.mean())) < 4 * se + 2e-3  # the fit's excess parameters
    torch.testing.assert_close(result.prior.weights.sort().values, truth.weights, atol=0.02, rtol=0)


def test_em_refuses_bad_data_and_says_when_it_stops_early():
    x = _truth().sample(200, generator=torch.Generator().manual_seed(2))
    with pytest.raises(ValueError, match="data: expected finite"):
        fit_factor_analysers(torch.where(x > 3, float("nan"), x), 2, 2, progress=False)
    with pytest.raises(ValueError, match="data: 1 coordinates are constant.*dequantise"):
        fit_factor_analysers(torch.cat([x, torch.zeros(200, 1, dtype=F64)], 1), 2, 2, progress=False)
    with pytest.raises(ValueError, match="rank: expected fewer factors than the dimension d = 10"):
        fit_factor_analysers(x, 2, 10, progress=False)
    with pytest.raises(ValueError, match="n_components: 150 components need at least 300 points"):
        fit_factor_analysers(x, 150, 2, progress=False)
    with pytest.warns(RuntimeWarning, match="EM stopped after 2 iterations before converging"):
        fit_factor_analysers(x, 2, 2, iterations=2, generator=torch.Generator().manual_seed(0), progress=False)


def test_a_fitted_mixture_round_trips_through_disk(tmp_path):
    truth = _truth()
    save_mixture(tmp_path / "prior", truth, {"note": "test"}, dtype=F64)
    loaded, meta = load_mixture(tmp_path / "prior")
    assert meta["note"] == "test"
    x = truth.sample(5, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(loaded.log_prob(x), truth.log_prob(x), rtol=1e-12, atol=1e-12)
    with pytest.raises(TypeError, match="expected LowRank covariances"):
        save_mixture(tmp_path / "iso", GaussianMixture(truth.weights, truth.means, 1.0), {})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_mixture(tmp_path / "missing")


@pytest.mark.skipif("mnist_mixture" not in list_pretrained_mixtures(), reason="no shipped MNIST mixture")
def test_the_shipped_mnist_mixture_is_an_exact_denoiser_of_digits():
    denoiser = load_pretrained("mnist_mixture")
    assert isinstance(denoiser, MixtureDenoiser) and denoiser.mixture.dim == 784
    prior = denoiser.mixture
    x = prior.sample(4, generator=torch.Generator().manual_seed(4)).reshape(4, 1, 28, 28)
    noisy = x + 0.5 * torch.randn(x.shape, generator=torch.Generator().manual_seed(5), dtype=F64)
    out = denoiser(noisy, 0.5)
    assert out.shape == x.shape
    tweedie = noisy.flatten(1) + 0.25 * prior.score(noisy.flatten(1), 0.5)
    torch.testing.assert_close(out.flatten(1), tweedie, rtol=1e-10, atol=1e-10)


@pytest.mark.skipif("mnist_mixture" not in list_pretrained_mixtures(), reason="no shipped MNIST mixture")
def test_the_command_line_samples_the_shipped_mixture(tmp_path, capsys):
    out = tmp_path / "digits.pt"
    assert main(["sample", "--model", "mnist_mixture", "--method", "heun", "--n", "4", "--out", str(out),
                 "--no-progress"]) == 0
    images = torch.load(out)
    assert images.shape == (4, 1, 28, 28) and bool(images.isfinite().all())
    assert "19 denoiser calls from mnist_mixture" in capsys.readouterr().out


@pytest.mark.mnist
@pytest.mark.skipif(not mnist_available(), reason="the MNIST cache is absent: run `scoredae data fetch mnist`")
def test_fit_mixture_writes_the_best_fit_with_its_command(tmp_path, capsys):
    out = tmp_path / "prior"
    with pytest.warns(RuntimeWarning, match="before converging"):
        assert main(["fit-mixture", "--components", "2", "3", "--rank", "2", "--iterations", "2", "--holdout", "1000",
                     "--out", str(out), "--no-progress"]) == 0
    prior, meta = load_mixture(out)
    chosen = min(meta["selection"], key=lambda row: row["held_out_bits_per_dim"])
    assert prior.n_components == chosen["components"] == meta["components"] and meta["rank"] == 2
    assert meta["command"].startswith("scoredae fit-mixture --components 2 3")
    assert "test" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["fit-mixture", "--holdout", "0"])
