"""The README's Python example runs as written."""

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert blocks, "README.md has no python example"
    dtype = torch.get_default_dtype()
    try:
        for block in blocks:
            exec(compile(block, str(README), "exec"), {})  # noqa: S102 - the README examples are run as written
    finally:
        torch.set_default_dtype(dtype)


def _mnist_table() -> dict[str, dict[str, tuple[float, float]]]:
    """The README's table of shipped MNIST denoisers: name -> sigma -> (PSNR, SSIM)."""
    section = README.read_text().split("## MNIST denoisers (shipped weights)")[1].split("\n## ")[0]
    header = next(line for line in section.splitlines() if line.startswith("| model |"))
    sigmas = re.findall(r"sigma = ([\d.]+)", header)
    table = {}
    for line in section.splitlines():
        name = re.match(r"\| `(\w+)`", line)
        if name:
            cells = [c.strip() for c in line.strip("|").split("|")[2 : 2 + len(sigmas)]]
            table[name.group(1)] = {s: tuple(map(float, c.split(" / "))) for s, c in zip(sigmas, cells) if c}
    return table


def test_the_readme_table_is_the_shipped_metadata():
    """Every number of the README's MNIST table is the one `scoredae eval` wrote into the model's JSON
    (which tests/test_models_core.py recomputes from the weights)."""
    from scoredae.nets import list_pretrained

    table, shipped = _mnist_table(), list_pretrained()
    assert {n for n, m in shipped.items() if m["data"]["dataset"] == "mnist"} <= set(table)
    for name, cells in table.items():
        meta = shipped[name]
        assert set(cells) == set(meta["psnr"]), name
        for sigma, (psnr, ssim) in cells.items():
            # the README prints the measured value to 2 and 3 decimals, the JSON keeps 3 and 4
            assert abs(psnr - meta["psnr"][sigma]) <= 0.0051 and abs(ssim - meta["ssim"][sigma]) <= 0.00051, \
                (name, sigma, psnr, meta["psnr"][sigma])
