"""A skorch callback that reports a long fit's progress in steps and time."""

import time

from skorch.callbacks import Callback


class FitProgress(Callback):
    """Print ``step s / S, elapsed, about r left`` during a fit, now and then.

    Unlike skorch's per-pass ``PrintLog`` and ``ProgressBar``, it counts the
    fit's training steps and prints one line at most every ``interval``
    seconds, the remaining time extrapolated from the mean step time so far.

    Parameters
    ----------
    interval : float, default=30.0
        Least number of seconds between two lines; the first line comes after
        ``interval`` seconds, so a fit shorter than that prints nothing.
    prefix : str, default="fit"
        Start of each line, e.g. ``"cycle 2"``.
    sink : callable, default=print
        Called with each line.

    Examples
    --------
    >>> from sklearn_boostmis import BoostMISClassifier
    >>> from sklearn_boostmis.progress import FitProgress
    >>> clf = BoostMISClassifier(callbacks=[FitProgress(interval=60)])
    """

    def __init__(self, interval=30.0, prefix="fit", sink=print):
        self.interval = interval
        self.prefix = prefix
        self.sink = sink

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        if not self.interval > 0:
            raise ValueError(f"interval must be > 0 seconds, got {self.interval!r}")
        self.total_steps_ = net.max_epochs * len(net.get_iterator(X, training=True))
        self.steps_ = 0
        self.start_ = self.last_line_ = time.monotonic()

    def on_batch_end(self, net, training=False, **kwargs):
        if not training:
            return
        self.steps_ += 1
        now = time.monotonic()
        if now - self.last_line_ >= self.interval:
            self.last_line_ = now
            self.sink(self._line(now - self.start_))

    def _line(self, elapsed):
        left = elapsed / self.steps_ * max(0, self.total_steps_ - self.steps_)
        return (
            f"{self.prefix}: step {self.steps_:,} / {self.total_steps_:,}, "
            f"{elapsed:.0f} s elapsed, about {left:.0f} s left"
        )
