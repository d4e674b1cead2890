r"""The preconditioning of Karras et al. 2022 ("Elucidating the design space...", Table 1).

A network :math:`F_\theta` is wrapped into the denoiser

.. math::
    D(y, \sigma) = c_{skip}(\sigma)\, y + c_{out}(\sigma)\, F_\theta\big(c_{in}(\sigma)\, y, \sigma\big),
    \quad c_{skip} = \frac{\sigma_{data}^2}{\sigma^2 + \sigma_{data}^2},\;
    c_{out} = \frac{\sigma \sigma_{data}}{\sqrt{\sigma^2 + \sigma_{data}^2}},\;
    c_{in} = \frac{1}{\sqrt{\sigma^2 + \sigma_{data}^2}},

so that the network's input and its target :math:`(x - c_{skip} y) / c_{out}` have unit variance
at every noise level when the data have standard deviation :math:`\sigma_{data}`.
"""

from __future__ import annotations

import torch


def edm_scalings(sigma: torch.Tensor, sigma_data: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""``(c_skip, c_out, c_in)`` of the module docstring, each the shape of ``sigma``."""
    var = sigma**2 + sigma_data**2
    c_in = var.rsqrt()
    return sigma_data**2 / var, sigma * sigma_data * c_in, c_in


def preconditioned(network, x: torch.Tensor, sigma: torch.Tensor, sigma_data: float, channels: int) -> torch.Tensor:
    r""":math:`D = c_{skip}\, y + c_{out}\, F(c_{in}\, y, \dots)` for ``x`` (B, C + K, H, W): the noisy
    image :math:`y` = ``x[:, :channels]`` followed by K conditioning channels (the noise-level map),
    which ``network`` receives unscaled; ``sigma`` (B,) is each image's level."""
    c_skip, c_out, c_in = edm_scalings(sigma.reshape(-1, 1, 1, 1), sigma_data)  # (B, 1, 1, 1)
    y = x[:, :channels]
    return c_skip * y + c_out * network(torch.cat([c_in * y, x[:, channels:]], dim=1))
