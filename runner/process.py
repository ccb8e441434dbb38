"""How the postrun process starts and ends: standard descriptors held, the garbage collector
paused while it starts, SIGTERM/SIGINT taken like --max-time, and an exit without teardown."""

from __future__ import annotations

import gc
import signal
from typing import TYPE_CHECKING, ClassVar, NoReturn

from runner import terminal

if TYPE_CHECKING:
    from runner.engine import Interrupt


def hold_standard_descriptors() -> None:
    """Put /dev/null on a standard descriptor postrun was started without (``2>&-``): the next
    file opened, a report being written, would otherwise take its number, and whatever a
    library or a worker process then writes to "stderr" would land in the report."""
    import os

    for number in (0, 1, 2):
        try:
            os.fstat(number)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != number:
                os.dup2(null, number)
                os.close(null)


def exit_process(code: int) -> NoReturn:
    """Exit with ``code`` once the exit handlers have run, without tearing the interpreter down.

    The teardown frees, object by object, everything imported, after a last full garbage
    collection over all of it: about a quarter of a short run's time, for memory the system
    reclaims anyway. It would also abort the process (SIGABRT, exit 134, not the verdict's code)
    under a statement cancelled on timeout that is still unwinding inside the driver in a daemon
    worker thread, and it would flush stdout once more: a closed pipe or a full disk there would
    turn the verdict's code into 120. A stream that cannot be flushed now is reported instead.
    """
    import atexit
    import os

    atexit._run_exitfuncs()
    terminal.Output.flush()
    os._exit(code)


class Signals:
    """SIGTERM and SIGINT while `check`, `demo` or `report` runs. The first is taken like
    --max-time: the engine cancels the statements still running (in the database), marks the
    checks not finished ERROR / timeout, every report is written and postrun exits 3; coming
    while the reports are written, it lets the one being written finish and starts no other. A
    second exits at once (128 + its number), after removing the temporary file of a report
    being written."""

    received = 0
    name = ""
    interrupt: ClassVar[Interrupt | None] = None

    @classmethod
    def catch(cls, interrupt: Interrupt | None = None) -> None:
        """Handle both signals from now on; the first sets ``interrupt``, the run's."""
        import runner.render  # noqa: F401 - loaded now: a second signal must not import it

        cls.interrupt = interrupt
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, cls._received)

    @classmethod
    def reason(cls) -> str:
        return cls.name or "a signal"

    @classmethod
    def _received(cls, number: int, _frame: object) -> None:
        import os

        from runner.render import discard_temporary_files

        cls.received += 1
        if cls.received == 1:
            cls.name = signal.Signals(number).name
            if cls.interrupt is not None:
                cls.interrupt.set(cls.name)
            return
        discard_temporary_files()
        os._exit(128 + number)


class Collector:
    """The cyclic garbage collector, paused while postrun starts (see ``main``).

    Start-up builds some 80,000 container objects that live until exit (modules, classes,
    pydantic and SQLAlchemy structures) and next to no cyclic garbage, yet the collector walks
    them again and again as they pile up: a tenth of a short run. ``resume``, called before the
    work that grows with the data, freezes what exists by then (left out of every later
    collection) and lets the collector look after what the run makes.
    """

    paused = False

    @classmethod
    def pause(cls) -> None:
        if gc.isenabled():
            gc.disable()
            cls.paused = True

    @classmethod
    def resume(cls) -> None:
        if cls.paused:
            cls.paused = False
            gc.freeze()
            gc.enable()
