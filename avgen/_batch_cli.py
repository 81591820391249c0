"""``avgen batch``: many videos from a JSONL or CSV file, with one progress bar for the batch.

::

    avgen batch topics.csv --budget 20                      # in this process
    avgen batch topics.csv --processes 2                    # two processes of this machine
    avgen batch topics.csv --workers 4                      # a local Dask cluster
    avgen batch topics.csv --scheduler tcp://host:8786 --cache gs://bucket/avgen

Exit status: 0 every video made, 1 some were not (the table says which, and how to finish
them), 2 bad input (nothing was made or spent), 130 interrupted.
"""

from __future__ import annotations

__docformat__ = "google"

import argparse
import concurrent.futures
import contextlib
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from avgen._generator import VideoGenerator
from avgen._google_cli import google_models
from avgen._progress import RunProgress
from avgen._reporting import RunEvent
from avgen._rows import read_requests
from avgen._terminal import Terminal, agent_family, console
from avgen._validate import number
from avgen.errors import AvgenError, UsageError

__all__: list[str] = []


class _BatchBar(Terminal):
    """One line for the whole batch: items done, failed, running, and dollars spent."""

    def __init__(self, stream: TextIO, quiet: bool) -> None:
        super().__init__(stream, quiet)
        self.core = RunProgress()
        self.spent = 0.0

    def __call__(self, event: RunEvent) -> None:
        if self.quiet:
            return
        step = self.core.follow(event)  # what the event means, as for every other bar
        if not event.kind.startswith("batch"):
            if step.line is not None:  # an item's note, fallback, retry or failure
                self.say(step.line)
            return
        data = event.data
        self.spent = float(data.get("spent", self.spent) or self.spent)
        line = (f"{data.get('done', 0)}/{data.get('total', 0)} done, {data.get('failed', 0)} "
                f"failed, {data.get('running', 0)} running, ${self.spent:.2f} spent")
        if self.tty:
            self._bar(step.progress, f"{line:<60}")
            if event.kind == "batch.item" and data.get("status") == "failed":
                self.say(event.message)
        elif event.kind != "batch.item" or data.get("status") != "running":
            self._line(f"[{step.progress:4.0%}] {event.message} ({line})")


def _agent_options(args: argparse.Namespace, family: str) -> dict[str, Any]:
    options: dict[str, Any] = dict(google_models(args, family))
    google_only = {"cache": args.cache, "max_clip_operations": args.max_clip_operations}
    for name, value in google_only.items():
        if value is not None and family != "google":
            raise UsageError(name.replace("_", "-"), f"is a google option; these agents are "
                             f"{family!r}")
    if family == "google":
        if args.no_cache and args.cache:
            raise UsageError("cache", "--cache and --no-cache contradict each other")
        if args.no_cache:
            options["cache"] = False
        elif args.cache:
            options["cache"] = args.cache
        if args.max_clip_operations is not None:
            options["max_clip_operations"] = args.max_clip_operations
    return options


@contextlib.contextmanager
def _where(args: argparse.Namespace) -> Iterator[object]:
    """The executor the command line asks for (None: this process)."""
    if args.processes is not None:
        number("processes", args.processes, integer=True, low=1)
        with concurrent.futures.ProcessPoolExecutor(args.processes) as pool:
            yield pool
        return
    if args.workers is None and args.scheduler is None:
        yield None
        return
    from avgen._dask import require_distributed, worker_settings

    distributed = require_distributed()
    if args.workers is not None:
        import dask

        number("workers", args.workers, integer=True, low=1)
        with dask.config.set(worker_settings()), \
                distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                         processes=True, dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            yield client
        return
    try:
        client = distributed.Client(args.scheduler, timeout=30)
    except OSError as exc:
        raise UsageError("scheduler", f"cannot reach the Dask scheduler at "
                         f"{args.scheduler!r} ({exc})") from None
    with client:
        yield client


def run_batch_command(args: argparse.Namespace) -> int:
    """``avgen batch``: returns the exit status."""
    bar = _BatchBar(sys.stderr, args.quiet)
    with console(bar):
        try:
            requests = read_requests(args.requests)  # every row, before anything runs
            family = agent_family(args)
            generator = VideoGenerator(family, agent_options=_agent_options(args, family),
                                       output_dir=args.out, budget=args.video_budget)
            with generator, _where(args) as executor:
                result = generator.generate_many_sync(
                    requests, executor=executor, concurrency=args.concurrency,
                    budget=args.budget, on_event=bar)
        except UsageError as exc:
            bar.close()
            print(f"avgen: error: {exc}", file=sys.stderr)
            return 2
        except AvgenError as exc:
            bar.close()
            print(f"avgen: failed: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            bar.close()
            print("avgen: interrupted; run the same command again to finish the batch",
                  file=sys.stderr)
            return 130
    bar.close()
    print(result)
    print(f"batch folder: {result.directory}")
    return 0 if result.ok else 1
