"""
===========================================================
Grid search on partially labeled data with a labeled scorer
===========================================================

A :class:`~sklearn_boostmis.BoostMISClassifier` is an ordinary scikit-learn
estimator: it goes into a :class:`~sklearn.pipeline.Pipeline`, is cloned by
:class:`~sklearn.model_selection.GridSearchCV` and scored on each fold.

With partially labeled data the validation folds also contain rows labeled
``-1``. Scoring them would compare predictions with ``-1``;
:func:`~sklearn_boostmis.make_labeled_scorer` wraps any scikit-learn scorer so
that only the labeled rows of a fold are scored (``BoostMISClassifier.score``
does the same for accuracy). The unlabeled rows of the training folds are
still used for training.

The grid asks whether the unlabeled rows help (``lambda_u`` 0 or 1) and how
that depends on the training length (``max_epochs`` 20 or 60 passes over the
unlabeled rows). To stay fast, the grid is this small and cross-validation
uses 3 folds; the table is one run with one seed.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_boostmis import BoostMISClassifier, make_labeled_scorer

SEED = 0
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=SEED
)
rng = np.random.RandomState(SEED)
y_partial = np.where(rng.rand(len(y_train)) < 0.1, y_train, -1)  # ~10% labeled
print(f"{(y_partial != -1).sum()} labeled, {(y_partial == -1).sum()} unlabeled")

# %%
# The pipeline and the grid
# -------------------------
# Stratifying the folds on ``y_partial`` spreads the unlabeled rows (class
# ``-1``) and each class evenly over the folds.
pipe = make_pipeline(StandardScaler(), BoostMISClassifier(random_state=SEED))
grid = GridSearchCV(
    pipe,
    {
        "boostmisclassifier__lambda_u": [0.0, 1.0],
        "boostmisclassifier__max_epochs": [20, 60],
    },
    scoring=make_labeled_scorer("f1_macro"),
    cv=StratifiedKFold(3, shuffle=True, random_state=SEED),
    n_jobs=1,
)
grid.fit(X_train, y_partial)

cols = [
    "param_boostmisclassifier__lambda_u",
    "param_boostmisclassifier__max_epochs",
    "mean_test_score",
    "std_test_score",
    "rank_test_score",
]
table = pd.DataFrame(grid.cv_results_)[cols]
table.columns = ["lambda_u", "max_epochs", "mean macro-F1", "std", "rank"]
print(table.to_string(index=False, float_format="%.3f"))
print("best:", grid.best_params_)

# %%
# The refitted best pipeline on the held-out split
# ------------------------------------------------
# ``refit=True`` (the default) refits the best configuration on all training
# rows, labeled and unlabeled.
scorer = make_labeled_scorer("f1_macro")
print(f"held-out macro-F1 of the best pipeline: {scorer(grid, X_test, y_test):.3f}")

# %%
# Cross-validated macro-F1 (labeled rows of each validation fold only) for
# each point of the grid.
fig, ax = plt.subplots(figsize=(6, 3.5))
for lambda_u, marker in [(0.0, "o"), (1.0, "s")]:
    rows = table[table["lambda_u"].astype(float) == lambda_u]
    ax.errorbar(
        rows["max_epochs"].astype(int),
        rows["mean macro-F1"],
        yerr=rows["std"],
        marker=marker,
        capsize=4,
        label=f"lambda_u={lambda_u:g}",
    )
ax.set_xticks([20, 60])
ax.set_xlabel("max_epochs")
ax.set_ylabel("CV macro-F1 (labeled rows)")
ax.legend()
fig.tight_layout()
plt.show()
