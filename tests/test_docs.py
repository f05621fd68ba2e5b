"""Build the documentation with warnings as errors (opt-in: ``BUILD_DOCS=1``).

The build executes every gallery example (``examples/plot_*.py``), which takes
minutes on a CPU, so it is not part of the default test run. Enable it with::

    BUILD_DOCS=1 OMP_NUM_THREADS=1 python -m pytest tests/test_docs.py

It needs the ``docs`` extra (sphinx, sphinx-gallery, numpydoc,
pydata-sphinx-theme, matplotlib). ``docs/`` and ``examples/`` are copied to a
temporary folder first, so the build leaves no generated files in the tree.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(
    os.environ.get("BUILD_DOCS") != "1",
    reason="docs build executes every gallery example (minutes); set BUILD_DOCS=1",
)
def test_docs_build_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("sphinx_gallery")
    pytest.importorskip("numpydoc")
    pytest.importorskip("pydata_sphinx_theme")
    pytest.importorskip("matplotlib")
    ignore = shutil.ignore_patterns(
        "_build", "generated", "auto_examples", "sg_execution_times.rst"
    )
    shutil.copytree(ROOT / "docs", tmp_path / "docs", ignore=ignore)
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    out = tmp_path / "html"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-b",
            "html",
            str(tmp_path / "docs"),
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    assert (out / "index.html").is_file()
    assert (out / "api.html").is_file()
    examples = sorted(p.stem for p in (ROOT / "examples").glob("plot_*.py"))
    assert examples, "no gallery examples found"
    for name in examples:
        page = out / "auto_examples" / f"{name}.html"
        assert page.is_file(), f"gallery page of {name} missing"
        # sphinx-gallery writes one image per figure of an executed example
        images = list((out / "_images").glob(f"sphx_glr_{name}_*.png"))
        assert images, f"{name} produced no figure"
