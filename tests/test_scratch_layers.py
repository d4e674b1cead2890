"""Every scratch module's forward and backward against its torch.nn twin under autograd, in
float64; the initialisers against torch.nn.init; no autograd graph; clear errors on bad input."""

import math
import random

import pytest
import torch

import scoredae.scratch as S

TOL = 1e-10  # relative error, float64


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-300))


def autograd_errors(module: S.Module, x: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
    """Relative errors of the output, the input gradient and every parameter gradient of
    ``module`` against ``module.to_torch()`` differentiated by autograd, for a random upstream
    gradient."""
    twin = module.to_torch()
    x_t = x.clone().requires_grad_(True)
    y_t = twin(x_t)
    g = torch.randn(y_t.shape, generator=generator, dtype=x.dtype)
    y_t.backward(g)
    module.zero_grad()
    y = module(x)
    grad_x = module.backward(g)
    errors = {"output": rel_err(y, y_t.detach()), "grad_input": rel_err(grad_x, x_t.grad)}
    for i, (p, p_t) in enumerate(zip(module.params(), twin.parameters(), strict=True)):
        errors[f"param{i}"] = rel_err(p.grad, p_t.grad)
    return errors


def conv_configs(n: int, seed: int = 0):
    rng = random.Random(seed)
    configs = []
    while len(configs) < n:
        c = {"in_ch": rng.randint(1, 4), "out_ch": rng.randint(1, 5), "kernel_size": rng.randint(1, 5),
                 "stride": rng.randint(1, 3), "padding": rng.randint(0, 2)}
        h, w = rng.randint(4, 13), rng.randint(4, 13)
        if min(h, w) + 2 * c["padding"] >= c["kernel_size"]:
            configs.append((c, (rng.randint(1, 3), c["in_ch"], h, w)))
    return configs


@pytest.mark.parametrize("config,shape", conv_configs(30))
def test_conv2d_matches_autograd(config, shape):
    g = torch.Generator().manual_seed(hash(str(config)) % 2**31)
    conv = S.Conv2d(**config, generator=g, dtype=torch.float64)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    errors = autograd_errors(conv, x, g)
    assert max(errors.values()) <= TOL, errors


@pytest.mark.parametrize("seed", range(5))
def test_linear_and_elementwise_modules_match_autograd(seed):
    g = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    n, f_in, f_out = rng.randint(1, 9), rng.randint(1, 9), rng.randint(1, 9)
    image = torch.randn(rng.randint(1, 3), rng.randint(1, 4), rng.randint(1, 7), rng.randint(1, 7),
                        generator=g, dtype=torch.float64) * 4
    cases = [
        (S.Linear(f_in, f_out, generator=g, dtype=torch.float64),
         torch.randn(n, f_in, generator=g, dtype=torch.float64)),
        (S.ReLU(), image),
        (S.Sigmoid(), image),
        (S.NearestUpsampling(rng.randint(1, 3)), image),
        (S.Upsampling(image.shape[1], rng.randint(1, 4), kernel_size=rng.choice([1, 3, 5]),
                      scale_factor=rng.randint(1, 3), generator=g, dtype=torch.float64), image),
    ]
    for module, x in cases:
        errors = autograd_errors(module, x, g)
        assert max(errors.values()) <= TOL, (module, errors)


def test_autoencoder_matches_autograd_and_builds_no_graph():
    g = torch.Generator().manual_seed(3)
    net = S.conv_autoencoder(in_ch=2, channels=(3, 5, 4), generator=g, dtype=torch.float64)
    x = torch.randn(2, 2, 16, 24, generator=g, dtype=torch.float64).requires_grad_(True)
    errors = autograd_errors(net, x.detach(), g)
    assert max(errors.values()) <= TOL, errors
    with torch.enable_grad():  # even with autograd on and an input that asks for it
        y = net(x)
        grad_x = net.backward(torch.ones_like(y))
    assert y.grad_fn is None and not y.requires_grad
    assert grad_x.grad_fn is None and not grad_x.requires_grad
    assert all(p.grad_fn is None and p.grad.grad_fn is None and not p.requires_grad for p in net.params())


def test_sigmoid_clips_extreme_inputs():
    x = torch.tensor([-1e4, -100.0, 0.0, 100.0, 1e4], dtype=torch.float64)
    sig = S.Sigmoid()
    y = sig(x)
    assert torch.isfinite(y).all() and torch.isfinite(sig.backward(torch.ones_like(y))).all()
    assert torch.allclose(y, torch.sigmoid(x), rtol=0, atol=1e-40)


def test_mse_matches_autograd():
    g = torch.Generator().manual_seed(0)
    p, t = (torch.randn(3, 1, 5, 4, generator=g, dtype=torch.float64) for _ in range(2))
    p_t = p.clone().requires_grad_(True)
    value_t = torch.nn.functional.mse_loss(p_t, t)
    value_t.backward()
    mse = S.MSE()
    assert rel_err(mse(p, t), value_t.detach()) <= TOL
    assert rel_err(mse.backward(), p_t.grad) <= TOL


@pytest.mark.parametrize("ours,theirs", [
    (S.pytorch_default, lambda w, b, g: (torch.nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=g),
                                         b.uniform_(-1 / math.sqrt(w[0].numel()), 1 / math.sqrt(w[0].numel()),
                                                    generator=g))),
    (S.xavier_uniform, lambda w, b, g: (torch.nn.init.xavier_uniform_(w, generator=g), b.zero_())),
    (S.he_normal, lambda w, b, g: (torch.nn.init.kaiming_normal_(w, nonlinearity="relu", generator=g),
                                   b.zero_())),
])
def test_initialisers_equal_torch_nn_init(ours, theirs):
    conv = S.Conv2d(3, 7, 5, init=ours, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    w, b = torch.empty_like(conv.weight), torch.empty_like(conv.bias)
    theirs(w, b, torch.Generator().manual_seed(1))
    # the same draws; torch's bound gain * sqrt(3 / fan_in) rounds differently from 1 / sqrt(fan_in)
    assert torch.allclose(conv.weight, w, rtol=1e-14, atol=0) and torch.allclose(conv.bias, b, rtol=1e-14, atol=0)
    assert conv.weight.std() > 0.01  # really random, not zeros on both sides


def test_pytorch_default_equals_torch_conv_init():
    """Same bound as torch.nn.Conv2d.reset_parameters: |w|, |b| <= 1/sqrt(fan_in), variance bound^2/3."""
    conv = S.Conv2d(16, 64, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    bound = 1 / math.sqrt(16 * 9)
    assert conv.weight.abs().max() <= bound and conv.bias.abs().max() <= bound
    n = conv.weight.numel()  # variance of U(-a, a) is a^2/3; the estimate's s.e. is ~ a^2/3 * sqrt(0.8/n)
    assert abs(conv.weight.var() / (bound**2 / 3) - 1) < 4 * math.sqrt(0.8 / n)


def test_bad_input_is_refused_clearly():
    conv = S.Conv2d(3, 4, 3, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        conv.backward(torch.zeros(1, 4, 3, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="size 3 along dimension 1"):
        conv(torch.zeros(1, 2, 8, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match="4 dimensions"):
        conv(torch.zeros(3, 8, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match="dtype"):
        conv(torch.zeros(1, 3, 8, 8, dtype=torch.float32))
    with pytest.raises(ValueError, match="smaller than the kernel"):
        conv(torch.zeros(1, 3, 2, 2, dtype=torch.float64))
    y = conv(torch.zeros(1, 3, 8, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"grad_output must have the output's shape \(1, 4, 6, 6\)"):
        conv.backward(torch.zeros(1, 4, 8, 8, dtype=torch.float64))
    assert conv.backward(torch.zeros_like(y)).shape == (1, 3, 8, 8)
    net = S.Sequential(S.Conv2d(1, 4, 3), S.ReLU(), S.Conv2d(5, 2, 3))  # 4 channels out, 5 expected in
    with pytest.raises(ValueError, match=r"Sequential layer 2: Conv2d\(5, 2.*size 5 along dimension 1"):
        net(torch.zeros(1, 1, 9, 9))
    with pytest.raises(ValueError, match="in_ch"):
        S.Conv2d(0, 1, 3)
    with pytest.raises(ValueError, match="kernel_size.*odd"):
        S.Upsampling(2, 2, kernel_size=2)
    with pytest.raises(TypeError, match="layers\\[1\\]"):
        S.Sequential(S.ReLU(), torch.nn.ReLU())
    with pytest.raises(ValueError, match="same shape"):
        S.MSE()(torch.zeros(2, 3), torch.zeros(3, 2))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        S.MSE().backward()
    with pytest.raises(ValueError, match="lr must be > 0"):
        S.Adam(conv.params(), lr=0.0)


@pytest.mark.parametrize("config,shape", conv_configs(8, seed=1))
def test_unfold_and_fold_equal_torch_up_to_column_order(config, shape):
    """Our unfold is F.unfold with rows (b, i, j) and columns (u, v, c); our fold is F.fold on the
    same layout, hence the adjoint of unfold."""
    from scoredae.scratch.im2col import Workspace, fold, unfold
    k, s, p = config["kernel_size"], config["stride"], config["padding"]
    b, c, h, w = shape
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    ref = torch.nn.functional.unfold(x, k, padding=p, stride=s)  # (B, C k k, L)
    ref = ref.view(b, c, k, k, -1).permute(0, 4, 2, 3, 1).reshape(-1, k * k * c)  # (B L, k k C)
    assert torch.equal(unfold(x, k, s, p, Workspace()), ref)
    cols = torch.randn(ref.shape, generator=g, dtype=torch.float64)
    torch_cols = cols.view(b, -1, k, k, c).permute(0, 4, 2, 3, 1).reshape(b, c * k * k, -1)
    expected = torch.nn.functional.fold(torch_cols, (h, w), k, padding=p, stride=s)
    assert rel_err(fold(cols, x.shape, k, s, p), expected) <= TOL


def test_results_do_not_alias_reused_buffers():
    g = torch.Generator().manual_seed(0)
    conv = S.Conv2d(2, 3, 3, padding=1, generator=g, dtype=torch.float64)
    x1, x2 = (torch.randn(2, 2, 6, 6, generator=g, dtype=torch.float64) for _ in range(2))
    y1 = conv(x1)
    y1_copy = y1.clone()
    grad1 = conv.backward(torch.ones_like(y1))
    grad1_copy = grad1.clone()
    conv(x2)
    conv.backward(torch.randn(y1.shape, generator=g, dtype=torch.float64))
    assert torch.equal(y1, y1_copy) and torch.equal(grad1, grad1_copy)
