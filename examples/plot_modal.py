"""
======================================================
Active learning with modAL and InformativeQuerySampler
======================================================

:class:`~sklearn_boostmis.InformativeQuerySampler` follows modAL's query
contract, ``strategy(learner, X_pool, n_instances) -> (indices, scores)``, and
unwraps a modAL learner (its ``.estimator``), so it plugs into
``modAL.models.ActiveLearner`` as ``query_strategy``.

modAL is optional: ``pip install --no-deps modAL-python`` (modAL pins an old
skorch). Its ``teach()`` fails on scikit-learn >= 1.8, so this example refits
``learner.estimator`` itself after each query instead of calling ``teach``.
Without modAL the example prints why and stops.

Settings for speed: breast cancer data (569 rows, 30 features), 10 start
labels, 3 cycles of 10 queries, ``max_epochs=30`` per fit.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sklearn_boostmis import BoostMISClassifier, InformativeQuerySampler

try:
    from modAL.models import ActiveLearner
except ImportError as exc:  # modAL is an optional extra
    ActiveLearner = None
    print(
        f"modAL is not installed ({exc}); install it with "
        "`pip install --no-deps modAL-python` to run this example. "
        "InformativeQuerySampler works without it: "
        "sampler(clf, X_pool, n_instances=10) returns (indices, scores)."
    )

# %%
SEED = 0
X, y = load_breast_cancer(return_X_y=True)
X_pool, X_test, y_pool, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=SEED
)
scaler = StandardScaler().fit(X_pool)
X_pool, X_test = scaler.transform(X_pool), scaler.transform(X_test)

rng = np.random.RandomState(SEED)
y_train = np.full_like(y_pool, -1)
for c in (0, 1):
    keep = rng.choice(np.flatnonzero(y_pool == c), 5, replace=False)
    y_train[keep] = c

# %%
# The query loop
# --------------
n_labels, scores = [], []
if ActiveLearner is not None:
    clf = BoostMISClassifier(max_epochs=30, random_state=SEED).fit(X_pool, y_train)
    learner = ActiveLearner(
        estimator=clf, query_strategy=InformativeQuerySampler(random_state=SEED)
    )

    def record():
        n_labels.append(int((y_train != -1).sum()))
        scores.append(f1_score(y_test, learner.predict(X_test), average="macro"))
        print(f"{n_labels[-1]:3d} labels: held-out macro-F1 {scores[-1]:.3f}")

    record()
    for _ in range(3):
        pool = np.flatnonzero(y_train == -1)
        # the sampler returns exactly n_instances rows: never more than remain
        n_instances = min(10, len(pool))
        idx, _ = learner.query(X_pool[pool], n_instances=n_instances)  # pool positions
        y_train[pool[idx]] = y_pool[pool[idx]]  # the "human" answers
        learner.estimator.fit(X_pool, y_train)  # instead of learner.teach(...)
        record()

# %%
# The learning curve (one seed, short fits: see ``benchmarks/RESULTS.md``,
# section "Active learning", for measured curves over 10 seeds).
if n_labels:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(n_labels, scores, marker="o")
    ax.set_xlabel("labeled rows")
    ax.set_ylabel("held-out macro-F1")
    ax.set_title("modAL + InformativeQuerySampler, breast cancer")
    fig.tight_layout()
    plt.show()

# %%
# Without modAL, the same loop calls the sampler directly:
# ``idx, scores = InformativeQuerySampler(random_state=0)(clf, X_pool[pool], 10)``.
