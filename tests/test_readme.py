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
