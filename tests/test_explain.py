"""Activation maps and the Jacobian row: Grad-CAM against its formula computed by hand, tokens put
back on their patch grid, the Jacobian row against the exact posterior covariance of a mixture."""

import builtins

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from scoredae import GaussianMixture
from scoredae.explain import activation_map, band_pass, jacobian_row
from scoredae.mixtures import MixtureDenoiser

pytest.importorskip("pytorch_grad_cam")
F64 = torch.float64


class ConvDenoiser(torch.nn.Module):
    """y -> conv2(relu(conv1(y))): a small denoiser with a named layer."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(4, 1, 3, padding=1)

    def forward(self, y, sigma):
        return self.conv2(torch.relu(self.conv1(y)))


class PatchTokens(torch.nn.Module):
    """Tokens (B, N, 1) = each 4 x 4 patch's mean, row-major over the patch grid."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))  # grad-cam finds the device from a parameter

    def forward(self, y):
        return self.scale * F.avg_pool2d(y, 4).flatten(2).transpose(1, 2)


class TokenDenoiser(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.tokens = PatchTokens()

    def forward(self, y, sigma):
        t = self.tokens(y)  # (B, N, 1)
        grid = t.transpose(1, 2).reshape(y.shape[0], 1, y.shape[2] // 4, y.shape[3] // 4)
        return F.interpolate(grid, size=y.shape[-2:])


def scaled(cam: torch.Tensor) -> torch.Tensor:
    """grad-cam's per-image min-max scaling to [0, 1]."""
    low = cam.amin((-2, -1), keepdim=True)
    return (cam - low) / (cam.amax((-2, -1), keepdim=True) - low + 1e-7)


def test_grad_cam_with_the_mean_target_is_the_channel_mean_of_the_activations():
    """Target mean(A) over the C x H x W activations: every gradient is 1 / (C H W), so Grad-CAM's
    weights are equal and the map is relu(sum_c A_c) / (C H W), scaled to [0, 1]."""
    model = ConvDenoiser()
    y = torch.rand(2, 1, 12, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a = model.conv1(y)  # (2, 4, 12, 16)
    expected = scaled(torch.relu(a.sum(1)))
    torch.testing.assert_close(activation_map(model, y, 0.5, "conv1", method="grad"), expected, atol=5e-4, rtol=0)  # float32 and the 1e-7 of the scaling


def test_a_mask_target_differentiates_the_output_over_the_region():
    """Target: the output's mean over a mask. Grad-CAM weights each channel of conv1's activations
    A by the spatial mean of the gradient of that target at A."""
    model = ConvDenoiser()
    y = torch.rand(1, 1, 12, 12, generator=torch.Generator().manual_seed(2))
    mask = torch.zeros(12, 12)
    mask[2:6, 3:9] = 1
    a = model.conv1(y).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad((model.conv2(torch.relu(a))[0, 0] * mask).sum() / mask.sum(), a)
    expected = scaled(torch.relu((grad.mean((2, 3), keepdim=True) * a).sum(1))).detach()
    torch.testing.assert_close(activation_map(model, y, 0.5, "conv1", method="grad", target=mask), expected,
                               atol=5e-4, rtol=0)  # float32 and the 1e-7 of the scaling


def test_tokens_are_put_back_on_their_patch_grid():
    """Tokens = patch means of a 8 x 12 image (a 2 x 3 grid): the Grad-CAM map of the mean target is
    the patch-mean image, resized to 8 x 12 as grad-cam resizes, whatever the aspect ratio."""
    y = torch.rand(1, 1, 8, 12, generator=torch.Generator().manual_seed(3))
    grid = F.avg_pool2d(y, 4)  # (1, 1, 2, 3)
    cam = activation_map(TokenDenoiser(), y, 0.5, "tokens", method="grad")
    expected = scaled(F.interpolate(grid, size=(8, 12), mode="bilinear", align_corners=False)[:, 0])
    torch.testing.assert_close(cam, expected, atol=5e-4, rtol=0)  # float32 and the 1e-7 of the scaling


@pytest.mark.parametrize("method", ["eigen", "kpca"])
def test_gradient_free_maps_are_in_the_unit_interval(method):
    y = torch.rand(3, 1, 12, 12, generator=torch.Generator().manual_seed(4))
    cam = activation_map(ConvDenoiser(), y, 0.5, "conv1", method=method)
    assert cam.shape == (3, 12, 12) and float(cam.min()) >= 0 and float(cam.max()) <= 1 and float(cam.max()) > 0.99


def test_the_jacobian_row_is_the_posterior_covariance_row_over_sigma_squared():
    g = torch.Generator().manual_seed(5)
    a = torch.randn(2, 4, 4, generator=g, dtype=F64)
    prior = GaussianMixture(torch.tensor([0.6, 0.4], dtype=F64), torch.randn(2, 4, generator=g, dtype=F64),
                            a @ a.transpose(1, 2) / 4 + 0.2 * torch.eye(4, dtype=F64))
    exact = MixtureDenoiser(prior)
    sigma = 0.6
    y = prior.noised(sigma).sample(3, generator=g)  # (3, 4) viewed as 2 x 2 images

    def denoiser(images, s):
        return exact(images.reshape(-1, 4), s).reshape(images.shape)

    row = jacobian_row(denoiser, y.reshape(3, 1, 2, 2), sigma, (1, 0))  # pixel index 2
    cov = prior.posterior(y, sigma).cov()  # (3, 4, 4)
    torch.testing.assert_close(sigma**2 * row.reshape(3, 4), cov[:, 2], atol=1e-10, rtol=0)


def test_band_pass_keeps_one_range_rescaled():
    heat = torch.tensor([0.0, 0.2, 0.3, 0.5, 0.9])
    torch.testing.assert_close(band_pass(heat, 0.2, 0.6), torch.tensor([0.0, 0.0, 0.25, 0.75, 0.0]))


@pytest.mark.parametrize("call, message", [
    (lambda m, y: activation_map(m, y, 0.5, "conv9"), r"layer: ConvDenoiser has no layer 'conv9'; its layers are conv1, conv2"),
    (lambda m, y: activation_map(m, y, 0.5, "conv1", method="score"), r"method: expected one of"),
    (lambda m, y: activation_map(m, y, 0.5, "conv1", method="grad", target=torch.ones(3, 3)),
     r"target: a mask must have the image's shape \(8, 8\), got \(3, 3\)"),
    (lambda m, y: activation_map(m, y, 0.5, "conv1", method="grad", target="max"), r"target: expected 'mean', 'norm'"),
    (lambda m, y: band_pass(torch.zeros(3), 0.5, 0.5), r"lo, hi: expected lo < hi"),
    (lambda m, y: jacobian_row(m, y, 0.5, (8, 0)), r"pixel: expected a \(row, column\) inside \(8, 8\)"),
])
def test_bad_arguments_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call(ConvDenoiser(), torch.rand(1, 1, 8, 8))


def test_a_missing_extra_names_the_extra_to_install(monkeypatch):
    real_import = builtins.__import__

    def without_grad_cam(name, *args, **kwargs):
        if name.startswith("pytorch_grad_cam"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_grad_cam)
    with pytest.raises(ImportError, match=r"pip install 'scoredae\[explain\]'"):
        activation_map(ConvDenoiser(), torch.rand(1, 1, 8, 8), 0.5, "conv1")


@pytest.mark.parametrize("method", ["eigen", "kpca"])
def test_the_bounded_projections_are_grad_cams_on_small_layers(method):
    """On a layer of at most KPCA_PIXELS pixels, both projections are grad-cam's own, to float32."""
    from pytorch_grad_cam.utils import svd_on_activations as grad_cam

    from scoredae.explain import KPCA_PIXELS, first_component, kernel_component

    a = np.random.default_rng(6).normal(size=(2, 5, 12, 16)).astype(np.float32)  # 192 pixels
    assert 12 * 16 <= KPCA_PIXELS
    ours, theirs = ((first_component(a), grad_cam.get_2d_projection(a)) if method == "eigen"
                    else (kernel_component(a), grad_cam.get_2d_projection_kernel(a)))
    np.testing.assert_allclose(np.abs(ours), np.abs(theirs), rtol=1e-4, atol=1e-5)  # a component's sign is free


def test_kernel_pca_on_a_large_layer_fits_a_bounded_subset():
    """A 64 x 64 layer (4,096 pixels) is fitted on 2,048 of them, and maps every pixel as the fit on
    all of them (grad-cam's, a 4,096 x 4,096 kernel) does, to a correlation of 0.9999."""
    from pytorch_grad_cam.utils import svd_on_activations as grad_cam

    from scoredae.explain import KPCA_PIXELS, kernel_component

    rng = np.random.default_rng(7)
    field = np.sin(np.linspace(0, 3, 64))[:, None] * np.cos(np.linspace(0, 2, 64))[None, :]
    a = (rng.normal(size=(4, 1, 1)) * field + 0.05 * rng.normal(size=(4, 64, 64)))[None].astype(np.float32)
    assert 64 * 64 > KPCA_PIXELS
    bounded, full = kernel_component(a)[0].ravel(), grad_cam.get_2d_projection_kernel(a)[0].ravel()
    assert abs(np.corrcoef(bounded, full)[0, 1]) > 0.9999
