"""Sphinx configuration: the landing page, the gallery built from demos/ (one folder a section),
the shipped-models page generated from the weights' metadata, and API pages from docstrings.
Math is rendered by a MathJax copy served with the site, so it works offline."""

import json
from pathlib import Path

import scoredae
from scoredae.nets.registry import list_pretrained, load_pretrained

project = "scoredae"
author = "the scoredae authors"
release = scoredae.__version__
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",
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


def write_models_page(app) -> None:
    """docs/models.rst from the JSON metadata of every shipped model: nothing is typed by hand."""
    lines = ["Shipped models", "==============", "",
             "Generated at build time from ``scoredae/weights/*.json``. PSNR (dB) / SSIM on the first",
             "2,000 MNIST test images with a fixed noise seed (``scoredae eval``).", ""]
    for name, meta in list_pretrained().items():
        config = meta["config"]
        level = (f"sigma in [{config['sigma_range'][0]:g}, {config['sigma_range'][1]:g}]"
                 if config.get("sigma_range") else f"sigma = {config['sigma']:g}")
        params = sum(p.numel() for p in load_pretrained(name).parameters())
        scores = [f"sigma {s}: {psnr:.2f} dB / {meta['ssim'][s]:.3f}" for s, psnr in meta.get("psnr", {}).items()]
        lines += [f"``{name}``", "-" * (len(name) + 4), "",
                  f"- architecture: ``{meta['model']}`` with ``{json.dumps(config, sort_keys=True)}``",
                  f"- parameters: {params:,}",
                  f"- trained at: {level}, {meta['step']:,} steps, {meta['elapsed_s'] / 60:.0f} minutes",
                  f"- PSNR / SSIM: {'; '.join(scores) if scores else 'not evaluated'}",
                  "- command:", "", ".. code-block:: bash", "", f"   {meta['command']}", ""]
    Path(app.srcdir, "models.rst").write_text("\n".join(lines))


def setup(app):
    app.connect("builder-inited", write_models_page)
    return {"parallel_read_safe": True}
