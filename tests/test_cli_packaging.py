"""What a user meets before any training: start-up of the ``boostmis`` command,
the package's import paths and dependencies, and unreadable ``.npy`` files."""

import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

import sklearn_boostmis
from sklearn_boostmis.cli import main
from sklearn_boostmis.datasets import write_mescc_like

ROOT = pathlib.Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}

# Runs a command line in a fresh interpreter and prints the heavy modules that
# were imported by the time the parser exited (--version, --help, a usage error).
_PARSE_ONLY = """
import sys
import sklearn_boostmis.cli as cli
try:
    cli.main(sys.argv[1:])
except SystemExit as exit:
    print("exit", exit.code)
print("heavy", *sorted({"numpy", "sklearn", "skorch", "torch"} & set(sys.modules)))
"""


def _python(code, *args):
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
    )


@pytest.mark.parametrize(
    "argv, status",
    [
        (["--version"], 0),
        (["--help"], 0),
        (["run", "--help"], 0),
        (["run", "DATA_DIR"], 2),  # --task missing
        (["query", "DATA_DIR", "--task", "two"], 2),  # --labels, --budget missing
        (["demo", "--seed", "-1"], 2),
    ],
)
def test_parsing_imports_neither_torch_nor_sklearn(argv, status):
    result = _python(_PARSE_ONLY, *argv)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == [f"exit {status}", "heavy"]


def test_version_output():
    result = _python(_PARSE_ONLY, "--version")
    assert result.stdout.splitlines()[0] == f"boostmis {sklearn_boostmis.__version__}"


def test_public_import_paths_after_lazy_init():
    code = """
import sklearn_boostmis
names = set(sklearn_boostmis.__all__)
assert names <= set(dir(sklearn_boostmis)), names - set(dir(sklearn_boostmis))
namespace = {}
exec("from sklearn_boostmis import *", namespace)
assert names <= set(namespace), names - set(namespace)
from sklearn_boostmis import BoostMISClassifier
assert BoostMISClassifier.__module__ == "sklearn_boostmis.classifier"
assert sklearn_boostmis.datasets.write_mescc_like  # a submodule as an attribute
from sklearn_boostmis.cli import load_run_model, main
assert "load_run_model" in dir(sklearn_boostmis.cli)
try:
    sklearn_boostmis.no_such_name
except AttributeError as exc:
    assert "no_such_name" in str(exc)
else:
    raise AssertionError("no AttributeError")
print("ok")
"""
    result = _python(code)
    assert result.stdout == "ok\n", result.stderr


def test_safetensors_is_a_core_dependency():
    """``boostmis run`` writes model.safetensors after the plain install."""
    tomllib = pytest.importorskip("tomllib")
    with open(ROOT / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    names = [req.split(">")[0].split("=")[0].strip() for req in project["dependencies"]]
    assert "safetensors" in names


class _Tripwire:
    """Unpickling it creates ``path``: a pickle that was loaded leaves a trace."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.path),))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_mescc_like(
        tmp_path_factory.mktemp("mescc"), scale=0.05, n_features=8, random_state=0
    )


def _with_bad_train_features(data_dir, tmp_path, kind):
    path = tmp_path / "data"
    shutil.copytree(data_dir, path)
    target = path / "train-features.npy"
    if kind == "pickled objects":
        array = np.array([_Tripwire(tmp_path / "unpickled"), None], dtype=object)
        np.save(target, array, allow_pickle=True)
    elif kind == "corrupt":
        target.write_bytes(b"\x00\x01 not an array at all" * 4)
    else:  # empty
        target.write_bytes(b"")
    return path, target


@pytest.mark.parametrize("kind", ["corrupt", "pickled objects", "empty"])
@pytest.mark.parametrize("command", ["run", "query"])
def test_unreadable_npy_is_one_error_line(data_dir, tmp_path, capsys, command, kind):
    path, target = _with_bad_train_features(data_dir, tmp_path, kind)
    out = tmp_path / "out"
    if command == "run":
        argv = ["run", path, "--task", "two", "--out", out, "--max-epochs", "1"]
    else:
        labels = tmp_path / "LABELS.csv"
        labels.write_text("index,label\n0,0\n1,1\n")
        argv = ["query", path, "--task", "two", "--labels", labels, "--budget", "2"]
        argv += ["--out", out / "candidates.csv"]

    assert main([str(arg) for arg in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {target}: not a valid .npy array file (")
    assert err.count("\n") == 1
    assert "allow_pickle" not in err and "pickle.load" not in err
    assert not (tmp_path / "unpickled").exists()
    assert not out.exists()
