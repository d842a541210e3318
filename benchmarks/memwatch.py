"""Peak memory of each k4s step, sampled from /proc while a build runs.

Every k4s step is one `k4stool <step>` process in a Pants sandbox, with its children
(`go list`, `makebb`, `go build` and the compilers it starts). A background thread
samples /proc every `interval` seconds, sums the resident set size of each k4stool
process and all its descendants, and keeps the peak per step (download, rewrite,
compile, cpio, ...). A sample costs ~8 ms of CPU here (it reads every process in /proc):
at 4 Hz that is 3% of one core, small next to what is measured; at 20 Hz it was 16%,
which slowed the timed builds it watched. A step shorter than the interval can be
missed (uroot's cpio step takes 0.2 s). Linux only.
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")


def _processes() -> dict[int, tuple[int, int, list[str]]]:
    """pid -> (ppid, rss bytes, argv)."""
    procs = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: split after it.
        fields = stat[stat.rindex(")") + 2 :].split()
        ppid, rss_pages = int(fields[1]), int(fields[21])
        procs[pid] = (ppid, rss_pages * PAGE, [a.decode(errors="replace") for a in argv if a])
    return procs


def step_of(argv: list[str]) -> str | None:
    """The k4s step a process is, if it is a k4stool step driver."""
    if len(argv) >= 2 and os.path.basename(argv[0]) == "k4stool":
        return argv[1]
    return None


def sample() -> dict[str, int]:
    """Current RSS of each running step's process tree, by step name (of the
    largest tree, where several processes of a step run at once)."""
    procs = _processes()
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (ppid, _, _) in procs.items():
        children[ppid].append(pid)
    totals: dict[str, int] = defaultdict(int)
    for pid, (_, _, argv) in procs.items():
        step = step_of(argv)
        if step is None:
            continue
        tree, stack = 0, [pid]
        while stack:
            p = stack.pop()
            tree += procs[p][1]
            stack.extend(children.get(p, ()))
        # The largest one process of a step that runs several at once (rewrite-command).
        totals[step] = max(totals[step], tree)
    return dict(totals)


class MemWatch:
    """`with MemWatch() as w: ...`, then `w.peaks`: step -> peak bytes."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for step, rss in sample().items():
                self.peaks[step] = max(rss, self.peaks.get(step, 0))

    def __enter__(self) -> "MemWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
