import multiprocessing
import sys
import threading

import pytest
import torch

from sklearn_boostmis._utils import torch_seeded


def test_seeded_block_restores_the_global_stream():
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    with torch_seeded(0):
        inside = torch.rand(2)
    assert torch.equal(torch.rand(2), expected)
    with torch_seeded(0):
        assert torch.equal(torch.rand(2), inside)


def _seeded_and_exit():
    with torch_seeded(0):
        torch.rand(1)


@pytest.mark.skipif(sys.platform == "win32", reason="fork is POSIX only")
def test_a_process_forked_during_a_seeded_block_can_seed():
    # e.g. joblib's multiprocessing backend while a thread is fitting
    entered, release = threading.Event(), threading.Event()

    def fitting():
        with torch_seeded(1):
            entered.set()
            release.wait(60)

    thread = threading.Thread(target=fitting)
    thread.start()
    entered.wait(60)
    child = multiprocessing.get_context("fork").Process(target=_seeded_and_exit)
    try:
        child.start()
        child.join(60)
        finished = child.exitcode == 0
    finally:
        if child.is_alive():
            child.kill()
        release.set()
        thread.join()
    assert finished
