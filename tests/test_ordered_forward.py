"""Forward passes two at a time on a CPU: results in the order of the batches, torch's threads as before."""
import threading
import time

import pytest
import torch

from ganprov.features.ordered_forward import CALLERS, ordered_forward


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_results_come_in_batch_order_from_passes_running_at_once(two_threads):
    running, most, lock = [0], [0], threading.Lock()

    def forward(batch):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.02 if batch % 3 == 0 else 0.001)  # the first of each three finishes last
        threads = torch.get_num_threads()
        with lock:
            running[0] -= 1
        return batch * 10, threads

    results = list(ordered_forward(forward, range(9), torch.device("cpu")))
    assert [batch for batch, _ in results] == list(range(9))
    assert [value for _, (value, _) in results] == [b * 10 for b in range(9)]
    assert {threads for _, (_, threads) in results} == {2 // CALLERS}  # each pass on half the threads
    assert most[0] == CALLERS and torch.get_num_threads() == 2  # two at once; threads restored after


def test_one_pass_at_a_time_on_one_thread_or_another_device(two_threads):
    seen = []
    for device, threads in ((torch.device("cpu"), 1), (torch.device("meta"), 2)):
        torch.set_num_threads(threads)
        results = list(ordered_forward(lambda b: seen.append(threading.current_thread()) or b, range(3), device))
        assert results == [(b, b) for b in range(3)] and torch.get_num_threads() == threads
    assert set(seen) == {threading.main_thread()}


def test_a_consumer_that_stops_early_leaves_the_threads_as_they_were(two_threads):
    batches = ordered_forward(lambda b: b, range(100), torch.device("cpu"))
    assert next(batches) == (0, 0)
    batches.close()  # e.g. an error while writing the first batch
    assert torch.get_num_threads() == 2
