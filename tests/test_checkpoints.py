"""Checkpoints: safetensors + JSON round trip, atomic writes, no unpickling, clear errors."""

import json

import pytest
import torch

from scoredae.nets import MLPDAE, UNet
from scoredae.nets.checkpoints import (
    CheckpointError,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from scoredae.nets.registry import constructors

META = {"command": "scoredae train ...", "psnr": {"0.5": 20.0}}


def small_unet(width=4):
    torch.manual_seed(0)
    return UNet(width=width, sigma_range=(0.01, 1.0)).eval()


def with_model_metadata(model):
    return {**META, "model": type(model).__name__, "config": model.config}


def test_round_trip_rebuilds_the_same_model_and_keeps_extra_state(tmp_path):
    model = small_unet()
    extra = {"optim/0/exp_avg": torch.randn(3, 2)}
    path = save_checkpoint(tmp_path / "ckpt", model, with_model_metadata(model), extra)
    assert path.name == "ckpt.safetensors" and (tmp_path / "ckpt.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.json", "ckpt.safetensors"]  # no temp files
    loaded, meta = load_checkpoint(tmp_path / "ckpt", constructors())
    assert isinstance(loaded, UNet) and meta["psnr"] == META["psnr"] and not loaded.training
    x = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(loaded(x, 0.3), model(x, 0.3), rtol=0, atol=0)
    weights, saved_extra, _ = read_checkpoint(tmp_path / "ckpt.safetensors")
    assert set(weights) == set(model.state_dict())
    torch.testing.assert_close(saved_extra["optim/0/exp_avg"], extra["optim/0/exp_avg"])


def test_checkpoint_of_another_model_is_refused(tmp_path):
    model = small_unet(width=4)
    save_checkpoint(tmp_path / "unet", model, with_model_metadata(model))
    with pytest.raises(CheckpointError, match="holds a UNet, expected a MLPDAE"):
        load_checkpoint(tmp_path / "unet", constructors(), expected_model="MLPDAE")
    meta = json.loads((tmp_path / "unet.json").read_text())
    meta["config"]["width"] = 8  # weights of width 4 do not fit a width-8 network
    (tmp_path / "unet.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="does not fit UNet.*wrong shapes"):
        load_checkpoint(tmp_path / "unet", constructors())
    meta["model"] = "Nonexistent"
    (tmp_path / "unet.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="unknown model 'Nonexistent'"):
        load_checkpoint(tmp_path / "unet", constructors())


@pytest.mark.parametrize("damage, match", [
    ("truncated", r"weights .*mlp\.safetensors are corrupt"),
    ("pickle", r"weights .*mlp\.safetensors are corrupt"),
    ("bad-json", r"metadata .*mlp\.json is not valid JSON"),
    ("missing", r"its weights file .*mlp\.safetensors does not exist"),
    ("no-json", r"its metadata file .*mlp\.json does not exist"),
    ("other-class", r"config does not build a UNet"),
    ("extra-key", r"config does not build a MLPDAE: .*unexpected keyword argument 'depth'"),
    ("null-sigma", r"config does not build a MLPDAE: give exactly one of sigma"),
])
def test_corrupt_or_missing_files_give_a_clear_error(tmp_path, damage, match):
    model = MLPDAE(sigma=0.5)
    weights = save_checkpoint(tmp_path / "mlp", model, with_model_metadata(model))
    if damage == "truncated":
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage == "pickle":  # a torch.save file is never unpickled
        torch.save(model.state_dict(), weights)
    elif damage == "bad-json":
        (tmp_path / "mlp.json").write_text("{not json")
    elif damage == "missing":
        weights.unlink()
    elif damage == "no-json":
        (tmp_path / "mlp.json").unlink()
    else:
        meta = json.loads((tmp_path / "mlp.json").read_text())
        if damage == "other-class":
            meta["model"] = "UNet"
        elif damage == "extra-key":
            meta["config"]["depth"] = 3
        else:
            meta["config"]["sigma"] = None
        (tmp_path / "mlp.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(tmp_path / "mlp", constructors())
