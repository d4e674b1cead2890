r"""Where a denoiser looks: class-activation maps without a class, and the Jacobian row.

A denoiser has no class score to explain, so a class-activation map (CAM) needs an artificial
target. Through the ``grad-cam`` package (``pip install 'scoredae[explain]'``):

* ``"eigen"``: EigenCAM (Muhammad & Yeasin 2020), the projection of a layer's centred activations
  :math:`A` (hw, C) on their first principal component, the first right singular vector of
  :math:`A`; gradient-free, no target. It is computed from the thin SVD (grad-cam's own builds the
  full hw x hw matrix of left singular vectors: 5 GB for a 192 x 192 layer).
* ``"kpca"``: KPCA-CAM (Karmani et al. 2024), the same with kernel PCA; gradient-free, no target.
  Its kernel matrix grows as the square of the pixels, so it is fitted on at most
  :data:`KPCA_PIXELS` of them (evenly strided) and every pixel is projected on that fit.
* ``"grad"``: Grad-CAM (Selvaraju et al. 2017), the activations weighted by the spatial mean of
  the gradient of a target: ``"mean"`` of the layer's activations (the default), their L2
  ``"norm"``, or a mask (H, W): the mean of the denoiser's output over that region.

A transformer layer's tokens (B, N, D) are put back on their (H/p, W/p) patch grid first.

Beside them, the map only an MMSE denoiser has, :func:`jacobian_row`: the row of its Jacobian at
one output pixel :math:`i`, which by second-order Tweedie (:mod:`scoredae.uncertainty`) is

.. math::
    \frac{\partial D_i(y)}{\partial y} = \frac{\operatorname{Cov}[x_i, x \mid y]}{\sigma^2},

the input pixels that move output pixel :math:`i`, and the clean pixels that vary with it under
the posterior: a meaning no CAM has.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ._checks import positive
from .uncertainty import jacobian_transpose_vp

#: method name -> the grad-cam class that computes it
METHODS = {"eigen": "EigenCAM", "kpca": "KPCA_CAM", "grad": "GradCAM"}
TARGETS = ("mean", "norm")
#: the most pixels kernel PCA is fitted on (its kernel matrix has their square of entries)
KPCA_PIXELS = 2048


def _grad_cam():
    try:
        import pytorch_grad_cam
    except ImportError as err:
        raise ImportError("activation maps need the grad-cam package: pip install 'scoredae[explain]'") from err
    return pytorch_grad_cam


def first_component(activations: np.ndarray) -> np.ndarray:
    """EigenCAM's projection, (B, C, h, w) -> (B, h, w): each image's centred activations (hw, C)
    on their first right singular vector, from the thin SVD (the projection of grad-cam's
    ``get_2d_projection``, in memory linear in hw)."""
    maps = []
    for a in np.nan_to_num(activations):
        rows = a.reshape(a.shape[0], -1).T  # (hw, C)
        rows = rows - rows.mean(axis=0)
        _, _, vt = np.linalg.svd(rows, full_matrices=False)
        maps.append((rows @ vt[0]).reshape(a.shape[1:]))
    return np.float32(maps)


def kernel_component(activations: np.ndarray, kernel: str = "sigmoid", gamma: float | None = None) -> np.ndarray:
    """KPCA-CAM's projection, (B, C, h, w) -> (B, h, w): kernel PCA of each image's centred
    activations (hw, C), fitted on at most :data:`KPCA_PIXELS` evenly strided pixels (all of them
    when fewer, as grad-cam's ``get_2d_projection_kernel``), every pixel projected on it."""
    from sklearn.decomposition import KernelPCA

    maps = []
    for a in np.nan_to_num(activations):
        rows = a.reshape(a.shape[0], -1).T  # (hw, C)
        rows = rows - rows.mean(axis=0)
        fitted = rows[:: -(-len(rows) // KPCA_PIXELS)]  # every k-th pixel, k = ceil(hw / KPCA_PIXELS)
        kpca = KernelPCA(n_components=1, kernel=kernel, gamma=gamma).fit(fitted)
        maps.append(kpca.transform(rows).reshape(a.shape[1:]))
    return np.float32(maps)


def _cam_class(method: str):
    """The grad-cam class of ``method``, EigenCAM and KPCA-CAM with the projections above."""
    cams = _grad_cam()
    if method == "grad":
        return cams.GradCAM

    class BoundedEigenCAM(cams.EigenCAM):
        def get_cam_image(self, input_tensor, target_layer, target_category, activations, grads, eigen_smooth):
            return first_component(activations)

    class BoundedKPCACAM(cams.KPCA_CAM):
        def get_cam_image(self, input_tensor, target_layer, target_category, activations, grads, eigen_smooth):
            return kernel_component(activations, self.kernel, self.gamma)

    return BoundedEigenCAM if method == "eigen" else BoundedKPCACAM


def find_layer(model: torch.nn.Module, name: str) -> torch.nn.Module:
    """The sub-module ``name`` of ``model`` (a key of ``model.named_modules()``, e.g. ``"enc2"``)."""
    layers = dict(model.named_modules())
    layers.pop("")
    if name not in layers:
        raise ValueError(f"layer: {type(model).__name__} has no layer {name!r}; its layers are {', '.join(layers)}")
    return layers[name]


class _Scored(torch.nn.Module):
    """The denoiser at a fixed sigma as grad-cam calls it, ``f(y)``, returning what the target scores:
    the output, or the activations of ``layer`` captured by a hook."""

    def __init__(self, denoiser, sigma: float, layer: torch.nn.Module, return_layer: bool):
        super().__init__()
        self.denoiser, self.sigma, self.layer, self.return_layer = denoiser, sigma, layer, return_layer

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        captured = []
        handle = self.layer.register_forward_hook(lambda module, args, out: captured.append(out))
        try:
            out = self.denoiser(y, self.sigma)
        finally:
            handle.remove()
        return captured[0] if self.return_layer else out


def _target(target, y: torch.Tensor):
    """``(returns the layer's activations?, per-sample scalar target)`` for grad-cam."""
    if isinstance(target, torch.Tensor):
        if target.shape != y.shape[-2:]:
            raise ValueError(f"target: a mask must have the image's shape {tuple(y.shape[-2:])}, got {tuple(target.shape)}")
        mask = target.to(y)
        if not mask.sum() > 0:
            raise ValueError("target: the mask selects no pixel")
        return False, lambda out: (out * mask).sum() / (mask.sum() * out.shape[0])  # out (C, H, W)
    if target == "mean":
        return True, lambda activations: activations.mean()
    if target == "norm":
        return True, lambda activations: activations.norm()
    raise ValueError(f"target: expected 'mean', 'norm' or a mask of shape (H, W), got {target!r}")


def _token_grid(height: int, width: int):
    """grad-cam's ``reshape_transform``: tokens (B, N, D) on an (h, w) grid of the image's aspect
    ratio -> (B, D, h, w); convolutional activations (B, C, h, w) unchanged."""

    def transform(t: torch.Tensor) -> torch.Tensor:
        if t.ndim != 3:
            return t
        b, n, d = t.shape
        h = round(math.sqrt(n * height / width))
        if h * (n // h) != n:
            raise ValueError(f"layer: {n} tokens do not tile a {height} x {width} image")
        return t.reshape(b, h, n // h, d).permute(0, 3, 1, 2)

    return transform


def activation_map(denoiser, y: torch.Tensor, sigma: float, layer: str, *, method: str = "eigen",
                   target="mean") -> torch.Tensor:
    """The class-activation map of ``layer`` for the noisy images ``y`` (B, C, H, W): shape
    (B, H, W), each map scaled to [0, 1] (the module docstring lists ``method`` and ``target``;
    the gradient-free methods ignore the target)."""
    if method not in METHODS:
        raise ValueError(f"method: expected one of {sorted(METHODS)}, got {method!r}")
    sigma = positive("sigma", sigma)
    module = find_layer(denoiser, layer)
    return_layer, score = _target(target, y)
    cam_class = _cam_class(method)
    scored = _Scored(denoiser, sigma, module, return_layer and method == "grad")
    with cam_class(model=scored, target_layers=[module], reshape_transform=_token_grid(*y.shape[-2:])) as cam:
        maps = cam(input_tensor=y, targets=[score] * len(y))
    return torch.from_numpy(maps).to(y)


def jacobian_row(denoiser, y: torch.Tensor, sigma: float, pixel: tuple[int, int], channel: int = 0) -> torch.Tensor:
    r"""Row :math:`\partial D_i(y) / \partial y` of the Jacobian at output ``pixel`` (row, column) of
    ``channel``, for each image of ``y`` (B, C, H, W): shape (B, C, H, W), by one reverse-mode
    product :math:`J^\top e_i`. For the MMSE denoiser this is :math:`\operatorname{Cov}[x_i, x \mid y] / \sigma^2`
    (module docstring); a learned :math:`J` is close to symmetric only as far as the network is MMSE."""
    sigma = positive("sigma", sigma)
    row, col = pixel
    if not (0 <= channel < y.shape[1] and 0 <= row < y.shape[2] and 0 <= col < y.shape[3]):
        raise ValueError(f"pixel: expected a (row, column) inside {tuple(y.shape[2:])} and a channel below "
                         f"{y.shape[1]}, got {pixel} in channel {channel}")
    e = torch.zeros_like(y)
    e[:, channel, row, col] = 1
    return jacobian_transpose_vp(denoiser, y, sigma, e)


def band_pass(heat: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """Keep the values of ``heat`` in [lo, hi], rescaled to [0, 1]; zero elsewhere (the band
    threshold that picks one range of a CAM's responses)."""
    if not lo < hi:
        raise ValueError(f"lo, hi: expected lo < hi, got lo={lo}, hi={hi}")
    inside = (heat >= lo) & (heat <= hi)
    return torch.where(inside, (heat - lo) / (hi - lo), torch.zeros_like(heat))
