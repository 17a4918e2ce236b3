"""Sphinx configuration for nursemaid's documentation.

Why Sphinx + MyST + furo (and not MkDocs): the reference is generated from the
code's own Google-style docstrings by ``autodoc`` and ``napoleon``, so it cannot
drift from the code; ``sphinx.ext.graphviz`` renders the diagrams (which are
generated from the code's transition tables) locally with Graphviz's ``dot``, with
no network access at build time; MyST lets every page be plain Markdown; and it is
the toolchain Trio's own docs use, so Trio users find the same conventions.

Build: ``nox -s docs`` (warnings are errors). Needs Graphviz's ``dot`` on PATH.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))  # so autodoc sees this checkout even if not installed

from sphinx.errors import ConfigError  # noqa: E402

import nursemaid  # noqa: E402

if shutil.which("dot") is None:
    raise ConfigError(
        "Graphviz's 'dot' is not on PATH, and the docs' diagrams need it; "
        "install Graphviz (e.g. 'apt-get install graphviz' or 'brew install graphviz')"
    )

project = "nursemaid"
author = "the nursemaid authors"
copyright = "the nursemaid authors"
release = nursemaid.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.graphviz",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# ---- MyST ------------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist", "fieldlist", "attrs_inline"]
myst_heading_anchors = 3

# ---- autodoc + napoleon (Google docstrings) -------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_typehints_description_target = "documented"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True  # "Attributes:" as fields, so attrs fields are not described twice
napoleon_use_rtype = False

# ---- graphviz ----------------------------------------------------------------------------
graphviz_output_format = "svg"

# ---- HTML ----------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"nursemaid {release}"
html_static_path: list[str] = []
