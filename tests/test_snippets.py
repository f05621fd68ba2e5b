"""Run the Python code blocks of README.md and of the documentation pages.

The blocks of one page run in order in one namespace, as a reader would run
them. The pages leave the data to the reader (``X``, ``y``, ``y_partial``,
``X_test``, an ``ask_a_human`` oracle, a fitted ``clf``, ...); the namespace
starts with small stand-ins for those names (digits rows, so that every default
fit stays short).
A block that needs an optional package which is not installed is skipped and
named in the skip reason; the other blocks of the page still run.
"""

import re
import textwrap
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", *sorted(p.name for p in (ROOT / "docs").glob("*.rst"))]
OPTIONAL = {"modAL": "modAL-python", "safetensors": "safetensors"}


def markdown_blocks(text):
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.M | re.S)


def rst_blocks(text):
    blocks, lines = [], text.splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"( *)\.\. code-block:: python\s*$", line)
        if not match:
            continue
        indent, body = len(match.group(1)), []
        for following in lines[i + 1 :]:
            stripped = following.strip()
            if stripped and len(following) - len(following.lstrip()) <= indent:
                break
            if not body and (not stripped or stripped.startswith(":")):
                continue  # the directive's options and the blank line after it
            body.append(following)
        blocks.append(textwrap.dedent("\n".join(body)))
    return blocks


def page_blocks(name):
    text = (ROOT if name == "README.md" else ROOT / "docs").joinpath(name).read_text()
    return markdown_blocks(text) if name.endswith(".md") else rst_blocks(text)


def reader_namespace():
    """Stand-ins for the data a page leaves to the reader."""
    X_all, y_all = load_digits(return_X_y=True)
    X_all = X_all / 16.0
    X, y = X_all[:150], y_all[:150]
    y_partial = np.full_like(y, -1)
    for c in np.unique(y):
        y_partial[np.flatnonzero(y == c)[:3]] = c
    from sklearn_boostmis import BoostMISClassifier

    return {
        "np": np,
        # "a fitted classifier", e.g. for the persistence blocks
        "clf": BoostMISClassifier(max_epochs=5, random_state=0).fit(X, y_partial),
        "X": X,
        "y": y,
        "y_partial": y_partial,
        "y_train": y_partial.copy(),
        "unlabeled_rows": np.flatnonzero(y_partial == -1),
        "X_pool": X[y_partial == -1],
        "X_test": X_all[1500:1600],
        "y_test": y_all[1500:1600],
        "X_val": X_all[1600:1700],
        "y_val": y_all[1600:1700],
        "images": X.reshape(-1, 8, 8),
        "ask_a_human": lambda rows: y[rows],
    }


def test_every_page_has_python_blocks_found():
    counts = {name: len(page_blocks(name)) for name in PAGES}
    assert counts["README.md"] >= 6 and counts["user_guide.rst"] >= 4, counts


@pytest.mark.parametrize("name", [p for p in PAGES if page_blocks(p)])
def test_code_blocks_of_page_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # blocks write files (weights, loop state)
    namespace, skipped = reader_namespace(), []
    for number, code in enumerate(page_blocks(name), start=1):
        missing = [
            package
            for module, package in OPTIONAL.items()
            if re.search(rf"\b{module}\b", code) and find_spec(module) is None
        ]
        if missing:
            skipped.append(f"block {number} needs {', '.join(missing)}")
            continue
        try:
            exec(compile(code, f"{name}, block {number}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"{name}, block {number} failed:\n{code}") from exc
    if skipped:
        pytest.skip("; ".join(skipped))
