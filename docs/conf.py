"""Sphinx configuration: API pages from docstrings, the gallery from demos/plot_*.py."""

import scoredae

project = "scoredae"
author = "the scoredae authors"
release = scoredae.__version__
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx_gallery.gen_gallery",
]
sphinx_gallery_conf = {
    "examples_dirs": "../demos",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"plot_",
    "within_subsection_order": "FileNameSortKey",
}
autodoc_member_order = "bysource"
html_theme = "pydata_sphinx_theme"
exclude_patterns = ["_build"]
