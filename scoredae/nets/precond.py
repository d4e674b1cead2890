r"""The preconditioning of Karras et al. 2022 ("Elucidating the design space...", Table 1).

A network :math:`F_\theta` is wrapped into the denoiser

.. math::
    D(y, \sigma) = c_{skip}(\sigma)\, y + c_{out}(\sigma)\, F_\theta\big(c_{in}(\sigma)\, y, \sigma\big),
    \quad c_{skip} = \frac{\sigma_{data}^2}{\sigma^2 + \sigma_{data}^2},\;
    c_{out} = \frac{\sigma \sigma_{data}}{\sqrt{\sigma^2 + \sigma_{data}^2}},\;
    c_{in} = \frac{1}{\sqrt{\sigma^2 + \sigma_{data}^2}},

so that the network's input and its target :math:`(x - c_{skip} y) / c_{out}` have unit variance
at every noise level when the data have standard deviation :math:`\sigma_{data}`.
:class:`~scoredae.nets.base.ImageDenoiser` applies it to any architecture whose config sets
``precondition=True``; the architectures themselves return :math:`F_\theta` only.
"""

from __future__ import annotations

import torch


def edm_scalings(sigma: torch.Tensor, sigma_data: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""``(c_skip, c_out, c_in)`` of the module docstring, each the shape of ``sigma``."""
    var = sigma**2 + sigma_data**2
    c_in = var.rsqrt()
    return sigma_data**2 / var, sigma * sigma_data * c_in, c_in
