"""diffusers' models and schedulers against scoredae's conversions and solvers, on tiny random
models built here (no download), in float64 with the same start and the same steps. diffusers
keeps its schedule in float32, hence the 1e-5 relative tolerance."""

import pytest
import torch

diffusers = pytest.importorskip("diffusers")

from scoredae import GaussianMixture
from scoredae.mixtures import MixtureDenoiser
from scoredae.nets.external import from_diffusers, load_diffusers, to_diffusers
from scoredae.sampling import edm_sampler

F64 = torch.float64


def tiny_unet(seed=0, classes=None):
    torch.manual_seed(seed)
    unet = diffusers.UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16),
                                 layers_per_block=1, norm_num_groups=4, down_block_types=("DownBlock2D", "DownBlock2D"),
                                 up_block_types=("UpBlock2D", "UpBlock2D"), num_class_embeds=classes)
    return unet.to(F64).eval()


def close(a, b, rtol=1e-5):
    scale = float(b.abs().max())
    assert float((a - b).abs().max()) <= rtol * scale, float((a - b).abs().max()) / scale


def ddim_loop(model, scheduler, x_T, steps, **step_kwargs):
    scheduler.set_timesteps(steps)
    x = x_T
    for t in scheduler.timesteps:
        with torch.no_grad():
            x = scheduler.step(model(x, t), t, x, **step_kwargs).prev_sample
    return x


def ve_levels(denoiser, scheduler):
    """The VE levels of the scheduler's timesteps, then 0 (its last step lands on the clean estimate)."""
    t = scheduler.timesteps.to(F64)
    return torch.cat([denoiser.schedule.sigma(t), t.new_zeros(1)])


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction", "sample"])
def test_ddim_on_a_diffusers_model_is_euler_on_its_denoiser(prediction):
    """DDIM with eta = 0 is Euler's method on the probability-flow ODE in VE coordinates: the same
    model, start x_T (x_T / alpha_T in VE coordinates) and timesteps give the same sample."""
    unet = tiny_unet()
    scheduler = diffusers.DDIMScheduler(prediction_type=prediction, clip_sample=False)
    x_T = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=F64)
    expected = ddim_loop(lambda x, t: unet(x, t).sample, scheduler, x_T, 10)
    denoiser = from_diffusers(unet, scheduler, data_range=(0.0, 1.0))
    sigmas = ve_levels(denoiser, scheduler)
    alpha_T = denoiser.schedule.alpha(scheduler.timesteps[0].to(F64))
    ours = edm_sampler(denoiser, x_T / alpha_T, sigmas, solver="euler").samples
    close(ours, expected)


def test_a_scoredae_denoiser_steps_in_diffusers_ddim_as_in_euler():
    """The other way: the exact denoiser of a mixture as diffusers' epsilon model."""
    gm = GaussianMixture(torch.tensor([0.4, 0.6], dtype=F64), torch.tensor([[-1.0] * 4, [1.0] * 4], dtype=F64), 0.2)
    denoiser = MixtureDenoiser(gm)
    scheduler = diffusers.DDIMScheduler(clip_sample=False)
    model = to_diffusers(denoiser, scheduler)
    x_T = torch.randn(5, 4, generator=torch.Generator().manual_seed(2), dtype=F64)
    expected = ddim_loop(model, scheduler, x_T, 20)
    from scoredae.sampling.parametrisations import DiscreteVP

    schedule = DiscreteVP(scheduler.alphas_cumprod)
    t = scheduler.timesteps.to(F64)
    sigmas = torch.cat([schedule.sigma(t), t.new_zeros(1)])
    ours = edm_sampler(denoiser, x_T / schedule.alpha(t[0]), sigmas, solver="euler").samples
    close(ours, expected)


def test_a_flow_matching_model_steps_as_euler_on_its_denoiser():
    """FlowMatchEulerDiscreteScheduler's Euler steps in t on the interpolant are Euler steps in
    sigma = t / (1 - t) on the VE ODE. The flow's own start, t = 1, is sigma = infinity, so the run
    starts below it (custom sigmas from 0.98)."""
    unet = tiny_unet(3)
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler()
    times = torch.linspace(0.98, 0.02, 12).tolist()
    scheduler.set_timesteps(sigmas=times)
    x_T = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(4), dtype=F64)
    x = x_T
    for t in scheduler.timesteps:
        with torch.no_grad():
            x = scheduler.step(unet(x, t).sample, t, x).prev_sample
    denoiser = from_diffusers(unet, scheduler, data_range=(0.0, 1.0))
    t = scheduler.sigmas.to(F64)  # the times, then 0
    sigmas = t / (1 - t)
    ours = edm_sampler(denoiser, x_T / (1 - t[0]), sigmas, solver="euler").samples
    close(ours, x)


def test_class_labels_pass_through():
    unet = tiny_unet(5, classes=3)
    denoiser = from_diffusers(unet, diffusers.DDPMScheduler(), data_range=(0.0, 1.0))
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(6), dtype=F64)
    labels = torch.tensor([0, 2])
    with torch.no_grad():
        one, other = denoiser(x, 1.0, class_labels=labels), denoiser(x, 1.0, class_labels=labels.flip(0))
    assert not torch.allclose(one, other)


def test_a_saved_diffusers_folder_loads_without_a_download(tmp_path):
    unet, scheduler = tiny_unet(7), diffusers.DDPMScheduler(prediction_type="v_prediction")
    unet.save_pretrained(tmp_path / "unet")
    scheduler.save_pretrained(tmp_path / "scheduler")
    denoiser = load_diffusers(tmp_path, data_range=(0.0, 1.0))
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(8), dtype=F64)
    with torch.no_grad():
        close(denoiser(x, 0.5).to(F64), from_diffusers(unet, scheduler, data_range=(0.0, 1.0))(x, 0.5), rtol=1e-6)
    assert denoiser.prediction == "v_prediction"
    with pytest.raises(FileNotFoundError, match="no scheduler"):
        load_diffusers(tmp_path / "unet")


def test_bad_models_and_schedulers_are_refused_by_name():
    unet = tiny_unet()
    with pytest.raises(ValueError, match="prediction_type"):
        from_diffusers(unet, diffusers.DDPMScheduler(prediction_type="flow"))
    denoiser = from_diffusers(unet, diffusers.DDPMScheduler(), data_range=(0.0, 1.0))
    with pytest.raises(ValueError, match="outside the schedule"):
        denoiser(torch.zeros(1, 1, 8, 8, dtype=F64), denoiser.sigma_range[1] * 2)
    with pytest.raises(ValueError, match="no alphas_cumprod"):
        from_diffusers(unet, diffusers.EDMEulerScheduler())


def test_a_model_of_data_in_minus_one_one_is_a_denoiser_of_images_in_zero_one():
    r"""The exact denoiser of a mixture of data in [-1, 1], seen on [0, 1]: the exact denoiser of the
    mixture mapped by x -> (x + 1) / 2 (means halved and shifted, covariances quartered)."""
    from scoredae.nets.external import RangeChange

    gm = GaussianMixture(torch.tensor([0.4, 0.6], dtype=F64), torch.tensor([[-0.5, 0.2], [0.6, -0.4]], dtype=F64), 0.04)
    moved = GaussianMixture(gm.weights, (gm.means + 1) / 2, 0.01)
    x = torch.rand(6, 2, generator=torch.Generator().manual_seed(9), dtype=F64)
    torch.testing.assert_close(RangeChange(MixtureDenoiser(gm), -1.0, 1.0)(x, 0.3), MixtureDenoiser(moved)(x, 0.3))
    with pytest.raises(ValueError, match="data_range"):
        RangeChange(MixtureDenoiser(gm), 1.0, -1.0)


def test_the_sample_command_draws_from_a_diffusers_folder(tmp_path, capsys):
    from scoredae.cli import main

    tiny_unet(10).to(torch.float32).save_pretrained(tmp_path / "model" / "unet")
    diffusers.DDPMScheduler().save_pretrained(tmp_path / "model" / "scheduler")
    out = tmp_path / "samples.pt"
    assert main(["sample", "--diffusers", str(tmp_path / "model"), "--method", "euler", "--steps", "3", "--n", "2",
                 "--no-progress", "--out", str(out)]) == 0
    samples = torch.load(out)
    assert samples.shape == (2, 1, 8, 8) and bool(torch.isfinite(samples).all())
    assert "euler" in capsys.readouterr().out


def _diffusers_run(unet, scheduler, x_T, steps):
    scheduler.set_timesteps(steps)
    sample = x_T * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        with torch.no_grad():
            out = unet(scheduler.scale_model_input(sample, t), t).sample
        sample = scheduler.step(out, t, sample).prev_sample
    return sample


@pytest.mark.parametrize("name", ["euler", "heun", "dpm++2m midpoint", "dpm++2m heun", "unipc 2", "unipc 3"])
def test_diffusers_solvers_equal_ours_on_the_converted_model(name):
    """Same model, start and timesteps. Euler's and Heun's discrete schedulers step in VE
    coordinates; DPM-Solver++ and UniPC (bh2, data prediction, orders 2 and 3) in VP ones (divided
    by alpha_T here). Integer timesteps: at
    fractional ones diffusers interpolates sigma linearly in t where the conversion (as k-diffusion)
    interpolates log sigma, so the model would be called at slightly different times. Twenty steps:
    under fifteen diffusers' DPM-Solver++ drops to first order on the step before last."""
    from scoredae.sampling import dpm_solver_pp, unipc

    unet = tiny_unet(11)
    kind, _, solver_type = name.partition(" ")
    scheduler = {"euler": lambda: diffusers.EulerDiscreteScheduler(timestep_spacing="leading"),
                 "heun": lambda: diffusers.HeunDiscreteScheduler(timestep_spacing="leading"),
                 "dpm++2m": lambda: diffusers.DPMSolverMultistepScheduler(solver_type=solver_type),
                 "unipc": lambda: diffusers.UniPCMultistepScheduler(solver_order=int(solver_type or 2))}[kind]()
    x_T = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(12), dtype=F64)
    expected = _diffusers_run(unet, scheduler, x_T, 20)
    denoiser = from_diffusers(unet, scheduler, data_range=(0.0, 1.0))
    t = scheduler.timesteps.to(F64).unique_consecutive()
    sigmas = torch.cat([denoiser.schedule.sigma(t), t.new_zeros(1)])
    if kind == "dpm++2m":
        ours = dpm_solver_pp(denoiser, x_T / denoiser.schedule.alpha(t[0]), sigmas, solver_type=solver_type).samples
    elif kind == "unipc":
        ours = unipc(denoiser, x_T / denoiser.schedule.alpha(t[0]), sigmas, order=int(solver_type)).samples
    else:
        ours = edm_sampler(denoiser, x_T * scheduler.init_noise_sigma, sigmas, solver=kind).samples
    close(ours, expected)


def test_flow_matchings_euler_solver_is_euler_on_the_converted_denoiser():
    """Meta's ODESolver (torchdiffeq's Euler on the given time grid, noise at t = 0) on a random
    velocity network, and scoredae's Euler on its denoiser (levels sigma = (1 - t) / t): the same
    samples. (Its midpoint method is not Heun's in sigma: another method, not compared.)"""
    solver_module = pytest.importorskip("flow_matching.solver")
    from scoredae.nets.external import from_flow_matching

    torch.manual_seed(13)
    net = torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.Tanh(), torch.nn.Linear(32, 3)).to(F64)

    class Velocity(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x, t, **extras):
            return self.net(torch.cat([x, torch.as_tensor(t, dtype=x.dtype).expand(x.shape[0], 1)], 1))

    grid = torch.linspace(0.02, 1.0, 15, dtype=F64)
    x_init = torch.randn(5, 3, generator=torch.Generator().manual_seed(14), dtype=F64)
    expected = solver_module.ODESolver(velocity_model=Velocity()).sample(x_init, step_size=None, time_grid=grid)
    ours = edm_sampler(from_flow_matching(Velocity()), x_init / grid[0], (1 - grid) / grid, solver="euler").samples
    close(ours, expected, rtol=1e-12)


def test_deepinvs_flow_matching_with_a_scoredae_denoiser_is_our_euler():
    """deepinv 0.5's FlowMatching (the linear interpolant, its probability-flow ODE, alpha = 0) with
    its EulerSolver, driven by the exact denoiser of a mixture, steps in t on x_t = (1 - t) x; that is
    Euler in sigma = t / (1 - t) on the VE ODE. deepinv calls the denoiser in float32, hence 1e-5;
    ``minus_one_one=False`` keeps its states in the mixture's coordinates (by default it runs in
    [-1, 1] around a [0, 1] denoiser, as :class:`~scoredae.nets.external.RangeChange` does).
    Its VariancePreservingDiffusion steps Euler in the VP time, another method: on 800 steps it lands
    on scoredae's Heun solution of the same ODE within 1e-3 (measured 4e-4, Euler's error; with
    beta_max off by 5%, 3.5e-3)."""
    from deepinv.sampling import EulerSolver, FlowMatching, VariancePreservingDiffusion

    from scoredae.sampling.parametrisations import VariancePreserving

    gm = GaussianMixture(torch.tensor([0.4, 0.6], dtype=F64), torch.tensor([[-1.0, 0.5], [1.0, -0.5]], dtype=F64), 0.1)
    denoiser = MixtureDenoiser(gm)
    grid = torch.linspace(0.98, 0.02, 25, dtype=F64)
    x_init = torch.randn(6, 2, generator=torch.Generator().manual_seed(15), dtype=F64)
    flow = FlowMatching(denoiser=denoiser, solver=EulerSolver(timesteps=grid), minus_one_one=False, dtype=F64)
    theirs = flow.sample(x_init, timesteps=grid)
    ours = edm_sampler(denoiser, x_init / (1 - grid[0]), grid / (1 - grid), solver="euler").samples * (1 - grid[-1])
    close(ours, theirs, rtol=1e-5)

    vp, fine = VariancePreserving("linear"), torch.linspace(0.9, 0.05, 800, dtype=F64)
    their_vp = VariancePreservingDiffusion(denoiser=denoiser, solver=EulerSolver(timesteps=fine), minus_one_one=False,
                                           dtype=F64)
    x_ve = x_init * vp.sigma(fine[0])  # the noise at the first level, in VE coordinates
    end = their_vp.sample(vp.alpha(fine[0]) * x_ve, timesteps=fine) / vp.alpha(fine[-1])
    heun = edm_sampler(denoiser, x_ve, vp.sigma(fine), solver="heun").samples
    assert float((end - heun).abs().max()) < 1e-3


@pytest.mark.parametrize("eta", [1.0, 0.5])
def test_ddim_with_eta_and_the_same_noise_is_our_ancestral_sampler(eta):
    """diffusers' DDIMScheduler with eta > 0, given as variance noise the draws scoredae's sampler
    makes (one standard normal per step but the last), equals :func:`~scoredae.sampling.ddim`."""
    from scoredae.rng import randn
    from scoredae.sampling import ddim

    unet = tiny_unet(16)
    scheduler = diffusers.DDIMScheduler(clip_sample=False)
    scheduler.set_timesteps(10)
    x_T = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(17), dtype=F64)
    noise = torch.Generator().manual_seed(18)
    x = x_T
    for i, t in enumerate(scheduler.timesteps):
        z = randn(x.shape, noise, dtype=F64) if i < len(scheduler.timesteps) - 1 else torch.zeros_like(x)
        with torch.no_grad():
            x = scheduler.step(unet(x, t).sample, t, x, eta=eta, variance_noise=z).prev_sample
    denoiser = from_diffusers(unet, scheduler, data_range=(0.0, 1.0))
    sigmas = ve_levels(denoiser, scheduler)
    alpha_T = denoiser.schedule.alpha(scheduler.timesteps[0].to(F64))
    ours = ddim(denoiser, x_T / alpha_T, sigmas, eta=eta, generator=torch.Generator().manual_seed(18)).samples
    close(ours, x)
