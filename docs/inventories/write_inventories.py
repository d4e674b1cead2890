"""Write the intersphinx inventories (``objects.inv`` format, version 2) the docs link through.

The docs build offline, so the inventories of Python, numpy, torch, deepinv and matplotlib are kept
in this folder. They hold the objects scoredae's signatures and docstrings name, each at the page
of its project's documentation, under its public name and under the internal names that type hints
carry (``torch._C.Generator`` is ``torch.Generator``). Every name is imported and checked to be the
object of its public name, so an entry cannot point to something else. To add an object, add a
line below and run ``python docs/inventories/write_inventories.py``.
"""

from __future__ import annotations

import importlib
import zlib
from pathlib import Path

# project -> (version label, [(public name, role, page#anchor relative to the docs root, aliases)])
OBJECTS = {
    "python": ("3", [
        *((f"collections.abc.{n}", "class", f"library/collections.abc.html#collections.abc.{n}", ())
          for n in ("Callable", "Iterable", "Iterator", "Sequence", "Mapping")),
        ("os.PathLike", "class", "library/os.html#os.PathLike", ()),
        ("pathlib.Path", "class", "library/pathlib.html#pathlib.Path", ()),
        ("pickle.Unpickler", "class", "library/pickle.html#pickle.Unpickler", ()),
        *((n, "class", f"library/functions.html#{n}", ()) for n in ("int", "float", "bool", "object")),
        *((n, "class", f"library/stdtypes.html#{n}", ()) for n in ("str", "dict", "list", "tuple", "bytes")),
        *((n, "exception", f"library/exceptions.html#{n}", ())
          for n in ("Exception", "ValueError", "TypeError", "RuntimeError", "KeyError")),
    ]),
    "numpy": ("stable", [
        ("numpy.ndarray", "class", "reference/generated/numpy.ndarray.html#numpy.ndarray", ()),
    ]),
    "torch": ("stable", [
        ("torch.Tensor", "class", "tensors.html#torch.Tensor", ()),
        ("torch.Generator", "class", "generated/torch.Generator.html#torch.Generator", ("torch._C.Generator",)),
        ("torch.dtype", "class", "tensor_attributes.html#torch.dtype", ()),
        ("torch.device", "class", "tensor_attributes.html#torch.device", ()),
        ("torch.Size", "class", "size.html#torch.Size", ()),
        ("torch.nn.Module", "class", "generated/torch.nn.Module.html#torch.nn.Module",
         ("torch.nn.modules.module.Module",)),
        ("torch.nn.Sequential", "class", "generated/torch.nn.Sequential.html#torch.nn.Sequential",
         ("torch.nn.modules.container.Sequential",)),
        ("torch.nn.Conv2d", "class", "generated/torch.nn.Conv2d.html#torch.nn.Conv2d", ("torch.nn.modules.conv.Conv2d",)),
        ("torch.optim.Optimizer", "class", "optim.html#torch.optim.Optimizer", ("torch.optim.optimizer.Optimizer",)),
    ]),
    "deepinv": ("latest", [
        *((f"deepinv.{n}", "class", f"api/stubs/deepinv.{n}.html#deepinv.{n}", aliases) for n, aliases in [
            ("models.Denoiser", ("deepinv.models.base.Denoiser",)),
            ("models.MMSE", ("deepinv.models.mmse.MMSE",)),
            ("models.BM3D", ()),
            ("models.DRUNet", ("deepinv.models.drunet.DRUNet",)),
            ("sampling.ULA", ()),
            ("physics.LinearPhysics", ("deepinv.physics.forward.LinearPhysics",)),
            ("physics.DecomposablePhysics", ("deepinv.physics.forward.DecomposablePhysics",)),
            ("physics.Inpainting", ("deepinv.physics.inpainting.Inpainting",)),
            ("physics.BlurFFT", ("deepinv.physics.blur.BlurFFT",)),
            ("sampling.DPS", ("deepinv.sampling.diffusion.DPS",)),
            ("sampling.DiffPIR", ("deepinv.sampling.diffusion.DiffPIR",)),
            ("metric.PSNR", ()),
            ("metric.SSIM", ()),
        ]),
    ]),
    "matplotlib": ("stable", [
        (f"matplotlib.{n}", "class", f"api/_as_gen/matplotlib.{n}.html#matplotlib.{n}", ())
        for n in ("animation.FuncAnimation", "figure.Figure", "axes.Axes")
    ]),
}


def resolve(name: str):
    """The object a dotted name refers to (a builtin when it has no dot)."""
    if "." not in name:
        return getattr(importlib.import_module("builtins"), name)
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(name)


def inventory(project: str, version: str, entries) -> bytes:
    """The bytes of an ``objects.inv`` file: a text header, then the zlib-compressed entries."""
    lines = []
    for name, role, uri, aliases in entries:
        target = resolve(name)
        for alias in aliases:
            if resolve(alias) is not target:
                raise ValueError(f"{alias} is not {name}")
        lines += [f"{n} py:{role} 1 {uri} {name if n != name else '-'}" for n in (name, *aliases)]
    header = (f"# Sphinx inventory version 2\n# Project: {project}\n# Version: {version}\n"
              "# The remainder of this file is compressed using zlib.\n")
    return header.encode() + zlib.compress(("\n".join(lines) + "\n").encode())


if __name__ == "__main__":
    folder = Path(__file__).resolve().parent
    for project, (version, entries) in OBJECTS.items():
        (folder / f"{project}.inv").write_bytes(inventory(project, version, list(entries)))
        print(f"wrote {folder / f'{project}.inv'}")
