"""Sphinx configuration of the dimsefsm site (``make docs``).

The pages are the Markdown files of ``docs/`` (MyST) plus the README; what can
be generated is generated at build time from the code, never copied: the API
reference (autodoc), the command-line reference (the argparse parsers, see
``_ext/dimsefsm_docs.py``), the statechart gallery (``statecharts/*.svg``) and
the sample sequence diagram (``dimsefsm.sequence`` over ``traces/*.log``).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent / "src"))

from dimsefsm import __version__  # noqa: E402

project = "dimsefsm"
author = "the dimsefsm authors"
copyright = "2026, the dimsefsm authors"
version = release = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "dimsefsm_docs",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "traces", "_ext"]
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]
nitpicky = False  # docstrings name types of pydicom and the standard library freely

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True}

html_theme = "alabaster"
html_title = f"dimsefsm {__version__}"
html_static_path: list[str] = []
