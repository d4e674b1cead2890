"""Denoising photographs of any size: padding and tiles, the per-picture evaluation, the `denoise`
and `eval --data` commands, and the bad inputs they refuse."""

import numpy as np
import pytest
import torch
from PIL import Image

from scoredae.cli import main
from scoredae.data.images import (
    center_crops,
    images_available,
    load_images,
    read_image,
    write_image,
)
from scoredae.eval.denoising import picture_metrics
from scoredae.nets import UNet, list_pretrained, load_pretrained
from scoredae.nets.checkpoints import as_json, save_checkpoint
from scoredae.nets.tiling import denoise_image

COLOUR_FLOOR_DB = 27.0  # every shipped colour model; the measured values are in the README


class Pointwise(torch.nn.Module):
    """A denoiser acting pixel by pixel, that counts its calls and takes sides multiple of 4."""

    size_multiple = 4

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, y, sigma):
        assert y.shape[-2] % 4 == 0 and y.shape[-1] % 4 == 0
        self.calls += 1
        return 0.5 * y + 0.1 + sigma


def test_tiles_blend_to_the_one_pass_output_of_a_local_denoiser():
    y = torch.rand(2, 3, 37, 53, generator=torch.Generator().manual_seed(0))
    one_pass = denoise_image(Pointwise(), y, 0.1, tile=None)
    assert one_pass.shape == y.shape
    assert torch.allclose(one_pass, 0.5 * y + 0.2, atol=1e-6)  # padding cropped back exactly
    denoiser = Pointwise()
    tiled = denoise_image(denoiser, y, 0.1, tile=16, overlap=4)
    assert denoiser.calls == 3 * 5  # 40 x 56 padded, tiles of 16 every 12 pixels: 0, 12, 24 down; 0..40 across
    assert torch.allclose(tiled, one_pass, atol=1e-6)  # every pixel covered, weights normalised


def test_tiles_of_a_model_match_its_one_pass_output_far_from_the_seams():
    torch.manual_seed(0)
    model = UNet(width=4, channels=3, sigma_range=(0.01, 0.2)).eval()
    y = torch.rand(1, 3, 40, 44, generator=torch.Generator().manual_seed(1))
    whole = denoise_image(model, y, 0.1, tile=None)
    with torch.no_grad():
        assert torch.equal(whole, model(y, 0.1))
    tiled = denoise_image(model, y, 0.1, tile=32, overlap=16)
    assert tiled.shape == y.shape and torch.isfinite(tiled).all()
    with pytest.raises(ValueError, match="overlap"):
        denoise_image(model, y, 0.1, tile=32, overlap=32)


def test_picture_metrics_noise_is_fixed_and_scores_are_psnr():
    pictures = [torch.full((3, 16, 20), 0.5), torch.full((1, 12, 12), 0.25)]
    noisy = picture_metrics(None, pictures, 0.1)
    again = picture_metrics(None, pictures, 0.1)
    assert noisy == again
    # the noisy input's PSNR is 20 dB up to the Monte Carlo error of 960 and 144 squared normals
    assert noisy[0]["psnr"] == pytest.approx(20.0, abs=3 * 10 / np.log(10) * np.sqrt(2 / 960))
    perfect = picture_metrics(lambda y, s: torch.full_like(y, 0.5), pictures[:1], 0.1)
    assert perfect[0]["psnr"] > 60 and perfect[0]["ssim"] == pytest.approx(1.0)


def test_read_image_conversions_and_refusals(tmp_path):
    deep = np.array([[0, 257 * 100], [65535, 257]], dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    assert read_image(tmp_path / "deep.png").tolist() == [[[0, 100], [255, 1]]]  # 16 bits / 257
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ValueError, match="not an image"):
        read_image(tmp_path / "notes.png")
    with pytest.raises(ValueError, match="expected shape"):
        write_image(tmp_path / "x.png", torch.zeros(2, 4, 4))


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(0)
    smooth = np.kron(rng.integers(40, 200, (6, 7, 3)), np.ones((8, 8, 1))).astype(np.uint8)  # 48 x 56
    Image.fromarray(smooth).save(tmp_path / "photo.png")
    return tmp_path / "photo.png"


@pytest.fixture
def colour_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = UNet(width=4, channels=3, sigma_range=(0.01, 0.2))
    save_checkpoint(tmp_path / "colour", model, {"model": "UNet", "config": as_json(model.config)})
    return str(tmp_path / "colour")


def test_denoise_command_writes_the_image_the_figure_and_the_psnr(tmp_path, photo, colour_checkpoint, capsys):
    out, fig = tmp_path / "out.png", tmp_path / "fig.png"
    assert main(["denoise", str(photo), "--model", colour_checkpoint, "--add-noise", "0.1", "--out", str(out),
                 "--figure", str(fig), "--tile", "32", "--no-progress"]) == 0
    written = read_image(out)
    assert written.shape == (3, 48, 56) and fig.stat().st_size > 0
    assert "PSNR: noisy 2" in capsys.readouterr().out  # about 20 dB at sigma 0.1
    # a grayscale picture is converted for the colour model, and written back in grayscale
    Image.open(photo).convert("L").save(tmp_path / "gray.png")
    assert main(["denoise", str(tmp_path / "gray.png"), "--model", colour_checkpoint, "--sigma", "0.05",
                 "--out", str(out), "--no-progress"]) == 0
    assert read_image(out).shape == (1, 48, 56)
    assert "converted" in capsys.readouterr().out


@pytest.mark.parametrize("extra, message", [
    (["--sigma", "0.5"], "outside the range"),
    ([], "needs the noise level"),
])
def test_denoise_command_refuses_a_level_the_model_cannot_serve(tmp_path, photo, colour_checkpoint, extra, message):
    with pytest.raises(SystemExit, match=message):
        main(["denoise", str(photo), "--model", colour_checkpoint, "--out", str(tmp_path / "o.png"), *extra])
    assert not (tmp_path / "o.png").exists()  # nothing half-written


def test_denoise_command_refuses_a_non_image_and_an_unknown_model(tmp_path, colour_checkpoint):
    (tmp_path / "a.png").write_text("text")
    with pytest.raises(SystemExit, match="not an image"):
        main(["denoise", str(tmp_path / "a.png"), "--model", colour_checkpoint, "--sigma", "0.1", "--out",
              str(tmp_path / "o.png")])
    with pytest.raises(SystemExit, match="shipped model"):
        main(["denoise", str(tmp_path / "a.png"), "--model", "nonesuch", "--sigma", "0.1", "--out",
              str(tmp_path / "o.png")])


def test_eval_on_a_folder_prints_a_table_per_sigma(tmp_path, photo, colour_checkpoint, monkeypatch, capsys):
    monkeypatch.setenv("SCOREDAE_DATA", str(tmp_path / "cache"))
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(4):
        Image.open(photo).rotate(90 * i, expand=True).save(folder / f"p{i}.png")
    assert main(["eval", "--data", str(folder), "--checkpoint", colour_checkpoint, "--sigmas", "0.1",
                 "--bm3d", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "sigma = 0.1" in text and "BM3D" in text and colour_checkpoint in text and "mean" in text
    with pytest.raises(SystemExit, match="no model to evaluate"):
        main(["eval", "--data", str(folder), "--no-progress"])


needs_images = pytest.mark.skipif(not images_available(),
                                  reason="the image collection is absent: run `scoredae data fetch images`")


@needs_images
@pytest.mark.parametrize("name", [n for n, m in list_pretrained().items() if m.get("data", {}).get("dataset") == "images"])
def test_shipped_colour_model_denoises_the_held_out_pictures(name):
    """Central 128 x 128 crops of the three held-out pictures at sigma = 0.1 (noisy input: 20 dB)."""
    images, _ = load_images("images", "test", channels=3)
    crops = list(center_crops(images, 128))
    model = load_pretrained(name)
    mean = np.mean([m["psnr"] for m in picture_metrics(model, crops, 0.1)])
    assert mean >= COLOUR_FLOOR_DB, f"{name}: {mean:.2f} dB"


def test_sample_command_runs_chains_from_a_photograph(tmp_path, photo, colour_checkpoint, capsys):
    out = tmp_path / "chains.pt"
    assert main(["sample", "--model", colour_checkpoint, "--method", "langevin", "--image", str(photo),
                 "--sigma", "0.1", "--crop", "30", "--n", "3", "--steps", "4", "--out", str(out), "--no-progress"]) == 0
    samples = torch.load(out)
    assert samples.shape == (3, 3, 28, 28)  # the central crop, rounded down to the U-Net's multiple of 4
    assert main(["sample", "--model", colour_checkpoint, "--method", "langevin", "--image", str(photo),
                 "--sigma", "0.1", "--n", "2", "--steps", "2", "--out", str(tmp_path / "c.png"), "--no-progress"]) == 0
    assert (tmp_path / "c.png").stat().st_size > 0
    with pytest.raises(SystemExit, match="needs the level"):
        main(["sample", "--model", colour_checkpoint, "--method", "langevin", "--image", str(photo), "--n", "2",
              "--out", str(out)])


ZOO = {  # every architecture, small, on colour crops of a size it takes; the transformer with 8 x 8 patches
    "mlp": {"widths": (32,), "latent": 8, "image_size": (32, 32)},
    "unet": {"width": 4},
    "conv": {"widths": (4, 8, 8)},
    "drunet": {"nc": (4, 8, 8, 8), "precondition": True},
    "transformer": {"patch_size": 8, "d_model": 16, "depth": 1, "heads": 2},
    "hybrid": {"width": 4, "d_model": 16, "depth": 1, "heads": 2, "tokens_channels": 4, "precondition": True},
}


@pytest.mark.parametrize("name", sorted(ZOO))
@pytest.mark.parametrize("channels", [1, 3])
def test_every_architecture_trains_on_crops_of_photographs(name, channels):
    from scoredae.data.images import RandomCrops
    from scoredae.nets.registry import model_class
    from scoredae.train import TrainConfig
    from scoredae.train import train_denoiser as train

    g = torch.Generator().manual_seed(0)
    pictures = [torch.randint(0, 256, (channels, 40 + 8 * i, 48), generator=g, dtype=torch.uint8) for i in range(3)]
    torch.manual_seed(0)
    model = model_class(name)(channels=channels, sigma_range=(0.01, 0.2), **ZOO[name])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = train(model, RandomCrops(pictures, 32, batch_size=4), torch.rand(2, channels, 32, 32),
                   TrainConfig(steps=2, batch_size=4, ema=None, progress=False), eval_images=2, eval_sigmas=(0.1,))
    assert result.losses.shape == (2,) and torch.isfinite(result.losses).all()
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
