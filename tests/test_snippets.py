"""Run the Python code blocks of README.md and of the documentation pages.

Every block runs on its own, in a fresh namespace, as it runs for a reader who
copies that one block: it imports what it uses and builds its own estimators.
The pages leave only the data to the reader (``X``, ``y``, ``y_partial``,
``X_test``, an ``ask_a_human`` oracle, ...); the namespace starts with small
stand-ins for those names and nothing else (150 digits rows), and a fit
without ``max_epochs`` makes 10 passes instead of the default 200: the blocks
show how to call the package, the benchmarks measure quality. A block that
needs an optional package which is not installed is skipped, and the skip
reason names the package.
"""

import ast
import builtins
import inspect
import re
import textwrap
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from sklearn_boostmis import BoostMISClassifier

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", *sorted(p.name for p in (ROOT / "docs").glob("*.rst"))]
FAST_MAX_EPOCHS = 10
OPTIONAL = {"modAL": "modAL-python"}


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


def reader_data():
    """Stand-ins for the data a page leaves to the reader: no imports and no
    estimators, which every block brings itself."""
    X_all, y_all = load_digits(return_X_y=True)
    X_all = X_all / 16.0
    X, y = X_all[:150], y_all[:150]
    y_partial = np.full_like(y, -1)
    for c in np.unique(y):
        y_partial[np.flatnonzero(y == c)[:3]] = c
    return {
        "X": X,
        "y": y,
        "y_partial": y_partial,
        "unlabeled_rows": np.flatnonzero(y_partial == -1),
        "X_pool": X[y_partial == -1],
        "X_test": X_all[1500:1600],
        "y_test": y_all[1500:1600],
        "X_val": X_all[1600:1700],
        "y_val": y_all[1600:1700],
        "images": X.reshape(-1, 8, 8),
        "ask_a_human": lambda rows: y[rows],
    }


BLOCKS = [
    pytest.param(name, number, code, id=f"{name}-block{number}")
    for name in PAGES
    for number, code in enumerate(page_blocks(name), start=1)
]


def unbound_names(code):
    """Names that ``code`` reads but neither assigns, imports nor defines, and
    that are not builtins."""
    bound, read = set(), set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return read - bound - set(dir(builtins))


def test_every_page_has_python_blocks_found():
    counts = {name: len(page_blocks(name)) for name in PAGES}
    assert counts["README.md"] >= 6 and counts["user_guide.rst"] >= 4, counts


@pytest.mark.parametrize("name, number, code", BLOCKS)
def test_code_block_reads_only_the_reader_data(name, number, code):
    # checked without running, so also for the blocks skipped below
    unknown = unbound_names(code) - set(reader_data())
    assert not unknown, (
        f"{name}, block {number} uses {sorted(unknown)} without importing or "
        f"defining them:\n{code}"
    )


@pytest.fixture
def short_default_fits(monkeypatch):
    """``BoostMISClassifier()`` defaults to ``max_epochs=FAST_MAX_EPOCHS``."""
    init = BoostMISClassifier.__init__
    names = list(inspect.signature(init).parameters)[-len(init.__defaults__) :]
    defaults = list(init.__defaults__)
    defaults[names.index("max_epochs")] = FAST_MAX_EPOCHS
    monkeypatch.setattr(init, "__defaults__", tuple(defaults))


def test_short_default_fits_shorten_only_the_default(short_default_fits):
    assert BoostMISClassifier().max_epochs == FAST_MAX_EPOCHS
    assert BoostMISClassifier(max_epochs=3).max_epochs == 3
    assert BoostMISClassifier().get_params()["lambda_u"] == 1.0


@pytest.mark.parametrize("name, number, code", BLOCKS)
@pytest.mark.usefixtures("short_default_fits")
def test_code_block_runs_on_its_own(name, number, code, tmp_path, monkeypatch):
    missing = [
        package
        for module, package in OPTIONAL.items()
        if re.search(rf"\b{module}\b", code) and find_spec(module) is None
    ]
    if missing:
        needs = ", ".join(missing)
        pytest.skip(f"{name}, block {number} needs {needs} (not installed)")
    monkeypatch.chdir(tmp_path)  # blocks write files (weights, loop state)
    try:
        exec(compile(code, f"{name}, block {number}", "exec"), reader_data())
    except Exception as exc:
        raise AssertionError(f"{name}, block {number} failed:\n{code}") from exc
