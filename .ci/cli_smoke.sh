#!/usr/bin/env bash
# The README's install alone (no extras, no test dependencies) in a virtual
# environment of its own, then every documented command line on small synthetic
# data: what a new user runs first. Every step is printed before it runs; the
# first failure stops the script with the failing command and status 1.
#
#   .ci/cli_smoke.sh                        # environment in a temporary folder
#   SMOKE_VENV=/tmp/smoke_venv .ci/cli_smoke.sh
set -Eeuo pipefail
export OMP_NUM_THREADS=1 MPLBACKEND=Agg
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$(mktemp -d)
VENV=${SMOKE_VENV:-$WORK/venv}
current="setting up"
trap 'echo "cli_smoke: FAILED (status $?) in: $current (files in $WORK)" >&2' ERR

step() {
    current="$*"
    echo "cli_smoke \$ $*" >&2
    "$@"
}

fail() {
    echo "cli_smoke: FAILED: $* (files in $WORK)" >&2
    exit 1
}

# The README's install line, run from an empty folder so that nothing from the
# checkout is importable except through the install.
step python3 -m venv "$VENV"
. "$VENV/bin/activate"
cd "$WORK"
step python -m pip install --quiet "torch==2.13.0" -e "$ROOT"
if python -c "import pytest" 2>/dev/null; then
    fail "pytest is installed: this environment must hold the README's install only"
fi

# Start-up: version, help, and the package's modules import (modules for the
# optional extras dask and accelerate import theirs only when used).
version=$(python -c "import sklearn_boostmis; print(sklearn_boostmis.__version__)")
[ "$(step boostmis --version)" = "boostmis $version" ] || fail "boostmis --version"
[ "$(step python -m sklearn_boostmis --version)" = "boostmis $version" ] ||
    fail "python -m sklearn_boostmis --version"
for command in "" demo run query; do
    # shellcheck disable=SC2086  # no argument for the top-level help
    step boostmis $command --help >/dev/null
done
step python - <<'EOF'
import importlib
import pkgutil

import sklearn_boostmis

for module in pkgutil.walk_packages(sklearn_boostmis.__path__, "sklearn_boostmis."):
    importlib.import_module(module.name)
for name in sklearn_boostmis.__all__:
    getattr(sklearn_boostmis, name)
EOF

step boostmis demo --quick --out demo
for file in learning_curve.png results.json; do
    [ -s "demo/$file" ] || fail "boostmis demo wrote no demo/$file"
done

# A synthetic MESCC folder, small and low-dimensional: the loop in seconds.
step python -c "
from sklearn_boostmis.datasets import write_mescc_like
write_mescc_like('data', scale=0.1, n_features=64, random_state=0)"

step boostmis run data --task two --cycles 1 --budget 10 --initial-labels 20 \
    --max-epochs 3 --out run
for file in report.json report.md learning_curve.png annotations.csv \
    model.safetensors scaler.npz; do
    [ -s "run/$file" ] || fail "boostmis run wrote no run/$file"
done

step python - <<'EOF'
import numpy as np

from sklearn_boostmis.cli import load_run_model

X = np.load("data/test-features.npy")
y_pred = load_run_model("run").predict(X)
assert y_pred.shape == (len(X),) and set(np.unique(y_pred)) <= {0, 1}, y_pred
print(f"load_run_model('run').predict: {len(y_pred)} test rows")
EOF

# A person's labels: ten train rows of each two-grade class, as codes and names.
step python - <<'EOF'
import numpy as np

from sklearn_boostmis.datasets import TWO_GRADE_NAMES, six_to_two

y = six_to_two(np.load("data/train-targets.npy"))
with open("LABELS.csv", "w") as f:
    f.write("index,label\n")
    for code, name in enumerate(TWO_GRADE_NAMES):
        for i, row in enumerate(np.flatnonzero(y == code)[:10]):
            f.write(f"{row},{code if i % 2 else name}\n")
EOF
step boostmis query data --task two --labels LABELS.csv --budget 5 --max-epochs 3 \
    --class-prior 0.89 0.11 --out candidates.csv
step python - <<'EOF'
import csv

with open("LABELS.csv") as f:
    labeled = {row["index"] for row in csv.DictReader(f)}
with open("candidates.csv") as f:
    candidates = [row["index"] for row in csv.DictReader(f)]
assert candidates and not labeled & set(candidates), candidates
print(f"candidates.csv: {len(candidates)} rows to label next")
EOF

rm -rf "$WORK"
echo "cli_smoke: all commands passed" >&2
