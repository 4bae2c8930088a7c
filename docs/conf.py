"""Sphinx configuration for trioweb's documentation.

Built by ``tox -e docs`` as ``sphinx-build -W --keep-going -n -b html docs docs/_build/html``:
warnings are errors and every cross-reference must resolve (nitpicky), except the references to
other projects' types listed in ``nitpick_ignore_regex`` (there is no intersphinx: the build has
no network).
"""

from __future__ import annotations

import trioweb

project = "trioweb"
author = "trioweb maintainers"
copyright = "trioweb maintainers"
release = trioweb.__version__
version = ".".join(release.split(".")[:2])

extensions = ["sphinx.ext.autodoc"]

exclude_patterns = ["_build", "examples", "performance_results.rst"]
highlight_language = "python3"
pygments_style = "sphinx"

# The reference is hand-written around autodoc: members are listed where they are wanted, in the
# order the page wants them, and type hints stay out of the signatures (the prose says the types).
autodoc_member_order = "bysource"
autodoc_typehints = "none"
autodoc_default_options = {"exclude-members": "__init__, __new__"}

nitpicky = True
# Types of other projects that docstrings and prose name; without intersphinx they cannot resolve.
# Never add trioweb's own names here: a broken reference to them is a bug in the docs.
nitpick_ignore_regex = [
    (r"py:.*", r"(werkzeug|trio|jinja2|hypercorn|attrs)(\..*)?"),
    (r"py:.*", r"(typing|collections\.abc)\..*"),
]

html_theme = "alabaster"
html_theme_options = {
    "description": "A Trio-native web framework with Quart's API",
    "fixed_sidebar": True,
}
html_title = f"trioweb {release}"
