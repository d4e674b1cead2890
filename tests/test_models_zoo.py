"""The convolutional, DRUNet, patch-transformer and hybrid MNIST denoisers.

The sigma contract, rebuilding from the JSON config and the refusal of bad images or noise levels
are tested for every registered model in test_models_core.py; here: what is specific to these."""

from __future__ import annotations

import math

import deepinv
import pytest
import torch

from scoredae.data import load_mnist, mnist_available
from scoredae.data.mnist import MNIST_PIXELS
from scoredae.eval import evaluate_psnr
from scoredae.nets.checkpoints import save_checkpoint
from scoredae.nets.conv import ConvDAE, init_logit_bias_
from scoredae.nets.drunet import DRUNetDenoiser
from scoredae.nets.hybrid import HybridTransformerUNet
from scoredae.nets.registry import WEIGHTS_DIR, list_pretrained, load_pretrained
from scoredae.nets.tiling import crop_center, pad_to_multiple
from scoredae.nets.transformer import (
    PatchTransformer,
    patchify,
    sinusoidal_encoding,
    unpatchify,
)

SMALL = {  # small configurations keep the tests fast
    "conv": lambda **lvl: ConvDAE(widths=(4, 8, 8), **lvl),
    "drunet": lambda **lvl: DRUNetDenoiser(nc=(4, 8, 8, 8), nb=1, **lvl),
    "transformer-linear": lambda **lvl: PatchTransformer(patch_size=4, d_model=16, depth=1, heads=2, head="linear", **lvl),
    "transformer-conv": lambda **lvl: PatchTransformer(patch_size=7, d_model=16, depth=1, heads=2, head="conv", **lvl),
    "transformer-hybrid": lambda **lvl: PatchTransformer(patch_size=4, d_model=16, depth=1, heads=2, head="hybrid", **lvl),
    "hybrid": lambda **lvl: HybridTransformerUNet(width=4, d_model=16, depth=1, heads=2, tokens_channels=4, **lvl),
}
SIZE = (28, 28)
LEVELS = {"fixed": {"sigma": 0.5}, "conditional": {"sigma_range": (0.05, 1.0)}}


def build(name: str, level: str):
    torch.manual_seed(0)
    return SMALL[name](**LEVELS[level]).eval()


def images(batch: int = 3, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", SMALL)
def test_output_shape_and_gradients_reach_every_parameter(name):
    model = build(name, "conditional").train()
    out = model(images(), torch.tensor([0.1, 0.5, 0.9]))
    assert out.shape == (3, 1, 28, 28)
    out.square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and bool(p.grad.abs().sum() > 0), pname


@pytest.mark.parametrize("name", SMALL)
def test_fixed_model_ignores_sigma_argument(name):
    model = build(name, "fixed")
    x = images()
    torch.testing.assert_close(model(x, 0.1), model(x), rtol=0, atol=0)


@pytest.mark.parametrize("patch_size", [1, 4, 7, 14])
@pytest.mark.parametrize("channels", [1, 2])
def test_patchify_unpatchify_are_exact_inverses(patch_size, channels):
    x = torch.randn(2, channels, 28, 28)
    tokens = patchify(x, patch_size)
    n = (28 // patch_size) ** 2
    assert tokens.shape == (2, n, channels * patch_size**2)
    assert torch.equal(unpatchify(tokens, patch_size, (28, 28)), x)
    t = torch.randn(2, n, channels * patch_size**2)
    assert torch.equal(patchify(unpatchify(t, patch_size, (28, 28)), patch_size), t)


def test_patchify_orders_patches_row_major():
    x = torch.arange(2 * 28 * 28, dtype=torch.float32).reshape(1, 2, 28, 28)
    tokens = patchify(x, 7)  # (1, 16, 98)
    row, col = 1, 2  # token 1 * 4 + 2
    expected = x[0, :, 7 * row : 7 * row + 7, 7 * col : 7 * col + 7].reshape(-1)
    assert torch.equal(tokens[0, 4 * row + col], expected)


def test_patchify_rejects_non_divisor_and_bad_tokens():
    with pytest.raises(ValueError, match="patch_size"):
        patchify(torch.zeros(1, 1, 28, 28), 5)
    with pytest.raises(ValueError, match="tokens"):
        unpatchify(torch.zeros(1, 48, 16), 4, (28, 28))


def test_positional_encoding_equals_formula():
    n, d = 49, 64
    pe = sinusoidal_encoding(n, d)
    expected = torch.tensor(
        [[(math.sin if j % 2 == 0 else math.cos)(pos / 10000 ** ((j - j % 2) / d)) for j in range(d)] for pos in range(n)]
    )
    torch.testing.assert_close(pe, expected, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="dim"):
        sinusoidal_encoding(4, 7)


def test_encoder_adds_positional_encoding_to_embedded_patches():
    model = PatchTransformer(patch_size=4, d_model=16, depth=1, heads=2, sigma=0.5)
    x = images(2)
    embedded = model.encoder.embed(patchify(x, 4))  # (2, 49, 16)
    captured = {}
    hook = model.encoder.layers.register_forward_pre_hook(lambda m, args: captured.update(tokens=args[0]))
    model(x)
    hook.remove()
    torch.testing.assert_close(captured["tokens"], embedded + sinusoidal_encoding(49, 16))


def test_the_positional_encoding_follows_the_patch_grid_of_the_input():
    """A 56 x 56 input has a 14 x 14 grid: 196 positions, the first 49 those of a 28 x 28 input."""
    model = PatchTransformer(patch_size=4, d_model=16, depth=1, heads=2, sigma=0.5)
    captured = {}
    hook = model.encoder.layers.register_forward_pre_hook(lambda m, args: captured.update(tokens=args[0]))
    x = torch.rand(2, 1, 56, 56)
    assert model(x).shape == x.shape
    hook.remove()
    embedded = model.encoder.embed(patchify(x, 4))  # (2, 196, 16)
    torch.testing.assert_close(captured["tokens"], embedded + sinusoidal_encoding(196, 16))


def head_of(head: str, patch_size: int):
    torch.manual_seed(0)
    return PatchTransformer(patch_size=patch_size, d_model=16, depth=1, heads=2, head=head, sigma=0.5).head


@pytest.mark.parametrize("patch_size", [4, 7])
def test_linear_head_maps_each_token_to_its_own_patch(patch_size):
    head = head_of("linear", patch_size)
    n = (28 // patch_size) ** 2
    tokens = torch.randn(2, n, 16)
    changed = tokens.clone()
    changed[:, 5] += 1.0
    diff = (head(changed, SIZE) - head(tokens, SIZE)).abs().sum(dim=(0, 1)) > 0  # (28, 28)
    row, col = divmod(5, 28 // patch_size)
    expected = torch.zeros(28, 28, dtype=torch.bool)
    expected[row * patch_size : (row + 1) * patch_size, col * patch_size : (col + 1) * patch_size] = True
    assert torch.equal(diff, expected)


@pytest.mark.parametrize("patch_size", [4, 7])
def test_conv_head_is_upsampling_plus_residual_projection(patch_size):
    head = head_of("conv", patch_size)
    tokens = torch.randn(2, (28 // patch_size) ** 2, 16)
    shortcut = unpatchify(head.project(tokens), patch_size, (28, 28))
    assert not torch.allclose(head(tokens, SIZE), shortcut)
    with torch.no_grad():  # switch the upsampling path off: only the projection is left
        head.refine[-1].weight.zero_()
        head.refine[-1].bias.zero_()
    torch.testing.assert_close(head(tokens, SIZE), shortcut)


@pytest.mark.parametrize("patch_size", [4, 7])
def test_hybrid_head_refines_the_mlp_image_into_the_unit_interval(patch_size):
    head = head_of("hybrid", patch_size)
    tokens = 10 * torch.randn(2, (28 // patch_size) ** 2, 16)
    out = head(tokens, SIZE)
    assert out.shape == (2, 1, 28, 28) and bool(((out >= 0) & (out <= 1)).all())
    with torch.no_grad():  # switch the refinement off: sigmoid of the MLP head's image is left
        head.refine[-1].weight.zero_()
        head.refine[-1].bias.zero_()
    torch.testing.assert_close(head(tokens, SIZE), torch.sigmoid(head.mlp_head(tokens, SIZE)))


def test_in_channels_of_fixed_and_conditional_models():
    for level, c in (("fixed", 1), ("conditional", 2)):
        conv = build("conv", level)
        assert conv.input_channels == c and conv.encoder[0].in_channels == c
        tf = build("transformer-linear", level)
        assert tf.encoder.embed.in_features == c * 16
        hyb = build("hybrid", level)
        assert hyb.enc1[0].in_channels == c and hyb.tokens.embed.in_features == c * 16
        # DRUNet appends the noise-level map itself: image + map for both kinds
        assert build("drunet", level).net.m_head.in_channels == 2


def test_fixed_drunet_feeds_its_trained_sigma():
    model = build("drunet", "fixed")
    x = images()
    padded, pad = pad_to_multiple(x, 8)
    direct = crop_center(model.net(padded, torch.full((3,), 0.5)), pad)
    torch.testing.assert_close(model(x, 0.2), direct, rtol=0, atol=0)


@pytest.mark.parametrize("size", [(28, 28), (29, 30), (32, 32)])
def test_drunet_padding_round_trip(size):
    x = torch.randn(2, 1, *size)
    padded, pad = pad_to_multiple(x, 8)
    assert all(s % 8 == 0 and 0 <= s - s0 < 8 for s, s0 in zip(padded.shape[-2:], size))
    assert torch.equal(crop_center(padded, pad), x)
    if size == (28, 28):
        assert pad == (2, 2, 2, 2)
        torch.testing.assert_close(padded[..., 0, 2:-2], x[..., 2, :])  # reflection about the border row


def test_drunet_is_a_from_scratch_deepinv_drunet():
    model = build("drunet", "conditional")
    assert isinstance(model.net, deepinv.models.DRUNet)
    assert isinstance(model, deepinv.models.Denoiser)


def test_sigmoid_outputs_start_at_the_mean_pixel():
    layer = torch.nn.Conv2d(4, 1, 3)
    init_logit_bias_(layer, 0.2)
    torch.testing.assert_close(torch.sigmoid(layer.bias), torch.tensor([0.2]))
    model = ConvDAE(sigma=0.5)
    torch.testing.assert_close(torch.sigmoid(model.decoder[-2].bias), torch.tensor([MNIST_PIXELS[0]]))
    head = head_of("hybrid", 4)
    torch.testing.assert_close(torch.sigmoid(head.refine[-1].bias), torch.tensor([MNIST_PIXELS[0]]))


def test_bad_constructor_arguments_raise():
    with pytest.raises(ValueError, match="head"):
        PatchTransformer(head="mlp", sigma=0.5)
    with pytest.raises(ValueError, match="patch_size: expected a positive integer"):
        PatchTransformer(patch_size=0, sigma=0.5)
    with pytest.raises(ValueError, match="d_model"):
        PatchTransformer(d_model=30, heads=4, sigma=0.5)
    with pytest.raises(ValueError, match="widths"):
        ConvDAE(widths=(16, 32), sigma=0.5)
    with pytest.raises(ValueError, match="channels: expected a positive integer"):
        ConvDAE(channels=0, sigma=0.5)
    with pytest.raises(ValueError, match="nc"):
        DRUNetDenoiser(nc=(8, 16, 32), sigma=0.5)
    with pytest.raises(ValueError, match="width"):
        HybridTransformerUNet(width=0, sigma=0.5)


def test_hybrid_loads_transformer_encoder_from_local_checkpoint(tmp_path):
    torch.manual_seed(0)
    source = PatchTransformer(patch_size=4, d_model=16, depth=1, heads=2, sigma=0.5)
    save_checkpoint(tmp_path / "tf", source, {"model": "PatchTransformer", "config": source.config})
    hybrid = HybridTransformerUNet(width=4, d_model=16, depth=1, heads=2, tokens_channels=4, sigma=0.5)
    hybrid.load_encoder(tmp_path / "tf.safetensors")
    for key, value in source.encoder.state_dict().items():
        assert torch.equal(hybrid.tokens.state_dict()[key], value)
    with pytest.raises(FileNotFoundError, match="path"):
        hybrid.load_encoder(tmp_path / "missing.safetensors")
    wider = HybridTransformerUNet(width=4, d_model=32, depth=1, heads=2, sigma=0.5)
    with pytest.raises(ValueError, match="path"):
        wider.load_encoder(tmp_path / "tf.safetensors")


SHIPPED_FLOORS = {  # PSNR (dB) at sigma = 0.5 on the first 500 test images, ~0.3 dB under the measured value
    "conv": 18.7,
    "drunet": 20.0,
    "hybrid": 20.3,
    "transformer_linear": 17.8,
    "transformer_conv": 18.0,
    "transformer_hybrid": 19.3,
}


@pytest.mark.mnist
@pytest.mark.skipif(not mnist_available(), reason="the MNIST cache is absent: run `scoredae data fetch mnist`")
@pytest.mark.parametrize("name", SHIPPED_FLOORS)
def test_shipped_zoo_weights_meet_their_floor(name):
    meta = list_pretrained()[name]
    assert meta["config"]["sigma"] == 0.5 and meta["data"]["dataset"] == "mnist"
    clean = load_mnist("test", download=False)[0][:500]
    assert evaluate_psnr(load_pretrained(name), clean, 0.5) >= SHIPPED_FLOORS[name]


def test_hybrid_encoder_from_the_shipped_patch_transformer():
    source = load_pretrained("transformer_linear")
    sizes = {k: getattr(source.config, k) for k in ("d_model", "depth", "heads")}
    hybrid = HybridTransformerUNet(**sizes, sigma=source.trained_sigma)
    hybrid.load_encoder(WEIGHTS_DIR / "transformer_linear.safetensors")
    for key, value in source.encoder.state_dict().items():
        assert torch.equal(hybrid.tokens.state_dict()[key], value)
