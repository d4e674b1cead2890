"""Every registered image denoiser: the sigma contract, any image shape, bad input; MLPDAE and UNet
specifics; the shipped weights and their quality floor on the real test split."""

import dataclasses
import json

import pytest
import torch

from scoredae.data import load_mnist, mnist_available
from scoredae.eval import evaluate_psnr
from scoredae.nets import MLPDAE, MODELS, UNet, list_pretrained, load_pretrained, model_class
from scoredae.nets.base import ImageDenoiser

RANGE = (0.01, 1.0)


def build(name, **level):
    torch.manual_seed(0)
    return MODELS[name](**(level or {"sigma_range": RANGE})).eval()


def images(batch=4, seed=1):
    return torch.rand(batch, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_per_image_sigma_equals_per_image_calls(name):
    model = build(name)
    x = images()
    sigma = torch.tensor([0.02, 0.1, 0.4, 0.9])
    with torch.no_grad():
        batched = model(x, sigma)
        single = torch.cat([model(x[i : i + 1], float(sigma[i])) for i in range(len(x))])
        constant = model(x, 0.3)
        as_vector = model(x, torch.full((4,), 0.3))
    torch.testing.assert_close(batched, single, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(constant, as_vector, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(batched[0], model(x[:1], 0.9)[0], atol=1e-4)  # the level is used


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("level", [{"sigma": 0.5}, {"sigma_range": RANGE}])
def test_shape_and_rebuild_from_json_config(name, level):
    model = build(name, **level)
    x = images(2)
    with torch.no_grad():
        out = model(x, 0.5)
        assert out.shape == x.shape and torch.isfinite(out).all()
        rebuilt = type(model)(**json.loads(json.dumps(dataclasses.asdict(model.config)))).eval()
        rebuilt.load_state_dict(model.state_dict())
        torch.testing.assert_close(rebuilt(x, 0.5), out, rtol=0, atol=0)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_fixed_sigma_model_runs_at_its_trained_sigma_whatever_sigma_it_is_given(name):
    model = build(name, sigma=0.5)
    assert isinstance(model, ImageDenoiser) and model.trained_sigma == 0.5
    x = images()
    with torch.no_grad():
        at_trained = model(x)
        for sigma in (0.1, 0.9, torch.tensor([0.02, 0.1, 0.4, 0.9])):
            torch.testing.assert_close(model(x, sigma), at_trained, rtol=0, atol=0)


SIZES = [(28, 28), (32, 48), (56, 56)]  # multiples of 8 and of 4: every architecture takes them


@pytest.mark.parametrize("name", sorted(set(MODELS) - {"mlp"}))
@pytest.mark.parametrize("channels", [1, 3])
def test_any_image_size_the_architecture_allows(name, channels):
    torch.manual_seed(0)
    model = MODELS[name](channels=channels, sigma_range=RANGE).eval()
    for size in SIZES:
        x = torch.rand(2, channels, *size, generator=torch.Generator().manual_seed(3))
        with torch.no_grad():
            out = model(x, torch.tensor([0.1, 0.5]))
            assert out.shape == x.shape and torch.isfinite(out).all(), size
            # each image is denoised on its own: the second image does not move the first
            torch.testing.assert_close(model(x[:1], 0.1), out[:1], rtol=1e-4, atol=1e-5)


def test_the_mlp_takes_its_configured_size_and_channels():
    model = MLPDAE(channels=3, image_size=(16, 24), sigma=0.5).eval()
    assert model(torch.rand(2, 3, 16, 24)).shape == (2, 3, 16, 24)
    with pytest.raises(ValueError, match="takes 16 x 24 images only, got 28 x 28"):
        model(torch.rand(2, 3, 28, 28))


REFUSED_SIZE = {"mlp": (32, 32), "conv": (30, 30), "unet": (30, 30), "hybrid": (30, 30), "transformer": (30, 30),
                "drunet": (6, 6), "resunet": (30, 30)}
ACCEPTED = {"mlp": "takes 28 x 28 images only", "drunet": "at least 8 x 8"}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_bad_input_is_refused_with_what_was_expected(name):
    model = build(name)
    x = images(2)
    with pytest.raises(ValueError, match=r"expected shape \(B, 1, H, W\), got \(2, 3, 28, 28\)"):
        model(torch.rand(2, 3, 28, 28), 0.5)
    with pytest.raises(ValueError, match=ACCEPTED.get(name, "multiples of 4, got 30 x 30")):
        model(torch.rand(2, 1, *REFUSED_SIZE[name]), 0.5)
    with pytest.raises(ValueError, match="sigma: expected a finite number > 0, got 0.0"):
        model(x, 0.0)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        model(x, torch.full((3,), 0.5))
    with pytest.raises(ValueError, match="sigma is required"):
        model(x)


def test_unknown_model_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"model: expected one of \[.*'mlp'.*'unet'.*\], got 'vit'"):
        model_class("vit")


def test_mlpdae_is_the_classic_784_128_64_10_autoencoder():
    model = MLPDAE(sigma=0.5)
    linear = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    sizes = [(m.in_features, m.out_features) for m in linear]
    assert sizes == [(784, 128), (128, 64), (64, 10), (10, 64), (64, 128), (128, 784)]
    out = model(images(3) * 4 - 2)
    assert 0 < out.min() and out.max() < 1  # Sigmoid output
    wider = MLPDAE(widths=(256,), latent=32, sigma_range=RANGE)
    assert wider.encoder[0].in_features == 2 * 784  # image and noise-level map


def test_unet_output_is_residual():
    # c_skip -> 1 and c_out -> 0 as sigma -> 0: D(y, sigma) -> y, whatever the weights
    model = UNet(width=8, sigma_range=RANGE).eval()
    y = images(2)
    with torch.no_grad(), pytest.warns(UserWarning, match="outside the range"):  # 1e-7 < 0.01
        assert (model(y, 1e-7) - y).abs().max() < 1e-5
    with torch.no_grad():
        assert (model(y, 0.5) - y).abs().max() > 1e-3
    assert UNet(width=8, sigma=0.5).enc1[0].in_channels == 1


def test_unet_log_noise_map_is_edm_c_noise():
    model = UNet(width=4, sigma_range=(0.002, 80.0), noise_map="log")
    s = torch.tensor([0.002, 80.0]).reshape(2, 1, 1, 1)
    level = model.condition(images(2), s)[:, 1]  # (2, 28, 28)
    torch.testing.assert_close(level[:, 0, 0], torch.log(s.reshape(2)) / 4)
    assert UNet(width=4, sigma_range=RANGE).condition(images(2), s)[:, 1, 0, 0].tolist() == s.reshape(2).tolist()
    with pytest.raises(ValueError, match="noise_map: expected 'sigma' or 'log', got 'linear'"):
        UNet(width=4, sigma_range=RANGE, noise_map="linear")


def test_list_and_load_pretrained():
    shipped = list_pretrained()
    assert {"mlp", "unet_ncsn"} <= set(shipped)
    for name, meta in shipped.items():
        assert {"model", "config", "psnr", "command"} <= set(meta)
        assert (meta["config"]["sigma"] is None) != (meta["config"]["sigma_range"] is None)
        model = load_pretrained(name)
        assert type(model).__name__ == meta["model"] and not model.training
    assert shipped["mlp"]["config"]["sigma"] == 0.5 and shipped["unet_ncsn"]["config"]["sigma_range"] == [0.01, 1.0]
    with pytest.raises(ValueError, match="expected one of the shipped models"):
        load_pretrained("no-such-model")


def test_sample_defaults_to_the_best_few_call_row_of_the_shipped_generation_records():
    """``scoredae sample`` with no ``--model`` and no ``--method``: the shipped model and ODE solver
    with the lowest classifier FID at 10 denoiser calls or fewer, unguided, in the measured records
    (few calls is where the solvers differ; at 20 they are within a few FID points of one another)."""
    from scoredae.cli.sample import DEFAULT_METHOD, DEFAULT_MODEL

    rows = [(r["fid"], name, r["method"]) for name, meta in list_pretrained().items()
            for r in meta.get("generation", {}).get("rows", [])
            if r["nfe"] <= 10 and r["guidance"] is None and not r.get("churn")]
    assert len({name for _, name, _ in rows}) >= 2  # a choice between models
    assert min(rows)[1:] == (DEFAULT_MODEL, DEFAULT_METHOD)


def mnist_models() -> dict:
    """The shipped models trained on MNIST digits."""
    return {n: m for n, m in list_pretrained().items() if m.get("data", {}).get("dataset", "mnist") == "mnist"}


needs_mnist = pytest.mark.skipif(not mnist_available(), reason="the MNIST cache is absent: run `scoredae data fetch mnist`")
FLOORS = {("mlp", 0.5): 17.5, ("unet_ncsn", 0.1): 30.0, ("unet_ncsn", 0.5): 21.5, ("unet_edm", 0.1): 30.5,
          ("unet_edm", 0.5): 21.0}


@pytest.fixture(scope="module")
def measured() -> dict:
    """PSNR and SSIM on the first 2,000 test digits, once, of the (model, sigma) pairs the floors name
    and of every model that denoises at sigma = 0.1."""
    from scoredae.eval import denoising_metrics

    clean = load_mnist("test", download=False)[0][:2000]
    pairs = set(FLOORS) | {(n, 0.1) for n, m in mnist_models().items() if m["config"]["sigma"] in (None, 0.1)}
    return {(name, sigma): denoising_metrics(load_pretrained(name), clean, sigma) for name, sigma in sorted(pairs)}


@pytest.mark.mnist
@needs_mnist
def test_shipped_weights_meet_their_quality_floor(measured):
    for pair, floor in FLOORS.items():
        assert measured[pair]["psnr"] >= floor, pair


@pytest.mark.mnist
@needs_mnist
def test_best_shipped_model_meets_the_floor_at_sigma_0_1(measured):
    assert max(m["psnr"] for (_, sigma), m in measured.items() if sigma == 0.1) >= 31.0


@pytest.mark.mnist
@needs_mnist
def test_the_measured_weights_give_the_numbers_of_their_metadata(measured):
    """The pairs measured above reproduce the PSNR / SSIM their JSON records (every pair of every
    model: the slow test below)."""
    shipped = mnist_models()
    for (name, sigma), got in measured.items():
        assert round(got["psnr"], 3) == pytest.approx(shipped[name]["psnr"][str(sigma)], abs=2e-3), (name, sigma)
        assert round(got["ssim"], 4) == pytest.approx(shipped[name]["ssim"][str(sigma)], abs=2e-4), (name, sigma)


@pytest.mark.mnist
@pytest.mark.slow
@needs_mnist
@pytest.mark.xfail(reason="not reached by the CPU-trained weights (best: resunet_cfg, 21.96 dB): train longer, best on a GPU",
                   strict=False)
def test_best_shipped_model_meets_the_target_at_sigma_0_5():
    """The best shipped model >= 22.0 dB at sigma 0.5."""
    clean = load_mnist("test", download=False)[0][:2000]
    models = [n for n, m in mnist_models().items() if m["config"]["sigma"] in (None, 0.5)]
    assert max(evaluate_psnr(load_pretrained(n), clean, 0.5) for n in models) >= 22.0


@pytest.mark.mnist
@needs_mnist
def test_eval_command_prints_models_next_to_noisy_input_and_mmse(capsys):
    from scoredae.cli import main

    assert main(["eval", "--images", "40", "--mmse-images", "8", "--models", "mlp", "--sigmas", "0.1", "0.5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    noisy = next(line for line in lines if line.startswith("noisy input"))
    assert float(noisy.split()[2]) == pytest.approx(20.0, abs=0.2)  # -10 log10(0.1^2), up to noise
    mlp = next(line for line in lines if line.startswith("mlp"))
    assert mlp.split()[1] == "-" and float(mlp.split()[2]) > 17.0  # fixed-sigma model: only at 0.5
    assert any(line.startswith("empirical MMSE (deepinv; first 8 images)") for line in lines)


def test_eval_writes_metadata_to_the_folder_it_is_given_not_into_the_package(tmp_path, monkeypatch):
    from scoredae.cli import main
    from scoredae.data import mnist
    from scoredae.nets.registry import WEIGHTS_DIR

    monkeypatch.setattr(mnist, "load_mnist", lambda split: (images(8), None))
    shipped = (WEIGHTS_DIR / "mlp.json").read_text()
    args = ["eval", "--images", "8", "--mmse-images", "0", "--models", "mlp", "--sigmas", "0.5"]
    assert main([*args, "--consistency", "--write-metadata", str(tmp_path / "meta")]) == 0
    written = json.loads((tmp_path / "meta" / "mlp.json").read_text())
    assert set(written["psnr"]) == {"0.5"} and written["model"] == "MLPDAE"
    assert set(written["consistency"]["0.5"]) == {"mse", "sure/mse", "sure/mse se", "trace/mse", "trace/mse se"}
    assert (WEIGHTS_DIR / "mlp.json").read_text() == shipped


def test_the_metadata_keeps_each_fact_once():
    for name, meta in list_pretrained().items():
        assert not set(meta) & set(meta["config"]), (name, sorted(set(meta) & set(meta["config"])))


@pytest.mark.mnist
@pytest.mark.slow
@needs_mnist
def test_shipped_weights_give_the_numbers_of_their_metadata():
    """Every shipped MNIST model, loaded with the preconditioning its config asks for, reproduces the
    PSNR / SSIM its JSON records (and the README prints) on the first 2,000 test digits."""
    from scoredae.eval import denoising_metrics

    clean = load_mnist("test", download=False)[0][:2000]
    for name, meta in mnist_models().items():
        model = load_pretrained(name)
        for sigma, psnr in meta["psnr"].items():
            got = denoising_metrics(model, clean, float(sigma))
            assert round(got["psnr"], 3) == pytest.approx(psnr, abs=2e-3), (name, sigma)
            assert round(got["ssim"], 4) == pytest.approx(meta["ssim"][sigma], abs=2e-4), (name, sigma)
