"""The method page (docs/method.rst) is the one description of the method.

The docstrings point to its sections with ``:ref:`method-...``` labels; the
Sphinx build catches a broken label only when it runs (``BUILD_DOCS=1``), so
the labels are checked here as text. No file points to the specification
files the package was first written from, which are not part of it.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHOD_PAGE = ROOT / "docs" / "method.rst"
GENERATED = {"_build", "generated", "auto_examples"}
# written in two pieces so that this file does not match itself
UNPUBLISHED = re.compile("(METHOD|STYLE)" + r"\.md")
# :ref:`method-losses` or :ref:`any text <method-losses>`
CITED_LABEL = re.compile(r":ref:`(?:[^`<]*<)?(method[\w-]*)>?`")


def _files(*patterns):
    for pattern in patterns:
        for path in sorted(ROOT.glob(pattern)):
            if path.is_file() and not GENERATED & set(path.parts):
                yield path


def _labels_defined():
    return set(re.findall(r"^\.\. _(method[\w-]*):$", METHOD_PAGE.read_text(), re.M))


def test_no_file_cites_the_unpublished_specifications():
    files = list(
        _files(
            "README.md",
            "sklearn_boostmis/**/*.py",
            "docs/**/*.rst",
            "docs/**/*.py",
            "examples/**/*",
            "benchmarks/**/*.py",
            "benchmarks/**/*.md",
            "tests/**/*.py",
        )
    )
    assert len(files) > 50, "the scan found too few files: is the glob wrong?"
    citing = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in files
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if UNPUBLISHED.search(line)
    ]
    assert not citing, "cite the method page (docs/method.rst) instead: " + ", ".join(
        citing
    )


def test_method_labels_cited_in_docstrings_and_docs_exist():
    cited = {}
    for path in _files("sklearn_boostmis/**/*.py", "docs/*.rst", "examples/*.py"):
        for label in CITED_LABEL.findall(path.read_text()):
            cited.setdefault(label, str(path.relative_to(ROOT)))
    assert len(cited) >= 8, f"the method page is cited too rarely: {cited}"
    defined = _labels_defined()
    missing = {label: path for label, path in cited.items() if label not in defined}
    assert not missing, f"labels missing from docs/method.rst: {missing}"


def test_method_page_is_in_the_toctree():
    index = (ROOT / "docs" / "index.rst").read_text()
    assert re.search(r"^   method$", index, re.M)
