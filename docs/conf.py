"""Sphinx configuration: the landing page, the gallery built from demos/ (one folder a section),
the shipped-models page generated from the weights' metadata, the posterior-sampler leaderboard from
its shipped JSON, and API pages from docstrings.
Math is rendered by a MathJax copy served with the site, so it works offline."""

import importlib
import json
import os
import sys
from pathlib import Path

import scoredae
from scoredae.nets.registry import list_pretrained, load_pretrained

sys.path.insert(0, str(Path(__file__).resolve().parent))
from leaderboard_page import write_leaderboard_page

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
# the right-hand table of contents on the pages of text; the gallery's pages and the models page
# (matched by no pattern) give their figures and tables the whole width
html_theme_options = {"secondary_sidebar_items": {
    pattern: ["page-toc", "sourcelink"] for pattern in ("index", "api", "references", "theory/**", "generated/**")}}
# top-level pages without sub-pages: no left-hand navigation, which would be empty
html_sidebars = {"models": [], "references": [], "posterior_samplers": []}
exclude_patterns = ["_build"]


def write_models_page(app) -> None:
    """docs/models.rst from the JSON metadata of every shipped model: nothing is typed by hand."""
    lines = ["Shipped models", "==============", "",
             "Generated at build time from ``scoredae/weights/*.json``: the architecture, the training",
             "command, PSNR (dB) / SSIM per noise level as ``scoredae eval`` measured them, with a fixed",
             "noise seed, and the Tweedie consistency of ``scoredae eval --consistency``: the ratio of",
             ":math:`\\sigma^2 \\operatorname{tr} J_D / d` to the true squared error, 1 for the MMSE denoiser",
             "(:func:`~scoredae.uncertainty.tweedie_consistency`), and of SURE to it, 1 for any denoiser.",
             "Each section opens with one table of its models; each model's details, command and",
             "generation record follow it.", ""]
    sections = {"mnist": "MNIST digits", "images": "Photographs (the image collection, 3 channels)"}
    shipped = list_pretrained()
    params = {name: sum(p.numel() for p in load_pretrained(name).parameters()) for name in shipped}
    for dataset, title in sections.items():
        names = [n for n, meta in shipped.items() if meta.get("data", {}).get("dataset", "mnist") == dataset]
        if not names:
            continue
        lines += [title, "-" * len(title), "", *summary_table({n: shipped[n] for n in names}, params), ""]
        for name in names:
            lines += model_entry(name, shipped[name], params[name])
    Path(app.srcdir, "models.rst").write_text("\n".join(lines))


def trained_at(config: dict) -> str:
    """The noise levels a model was trained at: one level, or a range."""
    if config.get("sigma_range"):
        return f"[{config['sigma_range'][0]:g}, {config['sigma_range'][1]:g}]"
    return f"{config['sigma']:g}"


def summary_table(models: dict[str, dict], params: dict[str, int]) -> list[str]:
    """One row per model: architecture, parameters, training levels, PSNR at every level measured in
    the section, the Tweedie consistency at the largest level all of them were measured at, minutes."""
    levels = sorted({s for meta in models.values() for s in meta.get("psnr", {})}, key=float)
    shared = set.intersection(*(set(meta.get("consistency", {})) for meta in models.values()))
    at = max(shared, key=float) if shared else None
    head = ["model", "architecture", "parameters", "σ trained", *(f"PSNR {s}" for s in levels),
            *([f"Tweedie {at}"] if at else []), "min"]
    rows = [head]
    for name, meta in models.items():
        psnr = [f"{meta['psnr'][s]:.2f}" if s in meta.get("psnr", {}) else "" for s in levels]
        consistency = meta.get("consistency", {}).get(at)
        rows.append([f":ref:`{name} <model-{name}>`", meta["model"], f"{params[name]:,}", trained_at(meta["config"]),
                     *psnr, *([f"{consistency['trace/mse']:.3f} ± {consistency['trace/mse se']:.3f}"] if at else []),
                     f"{meta['elapsed_s'] / 60:.0f}"])
    legend = (f"PSNR (dB) at each noise level σ, the Tweedie consistency (trace/mse, 1 for the MMSE denoiser) at "
              f"σ = {at}, and the minutes of training on a CPU:" if at else "PSNR (dB) at each noise level σ:")
    return [legend, "", *list_table(rows, css_class="compact")]


def list_table(rows: list[list[str]], css_class: str | None = None) -> list[str]:
    """A reST list-table, its first row the header."""
    lines = [".. list-table::", "   :header-rows: 1", *([f"   :class: {css_class}"] if css_class else []), ""]
    for row in rows:
        lines += [f"   * - {row[0]}", *(f"     - {cell}" for cell in row[1:])]
    return [*lines, ""]


def model_entry(name: str, meta: dict, params: int) -> list[str]:
    """The reST lines of one shipped model."""
    config = meta["config"]
    scores = [f"sigma {s}: {psnr:.2f} dB / {meta['ssim'][s]:.3f}" for s, psnr in meta.get("psnr", {}).items()]
    ratios = [f"sigma {s}: trace/mse {c['trace/mse']:.3f} +- {c['trace/mse se']:.3f}, sure/mse {c['sure/mse']:.3f} "
              f"+- {c['sure/mse se']:.3f}" for s, c in meta.get("consistency", {}).items()]
    return [f".. _model-{name}:", "", f"``{name}``", "~" * (len(name) + 4), "",
            f"- architecture: ``{meta['model']}`` with ``{json.dumps(config, sort_keys=True)}``",
            f"- parameters: {params:,}",
            f"- trained at: sigma {trained_at(config)}, {meta['step']:,} steps, {meta['elapsed_s'] / 60:.0f} minutes",
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
             *list_table([head, *rows]), f"measured by ``{record['command']}``", ""]
    if "bits_per_dim" in record:
        b = record["bits_per_dim"]
        lines += [f"Bits per dimension of the first {b['digits']} test digits: {b['mean']:.3f} +- {b['se']:.3f} "
                  f"({b['method']}).", ""]
    return lines


def resolve_reexport(app, env, node, contnode):
    """A reference to a name a package re-exports (``scoredae.sampling.ula``,
    ``scoredae.mixtures.GaussianMixture.posterior``, or ``GaussianMixture`` in a module that imports
    it) goes to the page of the module that defines it (``scoredae.sampling.langevin.ula``,
    ``scoredae.mixtures.gaussian_mixture.GaussianMixture.posterior``)."""
    target, module = node.get("reftarget", ""), node.get("py:module") or ""
    if node.get("refdomain") != "py":
        return None
    if target.startswith("scoredae."):
        candidates = [target]
    else:  # relative to the module the reference is written in, then to its packages
        parts = module.split(".") if module.startswith("scoredae") else []
        candidates = [".".join([*parts[:cut], target]) for cut in range(len(parts), 0, -1)]
    for candidate in candidates:
        home = defining_path(candidate)
        if home is not None and home != candidate:
            return env.get_domain("py").resolve_xref(env, node["refdoc"], app.builder, node["reftype"],
                                                     home, node, contnode)
    return None


def defining_path(target: str) -> str | None:
    """The dotted path under which ``target`` is defined: its object's module and qualified name,
    found from the longest importable module prefix of ``target``; None if it names nothing."""
    parts = target.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for name in parts[cut:]:
                obj = getattr(obj, name)
        except AttributeError:
            return None
        module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
        return f"{module}.{qualname}" if module and qualname else None
    return None


def setup(app):
    app.connect("builder-inited", write_models_page)
    app.connect("builder-inited", write_leaderboard_page)
    app.connect("missing-reference", resolve_reexport)
    return {"parallel_read_safe": True}
