"""Password hashing: argon2id for every new hash, legacy bcrypt(sha256-hex) verified once.

Hashing is CPU- and memory-bound (argon2 allocates ``memory_cost`` KiB per hash), so it runs in
a small thread pool per process (argon2-cffi and bcrypt release the GIL) behind a bounded queue:
a flood of logins waits in that queue or is refused with :class:`Overloaded`, never allocates
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
        # unknown emails are verified against this, so they cost one hash like a real account
        self.dummy_hash = self.hasher.hash(secrets.token_urlsafe(24))

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


class HashPool:
    """At most ``concurrency`` hashes at once in this process, at most ``queue`` waiting."""

    def __init__(self, *, concurrency: int, queue: int, timeout: float) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(
            concurrency, thread_name_prefix="hash"
        )
        self._slots = asyncio.Semaphore(concurrency)
        self._capacity = concurrency + queue
        self._timeout = timeout
        self._pending = 0

    def full(self) -> bool:
        """No room for another job: refuse before doing any other work for the request."""
        return self._pending >= self._capacity

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
            started = time.perf_counter()

            def job() -> T:
                try:
                    return fn(*args)
                finally:
                    metrics.HASH_SECONDS.labels(operation).observe(time.perf_counter() - started)

            future = self._executor.submit(job)
            # the slot is released when the thread finishes, even if the request is cancelled
            future.add_done_callback(lambda _: loop.call_soon_threadsafe(self._slots.release))
            return await asyncio.wrap_future(future)
        finally:
            self._pending -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
