"""Checkpoints: tensors in safetensors, metadata in JSON, both written atomically.

A checkpoint ``<stem>`` is the pair ``<stem>.safetensors`` (the model's weights under their
``state_dict`` names, plus optional extra tensors under ``state/...``, e.g. optimizer moments for
resuming) and ``<stem>.json`` (model name and config, noise level(s), data, metrics, the training
command, the package version). Loading never unpickles: safetensors holds raw tensors only.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .._checks import atomic_write

EXTRA_PREFIX = "state/"


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, or of another model."""


def _paths(stem: str | os.PathLike) -> tuple[Path, Path]:
    stem = Path(stem)
    if stem.suffix in (".safetensors", ".json"):
        stem = stem.with_suffix("")
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def _to_json(value):
    """JSON for what ``json`` does not know: a dataclass (a model's config) as a dict."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"metadata: {type(value).__name__} is not JSON serialisable")


def as_json(value):
    """``value`` as it reads back from JSON (a config dataclass becomes a dict, tuples lists)."""
    return json.loads(json.dumps(value, default=_to_json))


def save_checkpoint(
    stem: str | os.PathLike,
    model: torch.nn.Module,
    metadata: dict,
    extra: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write ``model``'s weights (+ ``extra`` tensors) and ``metadata``; return the weights' path.

    The JSON is written last, so a checkpoint whose JSON exists has complete weights.
    """
    weights_path, meta_path = _paths(stem)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for k, v in (extra or {}).items():
        tensors[EXTRA_PREFIX + k] = v.detach().cpu().contiguous()
    text = json.dumps(metadata, indent=2, sort_keys=True, default=_to_json)
    atomic_write(weights_path, lambda p: save_file(tensors, p))
    atomic_write(meta_path, lambda p: Path(p).write_text(text))
    return weights_path


def read_checkpoint(stem: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict, dict]:
    """``(model_tensors, extra_tensors, metadata)``; a missing or corrupt file raises CheckpointError."""
    weights_path, meta_path = _paths(stem)
    for p, what in ((weights_path, "weights"), (meta_path, "metadata")):
        if not p.exists():
            raise CheckpointError(f"checkpoint {Path(stem)}: its {what} file {p} does not exist "
                                  f"(a checkpoint is the pair STEM.safetensors and STEM.json)")
    try:
        metadata = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as err:
        raise CheckpointError(f"checkpoint metadata {meta_path} is not valid JSON: {err}") from err
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"checkpoint weights {weights_path} are corrupt or unreadable: {err}") from err
    if not isinstance(metadata, dict) or "model" not in metadata or "config" not in metadata:
        raise CheckpointError(f"{meta_path}: expected JSON metadata with 'model' and 'config' keys")
    extra = {k[len(EXTRA_PREFIX) :]: v for k, v in tensors.items() if k.startswith(EXTRA_PREFIX)}
    weights = {k: v for k, v in tensors.items() if not k.startswith(EXTRA_PREFIX)}
    return weights, extra, metadata


def load_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor], source: str) -> None:
    """``model.load_state_dict(weights)`` with an error naming what was expected."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    shapes = [k for k in expected if k in weights and weights[k].shape != expected[k].shape]
    if missing or unexpected or shapes:
        raise CheckpointError(
            f"{source} does not fit {type(model).__name__}: "
            f"missing {missing[:5]}, unexpected {unexpected[:5]}, wrong shapes {shapes[:5]}"
        )
    model.load_state_dict(weights)


def _check_model(stem, held: str, expected: str) -> None:
    if held != expected:
        raise CheckpointError(f"checkpoint {stem} holds a {held}, expected a {expected}")


def load_into(model: torch.nn.Module, stem: str | os.PathLike, check=None) -> tuple[dict[str, torch.Tensor], dict]:
    """Load the weights of checkpoint ``stem`` into ``model``, which must be of the class it holds;
    return ``(extra_tensors, metadata)``. ``check(metadata)``, when given, runs before the weights
    are loaded (e.g. to refuse other settings with a better message than a shape mismatch)."""
    weights, extra, metadata = read_checkpoint(stem)
    _check_model(stem, metadata["model"], type(model).__name__)
    if check is not None:
        check(metadata)
    load_weights(model, weights, str(stem))
    return extra, metadata


def build_model(metadata: dict, constructors: dict, stem: str | os.PathLike) -> torch.nn.Module:
    """The model (untrained) that checkpoint metadata describes: ``constructors[metadata["model"]]``
    built from ``metadata["config"]``; ``stem`` names the checkpoint in the errors."""
    name = metadata["model"]
    if name not in constructors:
        raise CheckpointError(f"checkpoint {stem}: unknown model {name!r}; known: {sorted(constructors)}")
    config = metadata["config"]
    if not isinstance(config, dict):
        raise CheckpointError(f"{stem}: expected the model's config as a JSON object, got {config!r}")
    try:
        return constructors[name](**config)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"checkpoint {stem}: its config does not build a {name}: {err}") from err


def load_checkpoint(
    stem: str | os.PathLike,
    constructors: dict,
    expected_model: str | None = None,
    device: str | torch.device | None = None,
):
    """Rebuild the model of a checkpoint and load its weights; return ``(model, metadata)``.

    :param constructors: class name -> model class (e.g. :func:`scoredae.nets.registry.constructors`).
    :param expected_model: when given, the class name the checkpoint must hold.
    """
    weights, _, metadata = read_checkpoint(stem)
    if expected_model is not None:
        _check_model(stem, metadata["model"], expected_model)
    model = build_model(metadata, constructors, stem)
    load_weights(model, weights, str(stem))
    model.eval()
    return model.to(device) if device is not None else model, metadata
