"""Sphinx configuration: the landing page, the gallery built from demos/ (one folder a section),
the shipped-models page generated from the weights' metadata, and API pages from docstrings.
Math is rendered by a MathJax copy served with the site, so it works offline."""

import importlib
import json
import os
from pathlib import Path

import scoredae
from scoredae.nets.registry import list_pretrained, load_pretrained

project = "scoredae"
author = "the scoredae authors"
release = scoredae.__version__
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",
    "sphinx.ext.viewcode",
    "sphinx_gallery.gen_gallery",
]
# the demos run two at a time, each in a worker process on its share of the CPU threads, as `make demo` runs them
GALLERY_JOBS = 2 if (os.cpu_count() or 1) >= 2 else 1
os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // GALLERY_JOBS)))
sphinx_gallery_conf = {
    "parallel": GALLERY_JOBS,
    "examples_dirs": "../demos",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"plot_",
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": True,
    "capture_repr": (),  # as when a demo runs on its own: printed output only, no repr of a last expression
    "doc_module": ("scoredae",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"scoredae": None},
}
autosummary_generate = True
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_inherit_docstrings = False  # torch's own docstrings are torch's documentation's
nitpicky = True  # every cross-reference must resolve (the build runs with -W)
templates_path = ["_templates"]
# type hints link to torch, numpy, deepinv and Python through inventories kept in docs/inventories
# (written by docs/inventories/write_inventories.py), so the build needs no network
intersphinx_mapping = {
    name: (url, f"inventories/{name}.inv")
    for name, url in {
        "python": "https://docs.python.org/3/",
        "numpy": "https://numpy.org/doc/stable/",
        "torch": "https://docs.pytorch.org/docs/stable/",
        "deepinv": "https://deepinv.github.io/deepinv/",
        "matplotlib": "https://matplotlib.org/stable/",
    }.items()
}
html_theme = "pydata_sphinx_theme"
html_static_path = ["_static"]
html_css_files = ["scoredae.css"]
# the right-hand table of contents everywhere but on the gallery's pages (auto_examples/, matched by
# no pattern), which give their figures the whole width
html_theme_options = {"secondary_sidebar_items": {
    pattern: ["page-toc", "sourcelink"] for pattern in ("*", "theory/**", "generated/**")}}
exclude_patterns = ["_build"]


def write_models_page(app) -> None:
    """docs/models.rst from the JSON metadata of every shipped model: nothing is typed by hand."""
    lines = ["Shipped models", "==============", "",
             "Generated at build time from ``scoredae/weights/*.json``: the architecture, the training",
             "command, PSNR (dB) / SSIM per noise level as ``scoredae eval`` measured them, with a fixed",
             "noise seed, and the Tweedie consistency of ``scoredae eval --consistency``: the ratio of",
             ":math:`\\sigma^2 \\operatorname{tr} J_D / d` to the true squared error, 1 for the MMSE denoiser",
             "(:func:`~scoredae.uncertainty.tweedie_consistency`), and of SURE to it, 1 for any denoiser.", ""]
    sections = {"mnist": "MNIST digits", "images": "Photographs (the image collection, 3 channels)"}
    shipped = list_pretrained()
    for dataset, title in sections.items():
        names = [n for n, meta in shipped.items() if meta.get("data", {}).get("dataset", "mnist") == dataset]
        lines += [title, "-" * len(title), ""] if names else []
        for name in names:
            lines += model_entry(name, shipped[name])
    Path(app.srcdir, "models.rst").write_text("\n".join(lines))


def model_entry(name: str, meta: dict) -> list[str]:
    """The reST lines of one shipped model."""
    config = meta["config"]
    level = (f"sigma in [{config['sigma_range'][0]:g}, {config['sigma_range'][1]:g}]"
             if config.get("sigma_range") else f"sigma = {config['sigma']:g}")
    params = sum(p.numel() for p in load_pretrained(name).parameters())
    scores = [f"sigma {s}: {psnr:.2f} dB / {meta['ssim'][s]:.3f}" for s, psnr in meta.get("psnr", {}).items()]
    ratios = [f"sigma {s}: trace/mse {c['trace/mse']:.3f} +- {c['trace/mse se']:.3f}, sure/mse {c['sure/mse']:.3f} "
              f"+- {c['sure/mse se']:.3f}" for s, c in meta.get("consistency", {}).items()]
    return [f"``{name}``", "~" * (len(name) + 4), "",
            f"- architecture: ``{meta['model']}`` with ``{json.dumps(config, sort_keys=True)}``",
            f"- parameters: {params:,}",
            f"- trained at: {level}, {meta['step']:,} steps, {meta['elapsed_s'] / 60:.0f} minutes",
            f"- PSNR / SSIM: {'; '.join(scores) if scores else 'not evaluated'}",
            f"- Tweedie consistency: {'; '.join(ratios) if ratios else 'not measured'}",
            f"- evaluated on: {meta.get('eval', 'not evaluated')}",
            "- command:", "", ".. code-block:: bash", "", f"   {meta['command']}", "",
            *generation_table(meta.get("generation"))]


def generation_table(record: dict | None) -> list[str]:
    """The reST table of a model's quality per denoiser call (``benchmarks/bench_generation.py``)."""
    if not record:
        return []

    def number(row, key, fmt):
        return format(row[key], fmt) if row.get(key) is not None else ""

    head = ["sampler (METHOD:CALLS, :cS churn S, :gW guidance W)", "denoiser calls", "seconds", "confident share",
            "class entropy", "FID", "label agreement", "median nearest", "near copies"]
    rows = [[r["row"], str(r["nfe"]), f"{r['seconds']:.0f}", f"{r['confident_share']:.3f}",
             f"{r['class_entropy']:.3f}", f"{r['fid']:.1f}", number(r, "label_agreement", ".3f"),
             number(r, "samples median nearest", ".2f"), number(r, "samples near copies", ".3f")]
            for r in record["rows"]]
    floor, held_out = record["real_digits"], record.get("held_out_digits", {})
    rows.append(["real digits (training; held-out for the distances)", "", "", f"{floor['confident_share']:.3f}",
                 f"{floor['class_entropy']:.3f}", f"{floor['fid']:.1f}", "", number(held_out, "median nearest", ".2f"),
                 number(held_out, "near copies", ".3f")])
    lines = [f"Generation, {record['n']:,} samples a row on {record['threads']} CPU threads:", "",
             ".. list-table::", "   :header-rows: 1", ""]
    for row in [head, *rows]:
        lines += [f"   * - {row[0]}", *(f"     - {cell}" for cell in row[1:])]
    lines += ["", f"measured by ``{record['command']}``", ""]
    if "bits_per_dim" in record:
        b = record["bits_per_dim"]
        lines += [f"Bits per dimension of the first {b['digits']} test digits: {b['mean']:.3f} +- {b['se']:.3f} "
                  f"({b['method']}).", ""]
    return lines


def resolve_reexport(app, env, node, contnode):
    """A reference to a name a package re-exports (``scoredae.sampling.ula``) goes to the page of the
    module that defines it (``scoredae.sampling.langevin.ula``)."""
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or not target.startswith("scoredae."):
        return None
    package, _, name = target.rpartition(".")
    try:
        home = getattr(getattr(importlib.import_module(package), name), "__module__", None)
    except (ImportError, AttributeError):
        return None
    if home is None or home == package:
        return None
    return env.get_domain("py").resolve_xref(env, node["refdoc"], app.builder, node["reftype"],
                                             f"{home}.{name}", node, contnode)


def setup(app):
    app.connect("builder-inited", write_models_page)
    app.connect("missing-reference", resolve_reexport)
    return {"parallel_read_safe": True}
