"""Fault tests (issue 14): the whole platform on a private PostgreSQL cluster that each test owns
(ops/embedded_pg.py in a temporary folder, a free port; the system server is never touched), so
a test may restart or crash it. ``KITSU_SOAK=1`` (`make soak`) makes every run long.

Writes go through the real gateway; every write answered 2xx is recorded and looked up in the
database afterwards (``Load.lost``): acknowledged means durable."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
import pytest

from database import build as db
from ops import embedded_pg, launch, services
from ops.bench import catalog
from tests.auth_service.conftest import CHEAP_HASHING
from tests.conftest import LOG_DIR, TEST_KID

SOAK = bool(os.environ.get("KITSU_SOAK"))
DBNAME = "kitsu_faults"
PASSWORD = "correct horse 42"


@dataclass
class Platform:
    cluster: embedded_pg.Cluster
    postgrest: services.Service
    admin_url: str
    auth: services.Service
    gateway: services.Service
    worker: services.Service
    upstream: services.Service
    titles: list[str]

    @property
    def url(self) -> str:
        assert self.gateway.url
        return self.gateway.url

    def owner(self) -> psycopg.Connection:
        return psycopg.connect(db.role_url(DBNAME, "kitsu_owner"), autocommit=True)

    def services(self) -> list[services.Service]:
        return [self.postgrest, self.auth, self.gateway, self.worker, self.upstream]


@pytest.fixture
def platform(monkeypatch, signing_key, jwks_json) -> Iterator[Platform]:
    # not pytest's tmp_path (0700 parents): as root the server runs as the postgres user
    home = Path(tempfile.mkdtemp(prefix="kitsu-faults-"))
    home.chmod(0o755)
    # authentication_timeout 5 s: during a fast shutdown the server still forks a child for each
    # client that connects, to refuse it, and waits for them all; one that sends nothing holds
    # the shutdown for authentication_timeout (60 s by default, as long as pg_ctl waits)
    cluster = embedded_pg.Cluster(home=home / "pg", settings={"authentication_timeout": "5s"}).start()
    monkeypatch.setenv("DATABASE_URL", cluster.url)  # role_url and every child started below
    started: list[services.Service] = []
    try:
        db.ensure_roles()
        db.ensure_database(DBNAME)
        db.migrate(DBNAME)
        with psycopg.connect(db.role_url(DBNAME, "kitsu_owner")) as conn:
            catalog.load(conn, 3000)
            conn.execute("insert into data.episodes (anime_id, number, title)"
                         " select a.id, n, 'Episode ' || n from data.anime a, generate_series(1, 3) n")
            titles = [str(row[0]) for row in conn.execute("select id from data.anime order by id")]
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        admin_port = services.free_port()
        postgrest = services.postgrest(DBNAME, jwks_json=jwks_json, admin_port=admin_port,
                                       log_path=LOG_DIR / "faults-postgrest.log")
        started.append(postgrest.start())
        postgrest.wait_ready()
        auth = launch.auth_process(DBNAME, port=services.free_port(), workers=3, log_path=LOG_DIR / "faults-auth.log",
                                   env={**CHEAP_HASHING, "AUTH_JWT_KEYS": json.dumps({TEST_KID: signing_key}),
                                        "AUTH_TRUSTED_PROXIES": "127.0.0.1/32", "AUTH_REGISTER_IP_LIMIT": "100000",
                                        "AUTH_LOGIN_IP_LIMIT": "100000", "AUTH_PURGE_INTERVAL": "3600"})
        started.append(auth.start())
        auth.wait_ready(timeout=60)
        gateway = launch.gateway_process(postgrest=postgrest, postgrest_admin=f"127.0.0.1:{admin_port}", auth=auth,
                                         run_dir=home / "gateway", port=services.free_port(),
                                         env={"GATEWAY_CACHE_SECONDS": "0"}, log_path=LOG_DIR / "faults-gateway.log")
        started.append(gateway.start())
        gateway.wait_ready()
        upstream = launch.upstream_process(port=services.free_port(), log_path=LOG_DIR / "faults-upstream.log")
        started.append(upstream.start())
        upstream.wait_ready()
        worker = launch.worker_process(DBNAME, name="faults", log_path=LOG_DIR / "faults-worker.log",
                                       env={**launch.upstream_env(upstream), "INGEST_POLL_SECONDS": "0.2",
                                            "INGEST_HEARTBEAT_SECONDS": "1", "INGEST_STALLED_SECONDS": "5",
                                            "INGEST_SWEEP_CRON": "* * * * * */2"})
        started.append(worker.start())
        worker.wait_ready()
        yield Platform(cluster, postgrest, f"http://127.0.0.1:{admin_port}", auth, gateway, worker, upstream, titles)
    finally:
        for service in reversed(started):
            service.stop()
        cluster.stop()
        shutil.rmtree(home, ignore_errors=True)


@dataclass
class Person:
    email: str
    user_id: str
    token: str


@dataclass
class Load:
    """Threads driving the gateway until stopped: ``writers`` people adding favorites (each a
    new title), ``readers`` reading their favorites, one thread registering people. Every 2xx
    write is recorded; every answer is counted by status."""

    platform: Platform
    writers: int = 6
    readers: int = 4
    acked_favorites: list[tuple[str, str]] = field(default_factory=list)  # (user_id, anime_id)
    acked_people: list[str] = field(default_factory=list)                # e-mails registered (201)
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)
    successes: list[tuple[float, str]] = field(default_factory=list)     # (time, kind) of each 2xx
    errors: list[tuple[str, int, str]] = field(default_factory=list)     # the first answers that failed
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, kind: str, status: int) -> None:
        with self.lock:
            by_status = self.statuses.setdefault(kind, {})
            by_status[status] = by_status.get(status, 0) + 1
            if 200 <= status < 300:
                self.successes.append((time.monotonic(), kind))

    def register(self, client: httpx.Client) -> Person | None:
        email = f"fault-{uuid.uuid4().hex[:12]}@example.test"
        try:
            response = client.post("/auth/register", json={"email": email, "password": PASSWORD})
        except httpx.HTTPError:
            self.count("register", 0)
            return None
        self.count("register", response.status_code)
        if response.status_code != 201:
            return None
        with self.lock:
            self.acked_people.append(email)
        token = response.json()["access_token"]
        claims = jwt.decode(token, options={"verify_signature": False})
        return Person(email, claims["sub"], token)

    def _writer(self, number: int) -> None:
        """Adds its share of the titles to one person's favorites, then to a new person's, …"""
        mine = self.platform.titles[number::self.writers]
        with httpx.Client(base_url=self.platform.url, timeout=10) as client:
            while not self.stop.is_set():
                person = self.register(client)
                if person is None:
                    time.sleep(0.2)
                    continue
                for anime_id in mine:
                    if self.stop.is_set():
                        return
                    try:
                        response = client.post("/rest/favorites", json={"anime_id": anime_id},
                                               headers={"Authorization": f"Bearer {person.token}",
                                                        "Prefer": "return=minimal"})
                        status = response.status_code
                    except httpx.HTTPError:
                        status = 0
                    self.count("favorite", status)
                    if status == 201:
                        with self.lock:
                            self.acked_favorites.append((person.user_id, anime_id))
                    time.sleep(0.01)

    def _reader(self) -> None:
        with httpx.Client(base_url=self.platform.url, timeout=10) as client:
            person = None
            while person is None and not self.stop.is_set():
                person = self.register(client) or time.sleep(0.2)  # type: ignore[func-returns-value]
            while not self.stop.is_set() and person is not None:
                try:
                    response = client.get("/rest/favorites?select=*,anime(id,title)&limit=20",
                                          headers={"Authorization": f"Bearer {person.token}"})
                    status = response.status_code
                    if status >= 400 and len(self.errors) < 10:
                        self.errors.append(("read", status, response.text[:300]))
                except httpx.HTTPError:
                    status = 0
                self.count("read", status)
                time.sleep(0.01)

    def _registrar(self) -> None:
        with httpx.Client(base_url=self.platform.url, timeout=10) as client:
            while not self.stop.is_set():
                self.register(client)
                time.sleep(0.05)

    def __enter__(self) -> Load:
        targets: list[Callable[[], None]] = [lambda n=n: self._writer(n) for n in range(self.writers)]
        targets += [self._reader] * self.readers + [self._registrar]
        self.threads = [threading.Thread(target=target, daemon=True) for target in targets]
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)

    def successes_after(self, moment: float, kind: str) -> int:
        with self.lock:
            return sum(1 for at, k in self.successes if at > moment and k == kind)

    def wait_for_success(self, kind: str, after: float, timeout: float = 60) -> float:
        """Seconds from ``after`` until a ``kind`` request succeeds again."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                later = [at for at, k in self.successes if at > after and k == kind]
            if later:
                return min(later) - after
            time.sleep(0.05)
        raise AssertionError(f"no {kind} succeeded within {timeout}s; statuses {self.statuses}")

    def lost(self) -> dict[str, list[Any]]:
        """Acknowledged writes missing from the database (must be none)."""
        with self.platform.owner() as conn:
            present = {(str(u), str(a)) for u, a in conn.execute("select user_id, anime_id from data.favorites")}
            people = {row[0] for row in conn.execute("select email from data.users")}
        return {"favorites": [pair for pair in self.acked_favorites if pair not in present],
                "people": [email for email in self.acked_people if email not in people]}

    def report(self, name: str, lost: dict[str, list[Any]], extra: str = "") -> str:
        line = (f"{name}: acknowledged {len(self.acked_favorites)} favorites + {len(self.acked_people)} sign-ups; "
                f"lost {len(lost['favorites'])} favorites, {len(lost['people'])} sign-ups "
                f"{lost if any(lost.values()) else ''}; answers by status {self.statuses}. {extra}"
                + (f" First failed answers: {self.errors}" if self.errors else ""))
        print("\n" + line)
        path = Path(os.environ.get("KITSU_FAULT_REPORT", LOG_DIR / "fault-results.txt"))
        with path.open("a") as report:
            report.write(time.strftime("%Y-%m-%d %H:%M:%S ") + line + "\n")
        return line


def same_processes(platform: Platform, pids: dict[str, int]) -> dict[str, int]:
    """Services whose process is no longer the one started (died or was replaced)."""
    def replaced(service: services.Service) -> bool:
        process = service.process
        return process is None or process.poll() is not None or process.pid != pids[service.name]

    return {service.name: pids[service.name] for service in platform.services() if replaced(service)}


def pids_of(platform: Platform) -> dict[str, int]:
    return {service.name: service.process.pid for service in platform.services() if service.process is not None}


def ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, f"{what} not within {timeout}s"
        time.sleep(0.1)
    return time.monotonic() - started
