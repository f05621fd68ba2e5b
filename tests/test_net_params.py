import pytest
import torch
from skorch import callbacks

from sklearn_boostmis import BoostMISClassifier
from sklearn_boostmis.net_params import check_callbacks, check_net_params

from .conftest import FAST


@pytest.mark.parametrize(
    "net_params, use",
    [
        ({"max_epochs": 3}, "use the estimator parameter 'max_epochs' instead"),
        ({"seed": 3}, "estimator parameter 'random_state'"),
        ({"optimizer__lr": 0.5}, "estimator parameter 'lr'"),
        ({"optimizer__momentum": 0.5}, "estimator parameter 'momentum'"),
        ({"classes": [0, 1]}, "estimator parameter 'classes'"),
        ({"module__hidden_units": (8,)}, r"module_params=\{'hidden_units': ...\}"),
        ({"criterion": torch.nn.NLLLoss}, "does not use: the losses"),
        ({"train_split": None}, "does not use: fit trains on every row"),
        ({"iterator_train__shuffle": False}, "does not use: training batches"),
    ],
)
def test_refused_net_params_name_what_to_use(net_params, use):
    with pytest.raises(ValueError, match=use):
        check_net_params(net_params)


def test_other_net_params_pass():
    check_net_params(None)
    check_net_params(
        {
            "iterator_valid__batch_size": 7,
            "optimizer__nesterov": False,
            "callbacks__cosine_lr": None,
            "callbacks__print_log__sink": print,
        }
    )


@pytest.mark.parametrize(
    "callback, match",
    [
        (
            callbacks.EpochScoring("accuracy", on_train=True),
            "EpochScoring is not supported: fit has no validation",
        ),
        (callbacks.BatchScoring("accuracy", on_train=True), "BatchScoring is not"),
        (("step", callbacks.LRScheduler("StepLR", step_size=2)), "cosine_lr': None"),
        (callbacks.EarlyStopping(), "monitors 'valid_loss', but fit has no valid"),
        (callbacks.Checkpoint(f_ema_module="t.pt"), "monitors 'valid_loss_best'"),
        (
            callbacks.EarlyStopping(monitor="train_loss", load_best=True),
            "restores the student network only",
        ),
        (
            callbacks.Checkpoint(monitor="train_loss_best"),
            "not the EMA teacher that predicts: add f_ema_module='ema_module.pt'",
        ),
        (callbacks.TrainEndCheckpoint(), "to the TrainEndCheckpoint"),
        (
            callbacks.LoadInitState(callbacks.Checkpoint(monitor=None)),
            "LoadInitState saves or loads the student",
        ),
    ],
)
def test_callbacks_that_cannot_work_are_refused(callback, match):
    with pytest.raises(ValueError, match=match):
        check_callbacks([callback], None)


def test_callbacks_that_work_pass():
    check_callbacks(None, None)
    checkpoint = callbacks.Checkpoint(
        monitor="train_loss_best", load_best=True, f_ema_module="ema_module.pt"
    )
    check_callbacks(
        [
            callbacks.EarlyStopping(monitor="train_loss"),
            ("cp", checkpoint),
            callbacks.LoadInitState(checkpoint),
            callbacks.Checkpoint(monitor=None, f_params=None),  # history only
        ],
        None,
    )
    lr = callbacks.LRScheduler("StepLR", step_size=2)
    check_callbacks([lr], {"callbacks__cosine_lr": None})


# -- through BoostMISClassifier -------------------------------------------------
def test_fit_checks_net_params_and_callbacks(iris_data):
    from skorch.callbacks import EpochScoring

    X, _, y_partial = iris_data
    with pytest.raises(ValueError, match="estimator parameter 'max_epochs'"):
        BoostMISClassifier(net_params={"max_epochs": 3}, **FAST).fit(X, y_partial)
    with pytest.raises(ValueError, match="EpochScoring is not supported"):
        BoostMISClassifier(callbacks=[EpochScoring("accuracy")], **FAST).fit(
            X, y_partial
        )


def test_other_net_params_reach_the_engine(iris_data):
    X, _, y_partial = iris_data
    clf = BoostMISClassifier(
        net_params={"iterator_valid__batch_size": 7, "optimizer__nesterov": False},
        **FAST,
    ).fit(X, y_partial)
    assert clf.net_.iterator_valid__batch_size == 7
    assert clf.net_.optimizer_.param_groups[0]["nesterov"] is False
