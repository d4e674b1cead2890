"""Check the built docs site as a reader's browser shows it (``make test-docs``).

Serves ``docs/_build/html`` on 127.0.0.1, opens pages in headless Chromium (the DOM after MathJax
and the theme's scripts ran, and a screenshot of each under ``docs/_build/screenshots/``) and
asserts: every image loads (``naturalWidth > 0`` in the browser, and a readable file), no "BROKEN"
thumbnail, no traceback text or stray ``<Figure size ...>`` repr, math rendered (MathJax output present, no raw ``\\(`` left in the
visible text) and no formula wider than its box, figures legible at the column width (shrunk by at most :data:`MAX_SHRINK`), the
animations present, the API pages linking to the examples that use them, and no broken internal
link or anchor.
"""

from __future__ import annotations

import functools
import html.parser
import http.server
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlparse

import matplotlib.image

SITE = Path(__file__).resolve().parent / "_build" / "html"
SHOTS = SITE.parent / "screenshots"
MATH_PAGES = ["index.html", "theory/estimators.html", "theory/langevin.html", "theory/diffusion.html", "theory/inverse.html",
              "theory/score_matching.html"]
ANIMATED = ["auto_examples/02_samplers/plot_langevin_2d.html",
            "auto_examples/05_sampling_trained_models/plot_mnist_langevin.html"]
BACKREFERENCED = ["generated/scoredae.sampling.langevin.ula.html", "generated/scoredae.mixtures.gaussian_mixture.GaussianMixture.html"]
PAGES = [*MATH_PAGES, "auto_examples/index.html", "auto_examples/01_toy_world/plot_posterior_1d.html",
         "auto_examples/04_mnist_denoisers/plot_mnist_denoisers.html", *ANIMATED,
         "auto_examples/07_photographs/plot_denoise_photographs.html",
         "auto_examples/09_inverse_problems/plot_posterior_samplers_2d.html",
         "auto_examples/09_inverse_problems/plot_mnist_inverse.html",
         "auto_examples/09_inverse_problems/plot_your_own_sampler.html", "models.html", "posterior_samplers.html", "api.html",
         "generated/scoredae.sampling.langevin.html", *BACKREFERENCED]
# A figure shown at less than 1/MAX_SHRINK of its pixel width has labels under ~8 px: unreadable.
MAX_SHRINK = 1.75
# Run in each page once it has loaded: every image's shown and natural width, and, once MathJax has
# typeset the page, by how many pixels each formula is wider than its box (an inline formula's own
# box, a display formula's container in the column): the rendered math (mjx-math) past the box's
# edges, or, where the box scrolls, its scrollable width (MathJax's hidden assistive MathML, absolutely
# positioned, gives an inline box that scrolls a scrollbar of its own), as attributes.
MEASURE = b"""<script>window.addEventListener('load', () => {
  document.querySelectorAll('img').forEach(i => i.setAttribute('data-widths', i.clientWidth + ' ' + i.naturalWidth));
  document.querySelectorAll('table.compact').forEach(t => {
    const box = t.parentElement;
    t.setAttribute('data-table-overflow', String(Math.max(box.scrollWidth - box.clientWidth, t.scrollWidth - box.clientWidth)));
  });
  const mark = () => document.querySelectorAll('span.math, div.math').forEach(m => {
    const box = m.tagName === 'DIV' ? m.querySelector('mjx-container') : m, math = m.querySelector('mjx-math');
    if (!box || !math) return;
    const b = box.getBoundingClientRect(), r = math.getBoundingClientRect();
    const scrolls = ['auto', 'scroll'].includes(getComputedStyle(box).overflowX) && m.tagName !== 'DIV';
    const past = Math.max(r.right - b.right, b.left - r.left, scrolls ? box.scrollWidth - box.clientWidth : 0);
    m.setAttribute('data-overflow', String(Math.round(past)));
  });
  const typeset = window.MathJax && MathJax.startup && MathJax.startup.promise;
  typeset ? typeset.then(mark) : mark();
});</script>"""
# A formula whose content is wider than its box by more than this many pixels is cut or scrolls.
MATH_SLACK = 1
MATH_TAG = re.compile(r'<(span|div)\b[^>]*\bclass="math\b[^>]*>')
OVERFLOW = re.compile(r'\bdata-overflow="(-?\d+)"')
# A summary table (class "compact", made to be scanned) must fit the column: no horizontal scrolling.
SUMMARY_TABLE = re.compile(r'<table\b[^>]*\bclass="[^"]*\bcompact\b[^>]*>')
TABLE_OVERFLOW = re.compile(r'\bdata-table-overflow="(-?\d+)"')


class Page(html.parser.HTMLParser):
    """The images, links, ids and visible text of one HTML document."""

    def __init__(self):
        super().__init__()
        self.images, self.links, self.ids, self.text, self._skip = [], [], set(), [], 0
        self.figures = []  # (src, shown width, natural width) of the gallery's figures

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "img" and attrs.get("src"):
            self.images.append(attrs["src"])
            if "data-widths" in attrs:
                shown, natural = (int(v) for v in attrs["data-widths"].split())
                self.figures.append((attrs["src"][:80], shown, natural, "sphx-glr-single-img" in
                                     attrs.get("class", "") or "sphx-glr-multi-img" in attrs.get("class", "")))
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag in ("script", "style", "mjx-assistive-mml"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style", "mjx-assistive-mml"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


def parse(markup: str) -> Page:
    page = Page()
    page.feed(markup)
    return page


def chromium(*args: str) -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("check_site: Chromium is not installed (make test-docs installs Debian's chromium)")
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--virtual-time-budget=10000", *args]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120).stdout


def check_page(base: str, name: str) -> list[str]:
    """The problems of one page, as a reader's browser shows it."""
    problems = []
    url = urljoin(base, name)
    dom = chromium("--window-size=1280,1600", "--dump-dom", url)  # a laptop, as the screenshot
    rendered = parse(dom)
    SHOTS.mkdir(parents=True, exist_ok=True)
    chromium("--window-size=1280,1600", f"--screenshot={SHOTS / name.replace('/', '_')}.png", url)
    text = " ".join(rendered.text)
    if "Traceback" in text:
        problems.append(f"{name}: traceback text on the page")
    if "BROKEN" in text or any("broken_example" in src for src in rendered.images):
        problems.append(f"{name}: a BROKEN gallery thumbnail")
    for src, shown, natural, figure in rendered.figures:
        if natural == 0:
            problems.append(f"{name}: image {src} does not load (naturalWidth 0)")
        elif figure and shown > 0 and natural / shown > MAX_SHRINK:
            problems.append(f"{name}: figure {src} shown at 1/{natural / shown:.1f} of its width: labels unreadable")
    if not rendered.figures and rendered.images:
        problems.append(f"{name}: the image widths were not measured")
    if name in ANIMATED and 'class="animation"' not in dom:
        problems.append(f"{name}: no animation")
    if name in BACKREFERENCED and not any("auto_examples/" in href for href in rendered.links):
        problems.append(f"{name}: no link to the examples that use it")
    if name in MATH_PAGES and ("\\(" in text or "\\[" in text or "<mjx-container" not in dom):
        problems.append(f"{name}: math not rendered (raw TeX in the text, or no MathJax output)")
    problems += check_math_widths(name, dom) + check_summary_tables(name, dom)
    for src in rendered.images:
        path = SITE / Path(name).parent / unquote(urlparse(src).path)
        if urlparse(src).scheme in ("", "file") and not src.startswith("data:"):
            try:
                ok = matplotlib.image.imread(path).shape[1] > 0 if path.suffix == ".png" else path.stat().st_size > 0
            except (OSError, ValueError, SyntaxError):
                ok = False
            if not ok:
                problems.append(f"{name}: image {src} does not load")
    return problems


def check_math_widths(name: str, dom: str) -> list[str]:
    """Every formula of the page measured, and none wider than its box: an inline formula wider than
    its box shows a scrollbar or is cut, a display formula wider than the column scrolls."""
    problems, counts = [], {"span": 0, "div": 0}
    for tag in MATH_TAG.finditer(dom):
        overflow = OVERFLOW.search(tag.group(0))
        if overflow is None:
            return [f"{name}: a formula was not measured (MathJax did not finish)"]
        if int(overflow.group(1)) > MATH_SLACK:
            counts[tag.group(1)] += 1
    if counts["span"]:
        problems.append(f"{name}: {counts['span']} inline formula(s) wider than their box")
    if counts["div"]:
        problems.append(f"{name}: {counts['div']} display formula(s) wider than the column")
    return problems


def check_summary_tables(name: str, dom: str) -> list[str]:
    """Every summary table of the page fits the column (it scrolls sideways otherwise)."""
    problems = []
    for tag in SUMMARY_TABLE.finditer(dom):
        overflow = TABLE_OVERFLOW.search(tag.group(0))
        if overflow is None:
            problems.append(f"{name}: a summary table was not measured")
        elif int(overflow.group(1)) > MATH_SLACK:
            problems.append(f"{name}: a summary table is {overflow.group(1)} px wider than the column")
    return problems


def check_links() -> list[str]:
    """Every internal link of every page points to an existing page and anchor, and no page shows a
    stray object repr such as ``<Figure size ...>``."""
    problems, ids = [], {}
    pages = {p.relative_to(SITE).as_posix(): parse(p.read_text(errors="replace")) for p in SITE.rglob("*.html")}
    for name, page in pages.items():
        ids[name] = page.ids
    for name, page in pages.items():
        if name.startswith(("_modules/", "_sources/")):
            continue
        if any("<Figure size" in t or "<matplotlib." in t for t in page.text):
            problems.append(f"{name}: a stray object repr (e.g. <Figure size ...>) in the text")
        for href in page.links:
            if urlparse(href).scheme or href == "#":  # another site, or the top of this page
                continue
            target, anchor = urldefrag(href)
            target_name = (Path(name).parent / unquote(target)).as_posix() if target else name
            target_name = str(Path(target_name)).replace("\\", "/")
            resolved = Path(SITE, target_name).resolve()
            if not resolved.exists():
                problems.append(f"{name}: link to a missing {href}")
            elif anchor and resolved.suffix == ".html":
                key = resolved.relative_to(SITE).as_posix()
                if anchor not in ids.get(key, set()):
                    problems.append(f"{name}: link to a missing anchor {href}")
    return problems


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the site, adding :data:`MEASURE` to every HTML page; logs nothing."""

    def do_GET(self) -> None:
        path = Path(self.translate_path(self.path))
        if path.suffix != ".html" or not path.is_file():
            return super().do_GET()
        body = path.read_bytes().replace(b"</body>", MEASURE + b"</body>")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return None

    def log_message(self, *args) -> None:
        pass


def main() -> int:
    if not (SITE / "index.html").exists():
        raise SystemExit(f"check_site: no site at {SITE}; run `make docs` first")
    handler = functools.partial(Handler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        problems = [p for name in PAGES for p in check_page(base, name)] + check_links()
    finally:
        server.shutdown()
    for problem in problems:
        print(problem)
    print(f"{len(PAGES)} pages opened, screenshots in {SHOTS}: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
