"""Cost of a write into a size-limited `DiskStore` holding 10 000 entries, against an empty one.

Three folders with the same history (each filled with 10 000 values of 1 000 bytes), and
new keys written to each in turn, in blocks of 250 writes so that a busy machine slows
all three alike:

- **full**: a store with ``max_bytes`` set to exactly what the folder holds, so each
  write evicts the least recently read entry. The folder is opened ``--rounds`` times (a
  new store object each time), and the mean covers everything such a writer pays: the
  scan of the folder on its first write and the scans that follow, one per
  ``max_bytes / 2`` bytes written. Its first and slowest later write are printed too.
- **empty**: a store with the same ``max_bytes`` whose folder was emptied (with
  `DiskStore.delete`) and is emptied again after every 1 000 writes, so it never holds
  more than that.
- **no limit**: a store without ``max_bytes`` on a full folder, whose oldest entries are
  deleted between blocks (not timed) so it keeps 10 000: the cost of a write with none of
  the limit's work.

Printed: the mean wall and CPU time of a write into each, then the ratio we hold
ourselves to, and what the limit costs:

    python benchmarks/disk_store.py    # target: full <= 2x empty (wall time): the
                                       # number of entries does not matter
                                       # (full / no limit is printed, with no target)

The second ratio is there because the first depends on the file system too: on ext4 a
file written into a nearly empty folder tree can cost several times one written among
many, which flatters the first ratio; on tmpfs, empty and no limit cost the same. Exits
with status 1 when the first ratio is over its target. ``--entries``, ``--writes`` and
``--rounds`` make it shorter (docs/performance.md uses the defaults); ``--folder`` puts
the folders on another file system (default: the temp folder).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from avgen.resilience import DiskStore

TARGET_RATIO = 2.0
VALUE_BYTES = 1_000
BLOCK = 250  # writes to one store before turning to the next
EMPTY_WRITES = 1_000  # writes into the empty store before its entries are deleted


def keys(prefix: str, count: int) -> Iterator[str]:
    """Keys like the ones `avgen.resilience.cached` makes: 64 hex digits."""
    for i in range(count):
        yield hashlib.sha256(f"{prefix}-{i}".encode()).hexdigest()


class Writer:
    """Writes ``payload`` under new keys and keeps the wall and CPU time of each write."""

    def __init__(self, name: str, payload: bytes) -> None:
        self.keys = keys(name, sys.maxsize)
        self.payload = payload
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def write(self, store: DiskStore, count: int) -> list[str]:
        """Make ``count`` timed writes; returns their keys."""
        written = []
        for _ in range(count):
            key = next(self.keys)
            wall, cpu = time.perf_counter(), time.process_time()
            store.set(key, self.payload)
            self.cpu.append(time.process_time() - cpu)
            self.wall.append(time.perf_counter() - wall)
            written.append(key)
        return written

    def wall_us(self) -> float:
        return statistics.fmean(self.wall) * 1e6

    def cpu_us(self) -> float:
        return statistics.fmean(self.cpu) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=10_000,
                        help="entries a full folder holds (default: 10000)")
    parser.add_argument("--writes", type=int, default=None,
                        help="writes by each store opened on the full folder "
                             "(default: --entries)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="times the full folder is opened (default: 3)")
    parser.add_argument("--folder", type=Path, default=None,
                        help="where to make the folders (default: the temp folder)")
    args = parser.parse_args()
    writes = args.writes or args.entries
    limit = args.entries * VALUE_BYTES
    payload = bytes(range(256)) * (VALUE_BYTES // 256) + bytes(VALUE_BYTES % 256)

    full, empty, unlimited = (Writer(name, payload) for name in ("full", "empty", "free"))
    first: list[float] = []
    slowest: list[float] = []
    with tempfile.TemporaryDirectory(dir=args.folder) as root:
        folders = {name: Path(root) / name for name in ("full", "empty", "free")}
        for folder in folders.values():
            filler = DiskStore(folder)  # no limit: filling is not what is measured
            for key in keys("fill", args.entries):
                filler.set(key, payload)
        emptier = DiskStore(folders["empty"])
        for key in keys("fill", args.entries):
            emptier.delete(key)
        empty_store = DiskStore(folders["empty"], max_bytes=limit)
        in_empty: list[str] = []
        free_store = DiskStore(folders["free"])
        in_free = collections.deque(keys("fill", args.entries))
        for _ in range(args.rounds):
            store = DiskStore(folders["full"], max_bytes=limit)  # scans on its first write
            start = len(full.wall)
            for done in range(0, writes, BLOCK):
                count = min(BLOCK, writes - done)
                full.write(store, count)
                if len(in_empty) >= EMPTY_WRITES:
                    for key in in_empty:
                        empty_store.delete(key)
                    in_empty = []
                in_empty += empty.write(empty_store, count)
                in_free.extend(unlimited.write(free_store, count))
                for _ in range(count):
                    free_store.delete(in_free.popleft())
            first.append(full.wall[start])
            slowest.append(max(full.wall[start + 1:], default=0.0))
            if store.currsize > limit or len(store) != args.entries:
                print(f"the full store broke its limit: {store.currsize} bytes in "
                      f"{len(store)} entries")
                return 1

    print(f"DiskStore.set of {VALUE_BYTES}-byte values, max_bytes={limit} "
          f"({args.entries} values), Python {sys.version.split()[0]}:")
    print(f"  {'':<50} {'wall':>7} {'CPU':>7}")
    rows = [(f"empty store ({len(empty.wall)} writes)", empty),
            (f"full store ({args.rounds} × {writes} writes, each evicts)", full),
            (f"no limit, {args.entries} entries ({len(unlimited.wall)} writes)", unlimited)]
    for label, writer in rows:
        print(f"  {label:<50} {writer.wall_us():7.1f} {writer.cpu_us():7.1f} µs per write")
    print(f"  {f'full store: first write (scans {args.entries} entries)':<50} "
          f"{statistics.median(first) * 1e3:7.1f} ms (median of {args.rounds})")
    print(f"  {'full store: slowest later write (a scan)':<50} "
          f"{statistics.median(slowest) * 1e3:7.1f} ms (median of {args.rounds})")
    print()
    ratio = full.wall_us() / empty.wall_us()
    print(f"full / empty: {ratio:.2f}x wall, {full.cpu_us() / empty.cpu_us():.2f}x CPU "
          f"(target <= {TARGET_RATIO:.0f}x wall): {'ok' if ratio <= TARGET_RATIO else 'OVER'}")
    print(f"full / no limit: {full.wall_us() / unlimited.wall_us():.2f}x wall, "
          f"{full.cpu_us() / unlimited.cpu_us():.2f}x CPU (what the limit costs: its index, "
          "evictions and scans)")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
