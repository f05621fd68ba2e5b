"""Worker of ``test_scale.py::test_two_process_accelerate_shards_the_batches``.

Run as ``python -m torch.distributed.run --nproc_per_node 2 tests/ddp_worker.py OUT``:
each process fits BoostMISClassifier through an ``accelerate.Accelerator`` on the
CPU (gloo backend) and writes what it saw and learned to ``OUT/rank<i>.npz``.
Not a test module itself (no ``test_`` prefix).
"""

import sys

import numpy as np
import torch
from accelerate import Accelerator
from sklearn.datasets import load_iris
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback

from sklearn_boostmis import BoostMISClassifier, InformativeQuerySampler

torch.set_num_threads(1)


class RecordRows(Callback):
    """The unlabeled positions of every step, by epoch."""

    def on_train_begin(self, net, **kwargs):
        self.rows_ = []

    def on_epoch_begin(self, net, **kwargs):
        self.rows_.append([])

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training:
            self.rows_[-1].append(batch[3].tolist())


def main(out):
    accelerator = Accelerator(cpu=True)
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    y_partial = np.full_like(y, -1)
    labeled = [0, 1, 2, 50, 51, 52, 100, 101, 102]
    y_partial[labeled] = y[labeled]
    recorder = RecordRows()
    clf = BoostMISClassifier(
        accelerator=accelerator,
        callbacks=[("rows", recorder)],
        max_epochs=15,
        batch_size=8,
        module_params={"hidden_units": (32,)},
        random_state=0,
    ).fit(X, y_partial)
    net = clf.net_
    recorder = dict(net.callbacks_)["rows"]
    steps = [len(epoch) for epoch in recorder.rows_]
    rows = [np.concatenate(epoch) for epoch in recorder.rows_]
    student = torch.cat([p.detach().flatten() for p in net.module_.parameters()])
    teacher = torch.cat([p.detach().flatten() for p in net.ema_module_.parameters()])
    # BatchNorm running statistics: each process updates them on its own shard
    buffers = [
        b.detach().flatten().double()
        for module in (net.module_, net.ema_module_)
        for b in module.buffers()
    ]
    np.savez(
        f"{out}/rank{accelerator.process_index}.npz",
        num_processes=accelerator.num_processes,
        steps=np.array(steps),
        rows=np.array(rows, dtype=object),
        student=student.numpy(),
        teacher=teacher.numpy(),
        buffers=torch.cat(buffers).numpy(),
        teacher_proba=net.ema_module_(torch.as_tensor(X)).softmax(1).detach(),
        query=InformativeQuerySampler(random_state=0)(clf, X[y_partial == -1], 5)[0],
        proba=clf.predict_proba(X),
        transduction=clf.transduction_,
        labeled_iter=clf.labeled_iter_,
        thresholds=np.array(clf.threshold_history_),
        train_loss=np.array(clf.history_[:, "train_loss"]),
        accuracy=clf.score(X, y),
        n_unlabeled=int((y_partial == -1).sum()),
    )


if __name__ == "__main__":
    main(sys.argv[1])
