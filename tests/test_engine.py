import numpy as np
import pytest
import torch
from sklearn.base import clone

from sklearn_boostmis import (
    AdaptiveThreshold,
    BoostMISClassifier,
    FixedThreshold,
    MLPClassifierModule,
)
from sklearn_boostmis.data import SemiSupervisedDataset
from sklearn_boostmis.engine import BoostMISNet
from sklearn_boostmis.thresholds import BaseThreshold

from .conftest import FAST


@pytest.fixture
def dataset(iris_data):
    X, y, y_partial = iris_data
    labeled = y_partial != -1
    return SemiSupervisedDataset(X[labeled], y_partial[labeled], X[~labeled])


def make_net(**kwargs):
    params = dict(
        module__n_features=4,
        module__n_classes=3,
        module__hidden_units=(16,),
        classes=[0, 1, 2],
        max_epochs=3,
        batch_size=8,
        seed=0,
        verbose=0,
    )
    params.update(kwargs)
    return BoostMISNet(MLPClassifierModule, **params)


def test_engine_fits_a_dataset_and_records_batches(dataset):
    net = make_net().fit(dataset, None)
    assert len(net.history) == 3
    steps = len(net.history[-1, "batches"])
    assert steps == 9  # 135 unlabeled rows in batches of mu * B = 16 (last one 7)
    assert net.ema_updates_ == 3 * steps
    masks = net.history[:, "batches", :, "mask_ratio"]
    assert all(0.0 <= m <= 1.0 for epoch in masks for m in epoch)
    assert isinstance(net.threshold_, AdaptiveThreshold)
    assert net.threshold_.confident_.shape == (dataset.n_unlabeled,)
    assert int(net.threshold_.count()) == int(net.threshold_.confident_.sum())


def test_engine_rejects_plain_arrays(iris_data):
    X, y, _ = iris_data
    with pytest.raises(TypeError, match="SemiSupervisedDataset"):
        make_net().fit(X, y)


def test_unsupervised_loss_is_weighted_by_lambda_u(dataset):
    net = make_net(lambda_u=0.5, threshold=FixedThreshold(0.0)).fit(dataset, None)
    batch = net.history[-1, "batches", -1]
    assert batch["mask_ratio"] == 1.0
    assert batch["train_loss"] == pytest.approx(
        batch["sup_loss"] + 0.5 * batch["unsup_loss"], rel=1e-5
    )


class _NoRowPasses(BaseThreshold):  # the built-in policies refuse eps > 1
    def current_threshold(self):
        return torch.tensor(1.01)


def test_masked_out_batch_has_zero_unsupervised_loss(dataset):
    net = make_net(threshold=_NoRowPasses()).fit(dataset, None)
    assert all(
        b["unsup_loss"] == 0.0 and b["mask_ratio"] == 0.0
        for b in net.history[-1, "batches"]
    )


def test_one_unlabeled_row_does_not_break_batchnorm(iris_data):
    X, y, _ = iris_data
    ds = SemiSupervisedDataset(X[:20], y[:20] % 3, X[20:21])
    net = make_net().fit(ds, None)
    assert np.isfinite(net.history[-1, "train_loss"])


def test_training_never_touches_teacher_gradients(dataset):
    net = make_net().fit(dataset, None)
    assert all(p.grad is None for p in net.ema_module_.parameters())
    assert not net.ema_module_.training


def test_labeled_only_dataset(iris_data):
    X, y, _ = iris_data
    ds = SemiSupervisedDataset(X, y, X[:0])
    net = make_net(max_epochs=10).fit(ds, None)
    assert len(net.history[-1, "batches"]) == 19  # one pass over 150 rows, B = 8
    assert net.history[-1, "batches", 0, "unsup_loss"] == 0.0
    proba = net.predict_proba(X)
    assert proba.shape == (150, 3)
    assert (net.predict(X) == y).mean() > 0.6
    assert isinstance(net.threshold_, AdaptiveThreshold)
    assert torch.equal(net.threshold_.confident_, torch.zeros(0, dtype=torch.bool))


def test_no_host_read_per_step(dataset, monkeypatch):
    """skorch reads step["loss"].item() after every batch; the engine defers it."""
    reads = {"item": 0, "tolist": 0, "__float__": 0}
    for name in reads:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _name=name, _original=original, **kwargs):
            reads[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    net = make_net(max_epochs=4).fit(dataset, None)
    monkeypatch.undo()
    steps = sum(len(epoch["batches"]) for epoch in net.history)
    assert steps == 36
    # one records transfer and one threshold read per epoch, nothing per step
    assert reads == {"item": 0, "tolist": 4, "__float__": 4}
    for epoch in net.history:
        for batch in epoch["batches"]:
            assert type(batch["train_loss"]) is float
            expected = batch["sup_loss"] + net.lambda_u * batch["unsup_loss"]
            assert batch["train_loss"] == pytest.approx(expected, rel=1e-5)
        mean = np.average(
            [b["train_loss"] for b in epoch["batches"]],
            weights=[b["train_batch_size"] for b in epoch["batches"]],
        )
        assert epoch["train_loss"] == pytest.approx(mean)


def test_callbacks_still_read_the_loss_as_a_number(dataset):
    from skorch.callbacks import Callback

    class Keep(Callback):
        def on_batch_end(self, net, loss=None, training=False, **kwargs):
            self.last_ = loss.item() * 2.0  # a PendingFloat resolves on use
            self.in_history_ = net.history[-1, "batches", -1, "train_loss"]

    net = make_net(callbacks=[("keep", Keep())]).fit(dataset, None)
    keep = dict(net.callbacks_)["keep"]
    assert type(keep.last_) is float
    last = net.history[-1, "batches", -1, "train_loss"]
    assert keep.last_ == pytest.approx(2.0 * last)
    assert float(keep.in_history_) == pytest.approx(keep.last_ / 2.0)


# -- the engine as BoostMISClassifier builds it: optimizer, LR schedule, checkpoints
def test_no_weight_decay_on_bias_and_batchnorm(fitted_iris):
    groups = fitted_iris.net_.optimizer_.param_groups
    decayed = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    module = fitted_iris.net_.module_
    assert id(module.encoder[0].weight) in decayed
    assert id(module.encoder[0].bias) not in decayed
    assert id(module.encoder[1].weight) not in decayed  # BatchNorm
    teacher_params = {id(p) for p in fitted_iris.net_.ema_module_.parameters()}
    assert not teacher_params & {id(p) for g in groups for p in g["params"]}
    assert groups[0]["nesterov"] and groups[0]["momentum"] == 0.9


def test_lr_follows_cosine_schedule(iris_data):
    X, _, y_partial = iris_data
    clf = BoostMISClassifier(random_state=0, **FAST).fit(X, y_partial)
    callback = dict(clf.net_.callbacks_)["cosine_lr"]
    total = callback.total_steps_
    assert callback.step_ == total
    expected = 0.03 * np.cos(7 * np.pi / 16)
    assert clf.net_.optimizer_.param_groups[0]["lr"] == pytest.approx(expected)


def test_own_lr_schedule_with_the_cosine_one_off(iris_data):
    from skorch.callbacks import EarlyStopping, LRScheduler

    X, _, y_partial = iris_data
    clf = BoostMISClassifier(
        callbacks=[
            LRScheduler("StepLR", step_size=2, gamma=0.5),
            EarlyStopping(monitor="train_loss", patience=100),
        ],
        net_params={"callbacks__cosine_lr": None},
        **{**FAST, "max_epochs": 5},
    ).fit(X, y_partial)
    lrs = [h["event_lr"] for h in clf.history_]
    assert lrs == pytest.approx([0.03 * 0.5 ** (e // 2) for e in range(5)])


def test_checkpoint_load_best_restores_the_teacher_that_predicts(iris_data, tmp_path):
    from skorch.callbacks import Checkpoint

    X, _, y_partial = iris_data
    at_epoch_2 = Checkpoint(
        monitor=lambda net: len(net.history) == 2,  # the "best" epoch
        load_best=True,
        f_ema_module="ema_module.pt",
        dirname=str(tmp_path),
    )
    clf = BoostMISClassifier(random_state=0, callbacks=[at_epoch_2], **FAST)
    last = clone(clf).set_params(callbacks=None).fit(X, y_partial)
    clf.fit(X, y_partial)
    saved = torch.load(tmp_path / "ema_module.pt")
    restored = clf.net_.ema_module_.state_dict()
    assert all(torch.equal(saved[k], v) for k, v in restored.items())
    assert not np.allclose(clf.predict_proba(X), last.predict_proba(X))
    # skorch restored epoch 2's history; every epoch still ran
    assert len(clf.history_) == 2
    assert clf.n_iter_ == len(clf.threshold_history_) == FAST["max_epochs"]
