"""The inverse-problem recipes for trained models: the task operators are linear with the adjoint
and the SVD they claim, every sampler with a diffusion prior runs on every task it can, and the
command line reports the PSNR and coverage it promises."""

import pytest
import torch

from scoredae.cli import main
from scoredae.nets import UNet
from scoredae.nets.checkpoints import save_checkpoint
from scoredae.recipes import posterior as mp

F64 = torch.float64


@pytest.mark.parametrize("task", mp.TASKS)
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 16, 16)])
def test_task_operators_are_linear_with_their_adjoint(task, shape):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, *shape, generator=gen, dtype=F64)
    y, op, noise_sigma = mp.observe(task, x[:1], seed=3)
    assert noise_sigma == mp.TASKS[task].noise_sigma and y.shape[1:] == op.A(x).shape[1:]
    r = torch.randn(op.A(x).shape, generator=gen, dtype=F64)
    torch.testing.assert_close((op.A(x) * r).sum(), (x * op.A_adjoint(r)).sum())  # <A x, r> = <x, A^T r>
    torch.testing.assert_close(op.A(2 * x), 2 * op.A(x))
    if task != "deblur":  # the blur has no real SVD (next test)
        v_adjoint, v, spectral_y, s = op.svd()
        torch.testing.assert_close(spectral_y(op.A(x)), s.to(x) * v_adjoint(x))
        torch.testing.assert_close(v(v_adjoint(x)), x)
    again, _, _ = mp.observe(task, x[:1], seed=3)
    torch.testing.assert_close(y, again)  # the noise is the seed's


def test_deblurring_has_no_real_svd_and_ddrm_says_so():
    model = UNet(width=4, sigma_range=(0.01, 1.0)).double().eval()
    x = torch.rand(1, 1, 28, 28, dtype=F64)
    y, op, s = mp.observe("deblur", x)
    with pytest.raises(ValueError, match="forward: this method needs the SVD"):
        op.svd()
    with pytest.raises(ValueError, match="forward: this method needs the SVD"):
        mp.diffusion_posterior(model, y, noise_sigma=s, forward=op, method="ddrm", n=2, steps=3)


@pytest.mark.parametrize("method", sorted(mp.DIFFUSION_POSTERIOR))
@pytest.mark.parametrize("task", ["inpaint", "super-resolution"])
def test_every_diffusion_posterior_runs_on_images(method, task):
    torch.manual_seed(0)
    model = UNet(width=4, sigma_range=(0.01, 1.0)).double().eval()
    x = torch.rand(1, 1, 28, 28, dtype=F64)
    y, op, s = mp.observe(task, x)
    result = mp.diffusion_posterior(model, y, noise_sigma=s, forward=op, method=method, n=3, steps=4,
                                    generator=torch.Generator().manual_seed(1))
    assert result.samples.shape == (3, 1, 28, 28) and bool(torch.isfinite(result.samples).all())


def test_posterior_summary_of_exact_draws():
    gen = torch.Generator().manual_seed(0)
    truth = torch.randn(1, 1, 20, 20, generator=gen, dtype=F64)
    samples = torch.randn(2000, 1, 20, 20, generator=gen, dtype=F64)  # truth and samples from one law
    summary = mp.posterior_summary(samples, truth)
    assert abs(summary["coverage"] - 0.9) < 4 * (0.09 / 400) ** 0.5 + 0.01  # 400 pixels
    assert float(summary["std"].mean()) == pytest.approx(1, abs=0.03)
    with pytest.raises(ValueError, match="method: expected one of"):
        mp.diffusion_posterior(UNet(width=4, sigma_range=(0.01, 1.0)), truth, noise_sigma=0.1,
                               forward=(lambda v: v, lambda v: v), method="magic")


def test_cli_samples_the_posterior_with_a_diffusion_prior(tmp_path, capsys):
    torch.manual_seed(0)
    model = UNet(width=4, sigma_range=(0.01, 1.0))
    stem = tmp_path / "cond"
    save_checkpoint(stem, model, {"model": "UNet", "config": model.config})
    for method, task in (("smc", "super-resolution"), ("ddrm", "inpaint"), ("posterior", "deblur")):
        out = tmp_path / f"{method}.png"
        main(["sample", "--model", str(stem), "--method", method, "--task", task, "--n", "2", "--steps", "3",
              "--out", str(out), "--no-progress"])
        printed = capsys.readouterr().out
        assert out.exists() and "PSNR of the mean of 2 samples" in printed and "90% intervals" in printed
    with pytest.raises(SystemExit, match="--n: posterior sampling reports"):
        main(["sample", "--model", str(stem), "--method", "smc", "--n", "1", "--out", str(tmp_path / "a.png")])
    raw = tmp_path / "dps.pt"
    main(["sample", "--model", str(stem), "--method", "dps", "--task", "inpaint", "--n", "2", "--steps", "3",
          "--out", str(raw), "--no-progress"])
    assert torch.load(raw).shape == (2, 1, 28, 28)
