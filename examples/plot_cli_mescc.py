"""
================================================
MESCC-layout data through the command-line tool
================================================

The ``boostmis`` command runs the whole closed loop on a folder in the layout of
the MESCC release: ``<split>-features.npy`` (ResNet-50 features) and
``<split>-targets.npy`` for ``train``, ``val`` and ``test``. The real data set is
not public here, so this example writes a small **synthetic** stand-in with
:func:`~sklearn_boostmis.datasets.write_mescc_like` (5% of the release's split
sizes and class counts, 64 features instead of 2048) and runs
``boostmis run DATA --task two`` on it, as a user would from a shell. The same
entry point is called here through :func:`sklearn_boostmis.cli.main`.

Outputs: ``report.json`` / ``report.md`` (per cycle: labels, threshold, test
accuracy, macro precision / recall / F1, per-class recall, confusion matrix),
``learning_curve.png``, ``annotations.csv`` (index, label, cycle) and
``model.safetensors`` with ``scaler.npz``. Running the same command again resumes
the run.
"""

# %%
import json
import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np

from sklearn_boostmis.cli import load_run_model, main
from sklearn_boostmis.datasets import six_to_two, write_mescc_like

work = tempfile.mkdtemp()
data_dir = os.path.join(work, "mescc_like")
out_dir = os.path.join(work, "run")
write_mescc_like(data_dir, scale=0.05, n_features=64, random_state=0)
print(sorted(os.listdir(data_dir)))

status = main([
    "run", data_dir, "--task", "two", "--cycles", "2", "--budget", "10",
    "--initial-labels", "20", "--max-epochs", "20", "--out", out_dir, "--seed", "0",
])
print("exit status", status)
print(sorted(os.listdir(out_dir)))

# %%
# The report, cycle by cycle
# --------------------------
with open(os.path.join(out_dir, "report.json")) as f:
    report = json.load(f)
cycles = report["cycles"] if isinstance(report, dict) else report
labels = [c["n_labeled"] for c in cycles]
f1 = [c["macro_f1"] for c in cycles]
for c in cycles:
    print(f"labels {c['n_labeled']:4d}  accuracy {c['accuracy']:.3f}  "
          f"macro-F1 {c['macro_f1']:.3f}")

fig, ax = plt.subplots(figsize=(4.5, 3))
ax.plot(labels, f1, marker="o")
ax.set_xlabel("labeled rows")
ax.set_ylabel("test macro-F1 (synthetic)")
fig.tight_layout()

# %%
# The trained model, for raw features
# -----------------------------------
# ``model.safetensors`` holds the classifier, trained on features standardised
# with the train split's statistics (``scaler.npz``);
# :func:`~sklearn_boostmis.cli.load_run_model` returns both as one Pipeline, which
# scores on the raw test features as the report's final row does.
model = load_run_model(out_dir, device="cpu")
X_test = np.load(os.path.join(data_dir, "test-features.npy"))
y_test = six_to_two(np.load(os.path.join(data_dir, "test-targets.npy")))
print(model)
print(f"test accuracy {model.score(X_test, y_test):.3f} "
      f"(report: {cycles[-1]['accuracy']:.3f})")
