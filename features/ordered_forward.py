"""Forward passes on a CPU two at a time, each on half the threads, results kept in order.

On a CPU the image-decoding workers share the cores with the network. One forward pass at a time spread over
every core (intra-op threads) stalls whenever a worker takes one of them: the other threads wait for it at
every layer. Two passes at once, each on half the threads, go on while one is held up. Measured on 2 cores
(`ganprov bench`, 64 px from 256-px PNGs, see README "Performance"); one pass at a time stays the rule on a
GPU, where decoding does not compete with the network, and with a single thread (e.g. one per process under
torchrun).
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import torch

CALLERS = 2  # forward passes at once


@contextmanager
def intra_op_threads(n: int):
    """torch's intra-op threads set to n (process-wide) for the block, as they were after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def ordered_forward(forward: Callable, batches: Iterable, device: torch.device) -> Iterator[tuple]:
    """(batch, forward(batch)) for every batch, in order. On a CPU with at least CALLERS torch threads, up to
    CALLERS calls run at once on threads of their own, each with threads // CALLERS intra-op threads; `forward`
    must then set its own grad mode (torch's inference_mode is per thread)."""
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads < CALLERS:
        for batch in batches:
            yield batch, forward(batch)
        return
    with ThreadPoolExecutor(CALLERS, thread_name_prefix="forward") as pool, intra_op_threads(threads // CALLERS):
        pending = deque()
        for batch in batches:
            pending.append((batch, pool.submit(forward, batch)))
            if len(pending) > CALLERS:  # one waiting to start while CALLERS run
                batch, result = pending.popleft()
                yield batch, result.result()
        while pending:
            batch, result = pending.popleft()
            yield batch, result.result()
