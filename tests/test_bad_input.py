"""Bad input, one case a line: each is refused with an exception of the expected type whose message
names the argument and what was expected (or the step and what to do). Nothing is silently wrong,
nothing crashes with a message from deep inside torch."""

import json
import math
import warnings

import pytest
import torch

import scoredae.scratch as S
from scoredae import GaussianMixture, MixtureDenoiser, TweedieScore
from scoredae.cli import main
from scoredae.data import mnist
from scoredae.eval import frechet_distance
from scoredae.inverse import posterior_langevin
from scoredae.nets import UNet
from scoredae.nets.checkpoints import save_checkpoint
from scoredae.nets.resunet import ResUNet
from scoredae.recipes import generation as R
from scoredae.recipes import posterior as P
from scoredae.sampling import (
    SamplerDivergedError,
    annealed_langevin,
    effective_sample_size,
    geometric_sigmas,
    mala,
    ula,
)
from scoredae.train import TrainConfig, train_denoiser

F64 = torch.float64
NAN = float("nan")


def gm(weights=(0.5, 0.5), means=((-1.0, 0.0), (1.0, 0.0)), covs=0.3):
    return GaussianMixture(torch.tensor(weights, dtype=F64), torch.tensor(means, dtype=F64),
                           torch.as_tensor(covs, dtype=F64))


def gaussian_score(x):
    return -x / 0.5  # N(0, 0.5)


def x2(n=4):
    return torch.zeros(n, 2, dtype=F64)


def unet(**level):
    torch.manual_seed(0)
    return UNet(width=4, **(level or {"sigma_range": (0.01, 1.0)})).eval()


def images(n=2, dtype=torch.float32):
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0)).to(dtype)


def scratch_fit(lr):
    net = S.mlp(8, 16, generator=torch.Generator().manual_seed(0))  # a linear output: nothing bounds it
    points = torch.rand(4, 8, generator=torch.Generator().manual_seed(1))
    return S.fit(net, S.SGD(net.params(), lr=lr), [(points, points)] * 5)


def mask_forward():
    return (lambda x: x, lambda r: r)


CASES = [
    # --- Gaussian mixtures: NaN and inf parameters, a level that is not one finite float
    ("mixture NaN weight", lambda: gm(weights=(NAN, 0.5)), ValueError, r"weights: expected finite values"),
    ("mixture NaN mean", lambda: gm(means=((NAN, 0.0), (1.0, 0.0))), ValueError, r"means: expected finite values"),
    ("mixture inf cov", lambda: gm(covs=(0.3, math.inf)), ValueError, r"covs: expected finite values"),
    ("mixture NaN cov", lambda: gm(covs=NAN), ValueError, r"covs: expected finite values"),
    ("score at sigma inf", lambda: gm().score(x2(), math.inf), ValueError, r"sigma: expected a finite number >= 0, got inf"),
    ("score at a tensor of levels", lambda: gm().score(x2(), torch.ones(4)), ValueError,
     r"sigma: expected one number \(a float\), got a tensor of shape \(4,\)"),
    ("posterior at sigma 0", lambda: gm().posterior(x2(), 0.0), ValueError, r"sigma: expected a finite number > 0"),
    ("noised at sigma -1", lambda: gm().noised(-1.0), ValueError, r"sigma: expected a finite number >= 0, got -1"),
    # --- sampler arguments
    ("geometric_sigmas inf", lambda: geometric_sigmas(math.inf, 0.01, 5), ValueError, r"sigma_max: expected a finite number"),
    ("ESS of a NaN draw", lambda: effective_sample_size(torch.tensor([[0.0, 1.0, NAN, 2.0, 0.5]])), ValueError,
     r"chains: expected finite draws"),
    ("ula zero chains", lambda: ula(gaussian_score, torch.zeros(0, 2), 0.1, 5), ValueError,
     r"x0: expected at least one chain"),
    ("ula NaN x0", lambda: ula(gaussian_score, torch.full((2, 2), NAN), 0.1, 5), ValueError, r"x0: expected finite values"),
    ("ula score of another shape", lambda: ula(lambda x: x.mean(1, keepdim=True), x2(), 0.1, 5), ValueError,
     r"score: expected an output of the shape of x, \(4, 2\), got \(4, 1\)"),
    ("ula unstable step", lambda: ula(gaussian_score, torch.ones(64, 1), 3.0, 5, generator=torch.Generator().manual_seed(0)),
     SamplerDivergedError, r"diverged by step 5 .*grew geometrically.*try a smaller step size \(step_size=3\)"),
    # steady growth, 1.5-fold a step and 25-fold in all, between two checks: still reported
    ("ula step 2.5 on N(0, 1), eight steps", lambda: ula(gaussian_score, torch.randn(64, 1, generator=torch.Generator().manual_seed(0)),
                                                        2.5, 8, generator=torch.Generator().manual_seed(0)),
     SamplerDivergedError, r"diverged by step 8 .*grew geometrically"),
    ("ula step 0", lambda: ula(gaussian_score, x2(), 0.0, 5), ValueError, r"step_size: expected a finite number > 0"),
    ("mala NaN log_prob", lambda: mala(lambda x: torch.full(x.shape[:1], NAN), gaussian_score, x2(), 0.1, 5), ValueError,
     r"log_prob: expected finite values at x0"),
    ("mala zero chains", lambda: mala(lambda x: x.sum(1), gaussian_score, torch.zeros(0, 2), 0.1, 5), ValueError,
     r"x0: expected at least one chain"),
    ("annealed zero chains", lambda: annealed_langevin(lambda x, s: -x, torch.zeros(0, 2), [1.0, 0.5], 2, 1e-3), ValueError,
     r"x0: expected at least one chain"),
    ("annealed inf level", lambda: annealed_langevin(lambda x, s: -x, x2(), [math.inf, 0.5], 2, 1e-3), ValueError,
     r"sigmas: expected a strictly decreasing sequence of positive levels"),
    ("posterior alpha < 0", lambda: posterior_langevin(gaussian_score, x2(), mask_forward(), 0.1, x2(), 0.01, 5, alpha=-1.0),
     ValueError, r"alpha: expected a finite number >= 0, got -1"),
    ("posterior NaN alpha", lambda: posterior_langevin(gaussian_score, x2(), mask_forward(), 0.1, x2(), 0.01, 5, alpha=NAN),
     ValueError, r"alpha: expected a finite number >= 0, got nan"),
    ("posterior NaN y", lambda: posterior_langevin(gaussian_score, torch.full((4, 2), NAN), mask_forward(), 0.1, x2(), 0.01, 5),
     ValueError, r"y: expected finite values"),
    ("posterior zero chains", lambda: posterior_langevin(gaussian_score, x2(0), mask_forward(), 0.1, x2(0), 0.01, 5),
     ValueError, r"x0: expected at least one chain"),
    ("posterior huge step, clipped", lambda: posterior_langevin(
        gaussian_score, x2(), mask_forward(), 0.1, x2(), 1e6, 20, clip=(0.0, 1.0), generator=torch.Generator().manual_seed(0)),
     SamplerDivergedError, r"diverged by step 10 .*step_size=1e\+06"),
    # --- recipes for trained models
    ("posterior_sampling noise_sigma 0", lambda: P.posterior_sampling(unet(), images(1), noise_sigma=0.0), ValueError,
     r"noise_sigma: expected a finite number > 0, got 0"),
    ("posterior_sampling step_size 0", lambda: P.posterior_sampling(unet(), images(1), noise_sigma=0.1, step_size=0.0),
     ValueError, r"step_size: expected a finite number > 0, got 0"),
    ("annealed_generation n 0", lambda: R.annealed_generation(unet(), 0), ValueError, r"n: expected a positive integer"),
    ("langevin step 0", lambda: R.langevin_at_level(unet(sigma=0.5), images(), step_size=0.0), ValueError,
     r"step_size: expected a finite number > 0"),
    # --- denoisers
    ("uint8 image", lambda: unet()(images().mul(255).to(torch.uint8), 0.1), TypeError,
     r"x: expected a floating-point tensor in \[0, 1\], got torch.uint8"),
    ("float64 image, float32 model", lambda: unet()(images(dtype=F64), 0.1), TypeError,
     r"x: expected the dtype of the model's weights, torch.float32, got torch.float64"),
    ("float32 image, float64 model", lambda: unet().double()(images(), 0.1), TypeError,
     r"x: expected the dtype of the model's weights, torch.float64, got torch.float32"),
    ("sigma 0", lambda: unet()(images(), 0.0), ValueError, r"sigma: expected a finite number > 0, got 0.0"),
    ("sigma NaN", lambda: unet()(images(), NAN), ValueError, r"sigma: expected a finite number > 0, got nan"),
    ("sigma of 3 for 2 images", lambda: unet()(images(), torch.ones(3)), ValueError, r"sigma: expected .* shape \(2,\)"),
    ("Tweedie score at sigma inf", lambda: TweedieScore(MixtureDenoiser(gm()))(x2(), math.inf), ValueError,
     r"sigma: expected a finite number > 0, got inf"),
    # --- training
    ("TrainConfig lr 0", lambda: TrainConfig(lr=0.0), ValueError, r"lr: expected a finite number > 0"),
    ("TrainConfig amp fp8", lambda: TrainConfig(amp="fp8"), ValueError, r"amp: expected None, 'bf16' or 'fp16'"),
    ("train_denoiser eval_images 0", lambda: train_denoiser(unet(), images(), images(), TrainConfig(steps=1), eval_images=0),
     ValueError, r"eval_images: expected a positive integer"),
    ("resume with nothing to resume", lambda: train_denoiser(unet(), images(), images(), TrainConfig(steps=1), resume=True),
     ValueError, r"resume: expected out, the folder of the run to continue, got None"),
    ("scratch fit at lr 1e9", lambda: scratch_fit(lr=1e9), RuntimeError,
     r"training diverged \(loss (nan|inf)\); try a smaller learning rate"),
    # --- metrics
    ("Frechet distance of one sample", lambda: frechet_distance(torch.ones(1, 3), torch.randn(5, 3)), ValueError,
     r"a: a covariance needs at least 2 feature vectors"),
]


@pytest.mark.parametrize("name, call, error, match", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_clearly(name, call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_a_noise_conditional_model_warns_once_outside_its_range():
    model = unet()
    with pytest.warns(UserWarning, match=r"sigma=5 is outside the range \[0.01, 1\] this UNet was trained on"):
        model(images(), 5.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model(images(), 1e-6)  # warned once already
        unet()(images(), 0.5)  # inside the range: no word


# --- the command line: one line saying what to do, never a traceback


@pytest.fixture
def tiny_data(monkeypatch):
    """MNIST stand-ins: 16 training and 8 test images."""
    monkeypatch.setattr(mnist, "load_mnist", lambda split: (images(16 if split == "train" else 8), None))


@pytest.fixture
def stem(tmp_path):
    model = unet()
    save_checkpoint(tmp_path / "cond", model, {"model": "UNet", "config": model.config})
    return str(tmp_path / "cond")


def cli_error(argv) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code != 0
    return str(exit_info.value.code)


TRAIN = ["train", "--model", "unet", "--option", "width=4", "--sigma-range", "0.01", "1", "--batch-size", "8",
         "--eval-images", "8", "--no-progress"]


@pytest.mark.parametrize("argv", [
    ["sample", "--model", "{stem}", "--method", "annealed", "--steps", "0", "--out", "{tmp}/a.png"],
    ["sample", "--model", "{stem}", "--method", "annealed", "--step-size", "0", "--out", "{tmp}/a.png"],
    ["sample", "--model", "{stem}", "--method", "annealed", "--n", "0", "--out", "{tmp}/a.png"],
    ["sample", "--model", "{stem}", "--method", "posterior", "--index", "-1", "--out", "{tmp}/a.png"],
    ["train", "--model", "unet", "--sigma", "0.5", "--steps", "1", "--train-images", "0", "--out", "{tmp}/r"],
    ["train", "--model", "unet", "--sigma", "0", "--steps", "1", "--out", "{tmp}/r"],
    ["eval", "--images", "0"],
    ["eval", "--sigmas", "-0.5", "0"],
])
def test_the_parser_refuses_numbers_out_of_range(argv, stem, tmp_path, capsys):
    argv = [a.format(stem=stem, tmp=tmp_path) for a in argv]
    assert cli_error(argv) == "2"
    err = capsys.readouterr().err
    assert "expected a positive integer" in err or "expected a finite number > 0" in err or "integer >= 0" in err, err


@pytest.mark.parametrize("argv, match", [
    (["sample", "--model", "{stem}", "--method", "posterior", "--index", "10000", "--out", "{tmp}/a.png"],
     r"scoredae sample: --index: expected a test digit in 0..7, got 10000"),
    (["sample", "--model", "{stem}", "--method", "annealed", "--n", "1", "--quality", "--out", "{tmp}/a.png"],
     r"--quality: the Frechet distance needs at least 2 samples, got --n 1"),
    (["sample", "--model", "{stem}", "--method", "annealed", "--out", "/proc/unwritable/a.png"],
     r"scoredae sample: --out: the folder /proc/unwritable (cannot be made|is not writable)"),
    (["sample", "--model", "{stem}", "--method", "annealed", "--out", "{tmp}/a_file/b/a.png"],
     r"scoredae sample: --out: .*a_file is a file, so no folder .*a_file/b can be made there"),
    (["denoise", "{tmp}/a_file", "--model", "{stem}", "--out", "{tmp}/a_file/b.png"],
     r"scoredae denoise: --out: .*a_file is a file, so no folder"),
    (["train", "--model", "unet", "--sigma", "0.5", "--steps", "1", "--out", "{tmp}/a_file"],
     r"scoredae train: --out: .*a_file is a file, so no folder"),
    (["demo", "--out", "{tmp}/a_file/figures"], r"scoredae demo: --out: .*a_file is a file"),
    (["sample", "--model", "{stem}", "--label", "3", "--out", "{tmp}/a.png"],
     r"scoredae sample: --label: .*cond is unconditional \(trained without labels\)"),
    (["sample", "--model", "{stem}", "--method", "annealed", "--label", "3", "--out", "{tmp}/a.png"],
     r"--label: only the ODE solvers \(heun, euler, dpm\+\+2m, dpm\+\+3m, ipndm, unipc\) take it, not annealed"),
    (["sample", "--model", "{stem}", "--guidance", "2", "--out", "{tmp}/a.png"], r"--guidance: give the --label"),
    (["sample", "--model", "{stem}", "--method", "heun", "--nfe", "2", "--out", "{tmp}/a.png"],
     r"nfe: heun needs at least 3 denoiser calls \(two steps\), got 2"),
    (["sample", "--model", "{labelled}", "--method", "dpm++2m", "--nfe", "3", "--label", "1", "--guidance", "1",
      "--out", "{tmp}/a.png"], r"nfe: dpm\+\+2m with guidance needs at least 4 denoiser calls \(two steps\), got 3"),
    (["sample", "--model", "{fixed}", "--method", "ipndm", "--out", "{tmp}/a.png"],
     r"ipndm generation needs a noise-conditional denoiser .* trained at sigma = 0.5 only"),
    (["sample", "--model", "{tmp}/none", "--method", "annealed", "--out", "{tmp}/a.png"],
     r"--model: expected a shipped model .* or a checkpoint path"),
    (["sample", "--model", "{stem}", "--method", "annealed", "--device", "bogus", "--out", "{tmp}/a.png"],
     r"scoredae sample: device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got 'bogus'"),
    (["sample", "--model", "{stem}", "--method", "annealed", "--device", "cuda", "--out", "{tmp}/a.png"],
     r"device: 'cuda' was asked for, but torch sees no CUDA device"),
    (["sample", "--model", "{stem}", "--method", "posterior", "--step-size", "1e6", "--steps", "20", "--out", "{tmp}/a.png"],
     r"scoredae sample: the chain diverged by step \d+ .*step_size=1e\+06"),
    (["eval", "--models", "nosuch", "--images", "4"], r"--models: expected names of shipped models \[.*'unet_ncsn'.*\], got \['nosuch'\]"),
    (["data", "fetch", "mnist", "--root", "/proc/unwritable"], r"scoredae data: .*unwritable"),
    ([*TRAIN, "--steps", "1", "--resume", "--out", "{tmp}/fresh"], r"resume: there is no checkpoint .*fresh/last.json"),
])
def test_the_command_line_says_what_to_do_in_one_line(argv, match, stem, tmp_path, tiny_data):
    if "cuda" in argv and torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    (tmp_path / "a_file").write_text("a file where a folder is expected")
    labelled = ResUNet(widths=(8, 8), attention=(), head_channels=8, num_classes=10, sigma_range=(0.01, 1.0))
    save_checkpoint(tmp_path / "labelled", labelled, {"model": "ResUNet", "config": labelled.config})
    fixed = unet(sigma=0.5)
    save_checkpoint(tmp_path / "fixed", fixed, {"model": "UNet", "config": fixed.config})
    names = {"stem": stem, "tmp": tmp_path, "labelled": tmp_path / "labelled", "fixed": tmp_path / "fixed"}
    message = cli_error([a.format(**names) for a in argv])
    assert len(message.splitlines()) == 1 and __import__("re").search(match, message), message


def test_a_checkpoint_without_its_json_is_named(stem, tmp_path):
    (tmp_path / "cond.json").unlink()
    message = cli_error(["sample", "--model", stem, "--method", "annealed", "--out", str(tmp_path / "a.png")])
    assert "its metadata file" in message and "cond.json does not exist" in message, message


def test_resuming_with_other_settings_is_refused_naming_them(tmp_path, tiny_data):
    assert main([*TRAIN, "--steps", "2", "--out", str(tmp_path)]) == 0
    message = cli_error([*TRAIN, "--steps", "4", "--lr", "0.01", "--batch-size", "4", "--resume", "--out", str(tmp_path)])
    assert "batch_size 8 -> 4" in message and "lr 0.002 -> 0.01" in message
    sigma = [*TRAIN[:5], "--sigma", "0.5", *TRAIN[8:]]
    message = cli_error([*sigma, "--steps", "4", "--resume", "--out", str(tmp_path)])
    assert "model sigma None -> 0.5" in message and "model sigma_range [0.01, 1.0] -> None" in message
    assert json.loads((tmp_path / "last.json").read_text())["step"] == 2  # nothing was relabelled
