"""The training loop on tiny synthetic images: it learns, resumes exactly, and runs under DDP."""

import dataclasses
import json
import os
import signal
import socket

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from scoredae.data import TensorBatches
from scoredae.eval import evaluate_psnr
from scoredae.nets import MLPDAE, UNet
from scoredae.train import TrainConfig, checkpoints
from scoredae.train import train_denoiser as train_denoiser_result
from scoredae.train.loop import TrainingInterrupted


def blobs(n, seed=0):
    """n images, each one of four smooth Gaussian blobs with a random brightness: (n, 1, 28, 28)."""
    g = torch.Generator().manual_seed(seed)
    grid = torch.arange(28.0)
    centres = torch.tensor([[8.0, 8.0], [8.0, 20.0], [20.0, 8.0], [20.0, 20.0]])
    c = centres[torch.randint(4, (n,), generator=g)]  # (n, 2)
    d2 = (grid[None, :, None] - c[:, 0, None, None]) ** 2 + (grid[None, None, :] - c[:, 1, None, None]) ** 2
    brightness = 0.6 + 0.4 * torch.rand(n, 1, 1, generator=g)
    return (brightness * torch.exp(-d2 / 18)).unsqueeze(1)


def config(**kw):
    base = TrainConfig(steps=8, batch_size=8, lr=3e-3, ema=0.9, save_every=4, progress=False)
    return dataclasses.replace(base, **kw)


def train(model, data, test, config, eval_images=8, **kw):
    """train_denoiser's metadata."""
    return train_denoiser_result(model, data, test, config, eval_images=eval_images, **kw).metadata


def test_training_learns_to_denoise():
    torch.manual_seed(0)
    model = MLPDAE(widths=(64,), latent=8, sigma=0.3)
    clean = blobs(64, seed=1)
    before = evaluate_psnr(model.eval(), clean, 0.3)
    meta = train(model, blobs(256), clean, config(steps=150, batch_size=32, ema=None), eval_images=64)
    after = evaluate_psnr(model, clean, 0.3)
    assert after > before + 6, (before, after)
    assert meta["metrics"]["psnr"]["0.3"] == pytest.approx(after, abs=5e-4)  # rounded to 3 decimals
    assert meta["step"] == 150 and meta["config"]["sigma"] == 0.3


def test_resume_reaches_the_weights_of_an_uninterrupted_run(tmp_path, monkeypatch):
    data, test = blobs(32), blobs(8, seed=2)

    def fresh():
        torch.manual_seed(0)
        return UNet(width=4, sigma_range=(0.01, 1.0))

    full = fresh()
    train(full, data, test, config(), out=tmp_path / "full")

    calls = {"n": 0}
    real_save = checkpoints.save_checkpoint

    def crash_after_first_last(*args, **kwargs):  # the run dies right after writing `last` at step 4
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_save(*args, **kwargs)

    monkeypatch.setattr(checkpoints, "save_checkpoint", crash_after_first_last)
    with pytest.raises(KeyboardInterrupt):
        train(fresh(), data, test, config(), out=tmp_path / "resumed")
    monkeypatch.setattr(checkpoints, "save_checkpoint", real_save)
    resumed = fresh()  # new weights: everything must come from the checkpoint
    meta = train(resumed, data, test, config(), out=tmp_path / "resumed", resume=True)
    assert meta["step"] == 8
    for key, value in full.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=0, atol=0)
    ema_full = load_file(tmp_path / "full" / "model.safetensors")
    ema_resumed = load_file(tmp_path / "resumed" / "model.safetensors")
    for key, value in ema_full.items():
        torch.testing.assert_close(ema_resumed[key], value, rtol=0, atol=0)
    assert not torch.equal(ema_full["out.weight"], full.state_dict()["out.weight"])  # EMA differs from raw


def test_time_budget_stops_training():
    torch.manual_seed(0)
    meta = train(MLPDAE(sigma=0.5), blobs(16), blobs(4), config(steps=None, minutes=0.002, save_every=10**6))
    assert 1 <= meta["step"] and meta["elapsed_s"] >= 0.12


def test_config_is_validated():
    with pytest.raises(ValueError, match="give steps or minutes"):
        TrainConfig(steps=None, minutes=None)
    with pytest.raises(ValueError, match="batch_size: expected a positive integer, got 0"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="ema: expected a decay in"):
        TrainConfig(ema=1.5)


def _ddp_worker(rank, world, port, folder):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = UNet(width=4, sigma_range=(0.01, 1.0))
    train(model, blobs(64), blobs(8, seed=2), config(steps=4, batch_size=16, ema=None))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, f"{folder}/rank{rank}.safetensors")
    torch.distributed.destroy_process_group()


def test_two_gloo_processes_end_with_identical_weights(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    rank0, rank1 = (load_file(tmp_path / f"rank{r}.safetensors") for r in (0, 1))
    torch.manual_seed(0)
    initial = UNet(width=4, sigma_range=(0.01, 1.0)).state_dict()
    for key in rank0:
        torch.testing.assert_close(rank0[key], rank1[key], rtol=0, atol=0)
    assert not torch.equal(rank0["out.weight"], initial["out.weight"])


def test_train_command_writes_a_resumable_checkpoint(tmp_path, monkeypatch, capsys):
    from scoredae.cli import main
    from scoredae.data import mnist as data
    from scoredae.nets.checkpoints import read_checkpoint

    monkeypatch.setattr(data, "load_mnist", lambda split: (blobs(64 if split == "train" else 8), None))
    args = ["train", "--model", "unet", "--option", "width=4", "--sigma-range", "0.01", "1", "--steps", "4",
            "--batch-size", "8", "--eval-images", "8", "--save-every", "2", "--no-progress", "--out", str(tmp_path)]
    assert main(args) == 0
    _, extra, meta = read_checkpoint(tmp_path / "last")
    assert meta["model"] == "UNet" and meta["config"]["width"] == 4 and meta["config"]["sigma_range"] == [0.01, 1.0]
    assert meta["command"].startswith("scoredae ") and meta["step"] == 4 and meta["data"]["images"] == 64
    assert any(k.startswith("optim/") for k in extra) and any(k.startswith("ema/") for k in extra)
    assert main([*args[:9], "6", *args[10:], "--resume"]) == 0  # --steps 6, continues from step 4
    resumed = read_checkpoint(tmp_path / "last")[2]
    assert resumed["step"] == 6
    assert "--resume" not in resumed["command"] and "--steps 6" in resumed["command"]  # the command, resumable
    assert '"step": 6' in capsys.readouterr().out


def test_train_command_records_the_level_draw_the_noise_map_and_the_loss(tmp_path, monkeypatch):
    from scoredae.cli import main
    from scoredae.data import mnist as data
    from scoredae.nets.checkpoints import read_checkpoint

    monkeypatch.setattr(data, "load_mnist", lambda split: (blobs(16 if split == "train" else 8), None))
    args = ["train", "--model", "unet", "--option", "width=4", "--option", 'noise_map="log"', "--sigma-range",
            "0.002", "80", "--log-normal", "-1.2", "1.2", "--loss", "l1", "--steps", "2", "--batch-size", "8", "--eval-images", "8",
            "--no-progress", "--out", str(tmp_path)]
    assert main(args) == 0
    meta = read_checkpoint(tmp_path / "model")[2]
    assert meta["sigma_draw"] == {"log_normal": [-1.2, 1.2]} and meta["config"]["noise_map"] == "log"
    assert meta["loss"] == "l1"
    with pytest.raises(SystemExit, match="--log-normal: needs --sigma-range"):
        main(["train", "--model", "unet", "--sigma", "0.5", "--log-normal", "-1.2", "1.2", "--steps", "1",
              "--out", str(tmp_path / "b")])


def test_train_command_trains_by_flow_matching_on_fresh_draws_of_a_shipped_mixture(tmp_path):
    from scoredae.cli import main
    from scoredae.nets.checkpoints import read_checkpoint

    args = ["train", "--model", "unet", "--option", "width=4", "--sigma-range", "0.002", "80", "--objective", "flow",
            "--data", "mnist_mixture", "--steps", "2", "--batch-size", "4", "--eval-images", "4", "--no-progress",
            "--out", str(tmp_path)]
    assert main(args) == 0
    meta = read_checkpoint(tmp_path / "model")[2]
    assert meta["objective"] == "flow" and meta["sigma_draw"].startswith("uniform t")
    assert meta["data"]["dataset"] == "mnist_mixture"
    with pytest.raises(SystemExit, match="--objective flow"):
        main([*args[:-2], "--loss", "l1", "--out", str(tmp_path / "b")])


def test_the_flow_objective_of_the_trainer_is_flow_matching_at_uniform_times():
    from scoredae.objectives import flow_matching_loss
    from scoredae.train.trainers import denoiser_loss

    torch.manual_seed(0)
    model = UNet(width=4, sigma_range=(0.01, 1.0))
    x = blobs(4)
    with torch.no_grad():
        got = denoiser_loss(model, objective="flow")(model, x, torch.Generator().manual_seed(3))
        gen = torch.Generator().manual_seed(3)
        lo, hi = 0.01 / 1.01, 0.5
        t = lo + (hi - lo) * torch.rand(4, generator=gen)
        expected = flow_matching_loss(model, x, t, gen)
    torch.testing.assert_close(got, expected)
    with pytest.raises(ValueError, match="objective"):
        denoiser_loss(model, objective="flow", log_normal=(-1.2, 1.2))


def test_resuming_another_model_is_refused(tmp_path):
    torch.manual_seed(0)
    train(UNet(width=4, sigma_range=(0.01, 1.0)), blobs(16), blobs(4), config(steps=2), out=tmp_path)
    with pytest.raises(ValueError, match="holds a UNet, expected a MLPDAE"):
        train(MLPDAE(sigma=0.5), blobs(16), blobs(4), config(steps=2), out=tmp_path, resume=True)


def test_train_command_starts_from_the_weights_given_by_init(tmp_path, monkeypatch):
    from scoredae.cli import main
    from scoredae.data import mnist as data

    monkeypatch.setattr(data, "load_mnist", lambda split: (blobs(32 if split == "train" else 8), None))
    common = ["--sigma-range", "0.01", "1", "--batch-size", "8", "--eval-images", "8", "--ema", "0", "--no-progress"]
    unet = ["train", "--model", "unet", "--option", "width=4", *common]
    assert main([*unet, "--steps", "3", "--seed", "1", "--out", str(tmp_path / "a")]) == 0
    source = load_file(tmp_path / "a" / "model.safetensors")
    # lr 1e-12: one Adam step moves each weight by about 1e-12, so the result is the source
    assert main([*unet, "--steps", "1", "--lr", "1e-12", "--init", str(tmp_path / "a" / "model"),
                 "--out", str(tmp_path / "b")]) == 0
    started = load_file(tmp_path / "b" / "model.safetensors")
    torch.manual_seed(0)
    fresh = UNet(width=4, sigma_range=(0.01, 1.0)).state_dict()
    for key, value in source.items():
        torch.testing.assert_close(started[key], value, rtol=0, atol=1e-9)
    assert not torch.allclose(fresh["enc1.0.weight"], source["enc1.0.weight"])
    mlp = ["train", "--model", "mlp", *common, "--steps", "1", "--out", str(tmp_path / "c")]
    with pytest.raises(SystemExit, match="scoredae train: checkpoint .* holds a UNet, expected a MLPDAE"):
        main([*mlp, "--init", str(tmp_path / "a" / "model")])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_run_saves_and_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path, monkeypatch, sig):
    """The signal arrives while step 2 runs: the loop ends that step, writes `last` at step 3 (not at
    a save_every multiple) and stops; resumed, the run ends with the uninterrupted run's weights."""
    data, test = blobs(32), blobs(8, seed=2)

    def fresh():
        torch.manual_seed(0)
        return UNet(width=4, sigma_range=(0.01, 1.0))

    full = fresh()
    train(full, data, test, config(save_every=100), out=tmp_path / "full")
    real_batch = TensorBatches.__call__

    def signalling(self, step, *args):
        if step == 2:
            os.kill(os.getpid(), sig)
        return real_batch(self, step, *args)

    monkeypatch.setattr(TensorBatches, "__call__", signalling)
    with pytest.raises(TrainingInterrupted, match=f"stopped by {sig.name} at step 3; checkpoint .* written"):
        train(fresh(), data, test, config(save_every=100), out=tmp_path / "cut")
    monkeypatch.undo()
    assert json.loads((tmp_path / "cut" / "last.json").read_text())["step"] == 3
    resumed = fresh()
    train(resumed, data, test, config(save_every=100), out=tmp_path / "cut", resume=True)
    for key, value in full.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=0, atol=0)
