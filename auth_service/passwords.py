"""Password hashing: argon2id for every new hash, legacy bcrypt(sha256-hex) verified once.

Hashing is CPU- and memory-bound (argon2 allocates ``memory_cost`` KiB per hash), so it runs in
a small thread pool per process (argon2-cffi and bcrypt release the GIL) behind a bounded queue:
a flood of logins waits in that queue (only as long as it is expected to wait at most
``AUTH_HASH_MAX_WAIT_SECONDS``) or is refused with :class:`Overloaded`, never allocates
more than ``concurrency x memory_cost`` for hashing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import argon2
import bcrypt
from argon2.exceptions import InvalidHashError, VerificationError

from auth_service import metrics

T = TypeVar("T")


@dataclass(frozen=True)
class Verdict:
    ok: bool
    new_hash: str | None = None  # set when the stored hash must be upgraded


class Passwords:
    """argon2id with the configured parameters, plus the legacy scheme of the old system
    (original-system.md §4.3: bcrypt over the SHA-256 hex digest of the password)."""

    def __init__(self, *, time_cost: int, memory_cost: int, parallelism: int) -> None:
        self.hasher = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            type=argon2.Type.ID,
        )
        # unknown emails are verified against this, so they cost one hash like a real account;
        # timed, it seeds the hash pool's average hash duration
        started = time.perf_counter()
        self.dummy_hash = self.hasher.hash(secrets.token_urlsafe(24))
        self.seed_seconds = time.perf_counter() - started

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> Verdict:
        """Check ``password`` against ``stored`` (None: unknown account -> the dummy hash)."""
        if stored is None:
            self._argon2_matches(self.dummy_hash, password)
            return Verdict(False)
        if stored.startswith("$argon2id$"):
            if not self._argon2_matches(stored, password):
                return Verdict(False)
            upgrade = self.hasher.check_needs_rehash(stored)
            return Verdict(True, self.hash(password) if upgrade else None)
        if stored.startswith(("$2a$", "$2b$", "$2y$")):
            if not legacy_matches(stored, password):
                return Verdict(False)
            return Verdict(True, self.hash(password))
        return Verdict(False)

    def verify_and_hash(
        self, stored: str, password: str, new_password: str
    ) -> tuple[bool, str | None]:
        """Password change in one pool job: verify the current password, hash the new one."""
        if not self.verify(stored, password).ok:
            return False, None
        return True, self.hash(new_password)

    def _argon2_matches(self, stored: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False


def legacy_hash(password: str, rounds: int = 12) -> str:
    """The old system's scheme (for tests and imports): bcrypt of the SHA-256 hex digest."""
    digest = hashlib.sha256(password.encode()).hexdigest().encode()
    return bcrypt.hashpw(digest, bcrypt.gensalt(rounds)).decode()


def legacy_matches(stored: str, password: str) -> bool:
    digest = hashlib.sha256(password.encode()).hexdigest().encode()
    try:
        return bcrypt.checkpw(digest, stored.encode())
    except ValueError:
        return False


class Overloaded(Exception):
    """The hashing queue is full (or waited too long): answer 503 with Retry-After."""


def admits(pending: int, average: float, threads: int, max_wait: float) -> bool:
    """Whether a new job, behind ``pending`` jobs (queued + running), is expected to start
    within ``max_wait`` seconds: ``pending x average hash duration / threads <= max_wait``."""
    return pending * average / threads <= max_wait


class HashPool:
    """At most ``concurrency`` hashes at once in this process; a job is admitted only while
    its expected wait is at most ``max_wait`` (and at most ``queue`` wait, a memory bound).

    The queue is sized by expected wait, not by count (issue 9, §11): a count of 256 at ~16
    hashes/s is ~16 s of work, longer than the ``timeout``, so under a login storm accepted
    sign-ins waited in vain and timed out. Refusing at once (503 + Retry-After) is better for the
    client than a long wait that ends in a 503 anyway. The average hash duration is measured: an
    exponential moving average of real hash times, seeded by one timed hash at start-up, so it
    follows the machine's load.
    """

    EMA_WEIGHT = 0.2  # weight of the newest hash time in the moving average

    def __init__(
        self,
        *,
        concurrency: int,
        queue: int,
        timeout: float,
        max_wait: float = 2.0,
        seed_seconds: float = 0.05,
    ) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(
            concurrency, thread_name_prefix="hash"
        )
        self._slots = asyncio.Semaphore(concurrency)
        self._concurrency = concurrency
        self._capacity = concurrency + queue
        self._timeout = timeout
        self._max_wait = max_wait
        self.average = seed_seconds
        self._pending = 0

    def full(self) -> bool:
        """No room for another job: refuse before doing any other work for the request."""
        return self._pending >= self._capacity or not admits(
            self._pending, self.average, self._concurrency, self._max_wait
        )

    def _observe(self, seconds: float) -> None:
        # called from hashing threads: one float assignment, atomic under the GIL
        self.average += self.EMA_WEIGHT * (seconds - self.average)

    async def run(self, operation: str, fn: Callable[..., T], *args: object) -> T:
        if self.full():
            metrics.HASH_REFUSED.inc()
            raise Overloaded
        self._pending += 1
        try:
            try:
                await asyncio.wait_for(self._slots.acquire(), self._timeout)
            except TimeoutError:
                metrics.HASH_REFUSED.inc()
                raise Overloaded from None
            loop = asyncio.get_running_loop()

            def job() -> T:
                started = time.perf_counter()
                try:
                    return fn(*args)
                finally:
                    elapsed = time.perf_counter() - started
                    metrics.HASH_SECONDS.labels(operation).observe(elapsed)
                    self._observe(elapsed)

            future = self._executor.submit(job)
            # the slot is released when the thread finishes, even if the request is cancelled
            future.add_done_callback(lambda _: loop.call_soon_threadsafe(self._slots.release))
            return await asyncio.wrap_future(future)
        finally:
            self._pending -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
