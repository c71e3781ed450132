"""Dynamic batching: requests from any number of threads are queued; one worker thread takes what is
waiting (waiting up to `max_wait_s` for more when the queue runs dry), groups the rows by length into
forwards of at most `max_batch_tokens` padded tokens each (`plan_forwards`), then hands every request its
own rows back.

One worker runs the model: torch releases the GIL during the forward, so the HTTP threads keep accepting
and tokenizing meanwhile, and the model never sees two forwards at once.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from bisect import bisect_right
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import torch

log = logging.getLogger("mg_serve")

Row = dict[str, list[int]]  # input_ids (and token_type_ids where the tokenizer makes them)

# What one more forward costs, in tokens of compute, when the caller does not say. all-MiniLM-L6-v2 on
# this project's 2-core CPU, fp32, one torch thread: a forward took ~6 ms of CPU time plus ~0.24 ms a token
# (a line fitted to 12 batch shapes, 1-32 rows of 10-44 tokens), so one more forward costs ~25 tokens. By that
# line, bursts of 14 random 9-44-token rows cost within 3% of their best for any value from 16 to 64 (one
# forward each: 25% more), so a round 32 also covers two threads, where a token takes less wall time and a
# forward's Python no less.
DEFAULT_OVERHEAD_TOKENS = 32


@dataclass
class Job:
    rows: list[Row]
    future: Future = field(default_factory=Future)

    @property
    def tokens(self) -> int:
        return sum(len(r["input_ids"]) for r in self.rows)


def plan_forwards(
    lengths: Sequence[int], max_batch_tokens: int, overhead_tokens: int = DEFAULT_OVERHEAD_TOKENS
) -> list[list[int]]:
    """Indices into `lengths` grouped into forwards, longest rows first. Each forward is padded to its own
    longest row and holds at most `max_batch_tokens` padded tokens (a longer row goes alone); a forward
    costs its padded tokens plus `overhead_tokens`, and the plan is the cheapest found.

    Rows are sorted by length, longest first, and each forward is a run of that order: taking a shorter
    row out of a forward for a longer one never pads less. A dynamic programme picks where the runs end,
    among the places where the length changes (so rows of one length are never cut apart for nothing) and
    the places where a forward is full. Those candidates hold the exact optimum when the budget does not
    bind, and the plan that fills each forward to the budget, so the plan never costs more than that
    one; with a binding budget it can cost a little more than the optimum (< 1% in random trials)."""
    n = len(lengths)
    order = sorted(range(n), key=lambda i: -lengths[i])  # stable: request order within a length
    widths = [lengths[i] for i in order]
    length_changes = [t for t in range(1, n + 1) if t == n or widths[t] != widths[t - 1]]
    best = [0] + [-1] * n  # best[t]: the cheapest cost of the first t sorted rows (-1: not reached)
    came_from = [0] * (n + 1)
    for j in range(n):
        if best[j] < 0:
            continue
        width = widths[j]  # a forward from j is padded to its first (longest) row
        full = min(n, j + max(1, max_batch_tokens // width))
        reachable = length_changes[bisect_right(length_changes, j) : bisect_right(length_changes, full)]
        for end in [*reachable, full]:
            cost = best[j] + (end - j) * width + overhead_tokens
            if best[end] < 0 or cost < best[end]:
                best[end], came_from[end] = cost, j
    forwards: list[list[int]] = []
    end = n
    while end > 0:
        forwards.append(order[came_from[end] : end])
        end = came_from[end]
    return forwards[::-1]


class Batcher:
    """`submit(rows) -> Future[Tensor [len(rows), ...]]`; `forward(rows) -> Tensor` runs on the worker.
    `on_batch(rows, padded_tokens)` is called after every forward (metrics). `overhead_tokens`: what one
    more forward costs in tokens of compute (see `plan_forwards`); higher gives fewer, more padded
    forwards."""

    def __init__(
        self,
        forward: Callable[[list[Row]], torch.Tensor],
        *,
        max_batch_tokens: int = 8192,
        max_wait_s: float = 0.005,
        overhead_tokens: int = DEFAULT_OVERHEAD_TOKENS,
        on_batch: Callable[[int, int], None] | None = None,
    ):
        if max_batch_tokens < 1:
            raise ValueError(f"max_batch_tokens must be at least 1, not {max_batch_tokens}")
        if overhead_tokens < 0:
            raise ValueError(f"overhead_tokens must not be negative, not {overhead_tokens}")
        self.forward, self.max_batch_tokens, self.max_wait_s = forward, max_batch_tokens, max_wait_s
        self.overhead_tokens = overhead_tokens
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
        rows = [row for job in jobs for row in job.rows]  # every job's rows, in job order
        lengths = [len(row["input_ids"]) for row in rows]
        plan = plan_forwards(lengths, self.max_batch_tokens, self.overhead_tokens)
        outputs: list[torch.Tensor] = []
        errors: dict[int, Exception] = {}  # row -> the error of its forward
        for forward_rows in plan:
            try:
                out = self.forward([rows[r] for r in forward_rows])
                if self.on_batch is not None:
                    self.on_batch(len(forward_rows), len(forward_rows) * lengths[forward_rows[0]])
            except Exception as e:  # these rows' requests fail; the others, and the worker, go on
                log.exception("forward failed")
                errors.update(dict.fromkeys(forward_rows, e))
                continue
            outputs.append(out)
        try:
            if errors:
                self._answer_some(jobs, plan, outputs, errors)
            else:
                self._answer_all(jobs, plan, outputs)
        except Exception as e:  # outputs that do not fit together (a forward's bug): fail, keep serving
            log.exception("putting the outputs back together failed")
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(e)

    @staticmethod
    def _answer_all(jobs: list[Job], plan: list[list[int]], outputs: list[torch.Tensor]) -> None:
        """Every forward ran: the outputs back in the batch's row order in one index_select, then one
        view per request (no Python per row)."""
        run_order = torch.tensor([r for forward_rows in plan for r in forward_rows])
        restore = torch.empty_like(run_order)
        restore[run_order] = torch.arange(len(run_order))
        in_order = torch.cat(outputs).index_select(0, restore.to(outputs[0].device))
        for job, values in zip(jobs, in_order.split([len(job.rows) for job in jobs]), strict=True):
            job.future.set_result(values)

    @staticmethod
    def _answer_some(
        jobs: list[Job], plan: list[list[int]], outputs: list[torch.Tensor], errors: dict[int, Exception]
    ) -> None:
        """Some forwards failed: their requests get the error, the others their rows."""
        ran = iter(outputs)
        value_of: dict[int, torch.Tensor] = {}
        for forward_rows in plan:
            if forward_rows[0] not in errors:
                value_of.update(zip(forward_rows, next(ran), strict=True))
        first = 0
        for job in jobs:
            own = range(first, first + len(job.rows))
            first += len(job.rows)
            failed = next((errors[r] for r in own if r in errors), None)
            if failed is not None:
                job.future.set_exception(failed)
            else:
                job.future.set_result(torch.stack([value_of[r] for r in own]))
