"""What every ``labeltune`` command shares: the usage error, JSON output, the progress bar and Ctrl+C.

These helpers are the command line's own face; the work they report on happens in ``core``.
"""

from __future__ import annotations

import codecs
import io
import json
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from labeltune.core.errors import LabelTuneError
from labeltune.core.progress import Progress, ProgressCallback


class UsageError(LabelTuneError):
    """Bad command-line usage."""


def printable_stdout() -> None:
    """Let stdout print any file name: bytes that are not UTF-8 go out as they are (as ``ls`` does).

    Python's stdout under a UTF-8 locale raises ``UnicodeEncodeError`` on such a name (a traceback
    after the work is done); with another encoding (a Windows pipe), what it lacks is escaped.
    """
    stream = sys.stdout
    if not isinstance(stream, io.TextIOWrapper) or stream.errors != "strict":
        return
    utf8 = codecs.lookup(stream.encoding).name == "utf-8"
    stream.reconfigure(errors="surrogateescape" if utf8 else "backslashreplace")


def emit_json(value: Any) -> None:
    """Write ``value`` to stdout as indented JSON (what ``--json`` prints)."""
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


@contextmanager
def progress_bar(enabled: bool) -> Iterator[ProgressCallback]:
    """A tqdm bar per progress stage on stderr (none with --json or when stderr is not a terminal)."""
    if not enabled or not sys.stderr.isatty():
        yield lambda _p: None
        return
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def report(p: Progress) -> None:
        bar = bars.get(p.stage)
        if bar is None:
            for other in bars.values():
                other.close()
            bars.clear()
            unit = "B" if p.stage.startswith("download") else "it"
            bar = bars[p.stage] = tqdm(
                total=p.total or None,
                desc=p.stage,
                unit=unit,
                unit_scale=unit == "B",
                leave=False,
                dynamic_ncols=True,
            )
        if p.total and bar.total != p.total:
            bar.total = p.total
        bar.n = p.done
        if p.message:
            bar.set_postfix_str(p.message, refresh=False)
        bar.refresh()

    try:
        yield report
    finally:
        for bar in bars.values():
            bar.close()


@contextmanager
def stop_on_ctrl_c() -> Iterator[threading.Event]:
    """First Ctrl+C sets the stop event (work ends cleanly, keeping results); the second one aborts.

    Under torchrun (one of several ranks) SIGTERM stops too, and a repeated signal does not abort: the
    launcher passes the user's Ctrl+C on as well, and the ranks must end together with the checkpoint.
    """
    from labeltune.core.distributed import is_main, launched

    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return
    ranked = launched()

    def handler(_signum: int, _frame: object) -> None:
        if event.is_set():
            if ranked:
                return
            raise KeyboardInterrupt
        event.set()
        if ranked and is_main():
            sys.stderr.write("\nstopping every rank after this step, keeping the best model...\n")
        elif not ranked:
            sys.stderr.write("\nstopping after this batch (Ctrl+C again to abort)...\n")

    signals = (signal.SIGINT, signal.SIGTERM) if ranked else (signal.SIGINT,)
    previous = {number: signal.signal(number, handler) for number in signals}
    try:
        yield event
    finally:
        for number, before in previous.items():
            signal.signal(number, before)


def print_skipped(skipped: Sequence[Any], limit: int = 10) -> None:
    """List unreadable files on stderr, the first ``limit`` of them."""
    if not skipped:
        return
    sys.stderr.write(f"skipped {len(skipped)} unreadable file(s):\n")
    for item in skipped[:limit]:
        sys.stderr.write(f"  {item.path}: {item.reason}\n")
    if len(skipped) > limit:
        sys.stderr.write(f"  ... and {len(skipped) - limit} more (use --json for the full list)\n")
