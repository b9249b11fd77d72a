"""Sphinx configuration of the documentation site: `bash scripts/docs.sh` builds it into docs/_build/html.

Sphinx with MyST (Markdown pages) and the Furo theme: all three are maintained and released (MkDocs itself
has had no release since 2024), Sphinx's autodoc reads the API from the docstrings, sphinx-click the CLI
reference from the Typer app, and the built-in search works offline from a static folder.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

import tsmcli  # noqa: E402

project = "tsm"
release = version = tsmcli.__version__
copyright = "the tsm authors"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "generated_pages",
]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "_ext", "README.md"]
myst_heading_anchors = 3  # `page.md#a-heading` links are checked like any cross-reference
myst_enable_extensions = ["colon_fence"]
suppress_warnings = []
nitpicky = False

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": False}

html_theme = "furo"
html_title = f"tsm {version}"
html_static_path = []
html_favicon = "_static/favicon.svg"  # browsers ask for one: without it every page logs a 404
