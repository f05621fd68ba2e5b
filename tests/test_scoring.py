import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier

from sklearn_boostmis.scoring import labeled_mask, make_labeled_scorer


def test_labeled_mask_for_ints_objects_and_strings():
    assert labeled_mask([0, -1, 2]).tolist() == [True, False, True]
    assert labeled_mask(np.array(["a", -1], dtype=object)).tolist() == [True, False]
    assert labeled_mask(np.array(["a", "b"])).tolist() == [True, True]


def test_scorer_on_dataframe_and_repr():
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    y = np.array([1, 0, -1, 1])
    clf = DummyClassifier(strategy="constant", constant=1).fit(X.iloc[:2], [1, 0])
    scorer = make_labeled_scorer("accuracy")
    assert scorer(clf, X, y) == pytest.approx(2 / 3)
    assert "accuracy" in repr(scorer) or "make_labeled_scorer" in repr(scorer)
