"""Sphinx configuration for sklearn_boostmis.

Build (warnings are errors, every gallery example is executed)::

    OMP_NUM_THREADS=1 python -m sphinx -W -b html docs /tmp/docs_out

Nothing is downloaded at build time: no intersphinx, gallery examples use
scikit-learn's bundled data only.
"""

import os
import re
import sys
import warnings
from datetime import date

# The package is normally installed (``pip install -e .``); fall back to the
# source tree so that a plain checkout builds too.
sys.path.insert(0, os.path.abspath(".."))
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import sklearn_boostmis  # noqa: E402

project = "sklearn_boostmis"
author = "sklearn_boostmis developers"
copyright = f"{date.today().year}, {author}"
release = sklearn_boostmis.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
root_doc = "index"

# -- autodoc / autosummary / numpydoc ----------------------------------------
autosummary_generate = True
autosummary_imported_members = False
# no "members" default here: on Sphinx 9 it overrides the template's :members:
autodoc_default_options = {"inherited-members": False}
autodoc_typehints = "none"
# numpydoc renders the docstrings; autosummary pages list the methods
# themselves (see _templates/autosummary/class.rst), so numpydoc must not add
# a second members table (duplicate object warnings otherwise).
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False
# Docstrings reference torch / skorch / scikit-learn objects that are not in
# this site; without intersphinx those references stay plain text (this is
# why nitpicky mode is off).
nitpicky = False

# -- sphinx-gallery -----------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": "/plot_",
    "ignore_pattern": r"quickstart\.py",
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "plot_gallery": "True",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "show_memory": False,
    "remove_config_comments": True,
    # No backreferences / no remote resolution: nothing is fetched.
    "doc_module": (),
    "reference_url": {},
    "matplotlib_animations": False,
}

# Examples print their tables; keep matplotlib and torch quiet in the log.
warnings.filterwarnings("ignore", category=UserWarning, message=".*non-GUI backend.*")

# Array shapes in docstrings name fitted attributes, e.g. ``(n_iter_,)``; in
# reStructuredText a word ending in "_" is a link reference ("Unknown target
# name"). Escape a trailing "_" inside "shape (...)" before numpydoc runs.
_SHAPE = re.compile(r"shape \([^)]*\)")


def _escape_shape_underscores(app, what, name, obj, options, lines):
    for i, line in enumerate(lines):
        if "shape (" in line:
            lines[i] = _SHAPE.sub(
                lambda m: re.sub(r"(?<=\w)(?<!\\)_(?=[,)])", r"\\_", m.group(0)),
                line,
            )


def setup(app):
    # numpydoc's own handler has the default priority 500: run before it.
    app.connect("autodoc-process-docstring", _escape_shape_underscores, priority=400)


# -- HTML ------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sklearn_boostmis {release}"
html_static_path = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
    "navbar_end": ["navbar-icon-links"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars = {"**": ["sidebar-nav-bs"]}
html_show_sourcelink = False
html_copy_source = False
