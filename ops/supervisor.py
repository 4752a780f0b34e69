"""Keeps the processes of `make run` up: a child that exits unexpectedly is restarted with backoff
(and a crash loop is said out loud), the others keep serving, and only Ctrl-C / SIGTERM stops
everything - in reverse start order, within one deadline.

Signals: the handler only sets a flag. It takes no lock (the old ``threading.Event.set()`` in a
handler could deadlock against ``Event.wait`` in the same thread) and raises nothing, so no
library is interrupted half-way (a migration, a query); the supervisor looks at the flag
between steps and every 0.2 s while it waits, and raises ``Stop`` itself. A child is registered
before it starts, so nothing started is ever left behind. (Blocking the signals instead would
not do: a child inherits the signal mask through exec and could never receive SIGTERM.)
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ops.services import Service

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
CRASH_WINDOW = 60.0   # crashes counted over this many seconds...
CRASH_LOOP = 5        # ...this many of them is a crash loop
MAX_BACKOFF = 30.0


class Stop(Exception):
    """Ctrl-C or SIGTERM: stop everything."""


def describe(returncode: int) -> str:
    if returncode < 0:
        return f"signal {signal.Signals(-returncode).name}"
    return f"status {returncode}"


@dataclass
class Child:
    service: Service
    crashes: list[float] = field(default_factory=list)
    restart_at: float | None = None

    def exited(self) -> int | None:
        process = self.service.process
        return None if process is None else process.poll()


class Supervisor:
    def __init__(self, *, deadline: float = 20.0, say: Callable[[str], None] | None = None) -> None:
        self.children: list[Child] = []
        self.deadline = deadline
        self.stopping: str | None = None  # the signal that asked for it
        self.after_stop: list[Callable[[], None]] = []  # run once every child is gone
        self.say = say or (lambda line: print(line, file=sys.stderr, flush=True))

    def install_signal_handlers(self) -> None:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.stopping = self.stopping or signal.Signals(signum).name

    def checkpoint(self) -> None:
        """Raise Stop if Ctrl-C or SIGTERM came; call it between steps."""
        if self.stopping:
            raise Stop(self.stopping)

    def start(self, service: Service, *, ready_timeout: float = 60.0) -> Service:
        self.checkpoint()
        self.children.append(Child(service))
        service.start()
        deadline = time.monotonic() + ready_timeout
        while True:
            self.checkpoint()
            try:
                return service.wait_ready(timeout=min(0.5, max(0.0, deadline - time.monotonic())))
            except TimeoutError:
                if time.monotonic() >= deadline:
                    raise

    def check(self, now: float | None = None) -> None:
        """Restart children that exited (call it often: it never blocks)."""
        now = time.monotonic() if now is None else now
        for child in self.children:
            returncode = child.exited()
            if returncode is None or self.stopping:
                continue
            if child.restart_at is None:
                child.service.kill_leftovers()
                child.crashes = [t for t in child.crashes if now - t < CRASH_WINDOW] + [now]
                backoff = min(MAX_BACKOFF, 2.0 ** (len(child.crashes) - 1))
                child.restart_at = now + backoff
                loop = len(child.crashes) >= CRASH_LOOP
                self.say(("crash loop: " if loop else "")
                         + f"{child.service.name} exited with {describe(returncode)}"
                         + (f" {len(child.crashes)} times in {CRASH_WINDOW:.0f} s" if loop else "")
                         + f"; restarting in {backoff:.0f} s (log: {child.service.log_path})")
            elif now >= child.restart_at:
                child.restart_at = None
                child.service.start()
                self.say(f"{child.service.name} restarted")

    def serve(self, tick: Callable[[], None] = lambda: None, interval: float = 0.2) -> None:
        """Supervise until Ctrl-C / SIGTERM raises Stop; ``tick`` runs on every round."""
        while True:
            self.checkpoint()
            self.check()
            tick()
            time.sleep(interval)

    def stop_all(self) -> None:
        """SIGTERM to every child, newest first; SIGKILL what is left at the deadline."""
        self.stopping = self.stopping or "stop"
        end = time.monotonic() + self.deadline
        for child in reversed(self.children):
            child.service.signal(signal.SIGTERM)
            process = child.service.process
            if process is not None:
                try:
                    process.wait(timeout=max(0.1, min(5.0, end - time.monotonic())))
                except subprocess.TimeoutExpired:
                    pass  # killed below
        for child in self.children:
            child.service.signal(signal.SIGKILL)
            if child.service.process is not None:
                child.service.process.wait()
            child.service.kill_leftovers()
        for action in reversed(self.after_stop):
            action()
