"""The theory pages name the tests that check their claims: every test they name exists."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs" / "theory").glob("*.rst"))
DEFINED = {m for f in (ROOT / "tests").glob("test_*.py") for m in re.findall(r"^def (test_\w+)", f.read_text(), re.MULTILINE)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_every_test_a_theory_page_names_exists(page):
    named = set(re.findall(r"``(?:tests/[\w/]+\.py::)?(test_\w+)", page.read_text()))
    assert not named - DEFINED, sorted(named - DEFINED)
