"""Dynamic batching: requests from any number of threads are queued; one worker thread takes what is
waiting (waiting up to `max_wait_s` for more when the queue runs dry), sorts the rows by length and runs
forwards of at most `max_batch_tokens` padded tokens each, then hands every request its own rows back.

One worker runs the model: torch releases the GIL during the forward, so the HTTP threads keep accepting
and tokenizing meanwhile, and the model never sees two forwards at once.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import torch

log = logging.getLogger("mg_serve")

Row = dict[str, list[int]]  # input_ids (and token_type_ids where the tokenizer makes them)


@dataclass
class Job:
    rows: list[Row]
    future: Future = field(default_factory=Future)

    @property
    def tokens(self) -> int:
        return sum(len(r["input_ids"]) for r in self.rows)


class Batcher:
    """`submit(rows) -> Future[Tensor [len(rows), ...]]`; `forward(rows) -> Tensor` runs on the worker.
    `on_batch(rows, padded_tokens)` is called after every forward (metrics)."""

    def __init__(
        self,
        forward: Callable[[list[Row]], torch.Tensor],
        *,
        max_batch_tokens: int = 8192,
        max_wait_s: float = 0.005,
        on_batch: Callable[[int, int], None] | None = None,
    ):
        if max_batch_tokens < 1:
            raise ValueError(f"max_batch_tokens must be at least 1, not {max_batch_tokens}")
        self.forward, self.max_batch_tokens, self.max_wait_s = forward, max_batch_tokens, max_wait_s
        self.on_batch = on_batch
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="mg-serve-batcher", daemon=True)
        self._thread.start()

    def submit(self, rows: list[Row]) -> Future:
        if self._closed:
            raise RuntimeError("the engine is closed")
        job = Job(rows)
        if not rows:
            job.future.set_result(torch.empty(0))
            return job.future
        self._queue.put(job)
        return job.future

    def close(self) -> None:
        """Stop the worker after the jobs already queued."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join(timeout=30)

    # -- the worker -------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs, stop = self._gather(first)
            self._run([j for j in jobs if j.future.set_running_or_notify_cancel()])
            if stop:
                return

    def _gather(self, first: Job) -> tuple[list[Job], bool]:
        """`first` and whatever else fits the budget: all that is queued now, then what arrives within
        max_wait_s while the budget is not yet full."""
        jobs, tokens = [first], first.tokens
        deadline = time.monotonic() + self.max_wait_s
        while tokens < self.max_batch_tokens:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    job = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            if job is None:
                return jobs, True
            jobs.append(job)
            tokens += job.tokens
        return jobs, False

    def _run(self, jobs: list[Job]) -> None:
        if not jobs:
            return
        # Every row, longest first, so that each forward pads little.
        flat = [(j, i) for j, job in enumerate(jobs) for i in range(len(job.rows))]
        flat.sort(key=lambda ji: len(jobs[ji[0]].rows[ji[1]]["input_ids"]), reverse=True)
        results: list[list[torch.Tensor | None]] = [[None] * len(job.rows) for job in jobs]
        try:
            for chunk in self._chunks(flat, jobs):
                rows = [jobs[j].rows[i] for j, i in chunk]
                out = self.forward(rows)
                if self.on_batch is not None:
                    self.on_batch(len(rows), len(rows) * len(rows[0]["input_ids"]))
                for (j, i), value in zip(chunk, out, strict=True):
                    results[j][i] = value
        except Exception as e:  # the requests of this batch fail; the worker goes on serving
            log.exception("forward failed")
            for job in jobs:
                job.future.set_exception(e)
            return
        for job, values in zip(jobs, results, strict=True):
            job.future.set_result(torch.stack(values))  # type: ignore[arg-type]

    def _chunks(self, flat: list[tuple[int, int]], jobs: list[Job]):
        """Consecutive runs of `flat` (sorted longest first) whose padded size fits the token budget;
        a row longer than the budget goes alone."""
        chunk: list[tuple[int, int]] = []
        width = 0
        for j, i in flat:
            length = len(jobs[j].rows[i]["input_ids"])
            width = width or length  # the first row of a chunk is its longest
            if chunk and (len(chunk) + 1) * width > self.max_batch_tokens:
                yield chunk
                chunk, width = [], length
            chunk.append((j, i))
        if chunk:
            yield chunk
