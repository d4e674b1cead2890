"""What the commands share about a model: loading it by name or path, and the noise level it serves."""

from __future__ import annotations

from pathlib import Path


def load_model(name: str, device):
    """A shipped model by name, or a checkpoint by stem (``STEM``, ``STEM.json`` or ``STEM.safetensors``)."""
    from ..nets.checkpoints import load_checkpoint
    from ..nets.registry import (
        constructors,
        list_pretrained,
        list_pretrained_mixtures,
        load_pretrained,
    )

    if name in list_pretrained() or name in list_pretrained_mixtures():
        return load_pretrained(name, device=device)
    stem = Path(name).with_suffix("") if Path(name).suffix in (".json", ".safetensors") else Path(name)
    if not any(stem.with_name(stem.name + suffix).exists() for suffix in (".json", ".safetensors")):
        raise ValueError(f"--model: expected a shipped model {sorted(list_pretrained())}, a shipped mixture "
                         f"{sorted(list_pretrained_mixtures())} or a checkpoint path, "
                         f"got {name!r}")
    return load_checkpoint(stem, constructors(), device=device)[0]  # names the file that is missing


def noise_level(model, sigma: float | None) -> float:
    """The level to run ``model`` at: ``sigma`` (within a noise-conditional model's range, or a
    fixed-sigma model's own level), else a fixed-sigma model's own."""
    if model.noise_conditional:
        if sigma is None:
            raise ValueError("--sigma: a noise-conditional model needs the noise level")
        lo, hi = model.sigma_range
        if not lo <= sigma <= hi:
            raise ValueError(f"--sigma: {sigma:g} is outside the range [{lo:g}, {hi:g}] this model was trained on")
        return sigma
    if sigma is not None and sigma != model.trained_sigma:
        raise ValueError(f"--sigma: this model was trained at sigma = {model.trained_sigma:g} only, got {sigma:g}")
    return model.trained_sigma
