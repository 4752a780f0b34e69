"""Which PostgreSQL `make run` and `make test` use, and a private one when there is none.

1. ``DATABASE_URL``, when set, always wins.
2. Else the default address (postgresql://postgres@127.0.0.1:5432/postgres), if a server answers.
3. Else a private cluster in ``.cache/embedded-pg`` (git-ignored, kept between runs) started
   from the machine's own PostgreSQL server binaries (``pg_config --bindir``, or
   /usr/lib/postgresql/<newest>/bin) on a free port, listening on 127.0.0.1 only, trust auth
   for its ``postgres`` superuser. Its contrib has every extension the schema needs (pg_trgm,
   unaccent). As root the cluster belongs to the ``postgres`` system user, because the server
   refuses to run as root.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from database.build import DEFAULT_ADMIN_URL, ROOT

HOME = Path(os.environ.get("KITSU_EMBEDDED_PG_DIR", ROOT / ".cache" / "embedded-pg"))
# the address probed before falling back to the private cluster (a test points it elsewhere)
DEFAULT_URL = os.environ.get("KITSU_DEFAULT_DATABASE_URL", DEFAULT_ADMIN_URL)


@dataclass
class Database:
    url: str
    description: str           # for the `ready:` line
    cluster: Cluster | None = None

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()


def answers(url: str) -> bool:
    """Does a server accept connections at ``url``'s host and port?"""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(url)
    try:
        with socket.create_connection((params.get("host", "127.0.0.1"), int(params.get("port", 5432))), 1.0):
            return True
    except OSError:
        return False


def bindir() -> Path:
    if shutil.which("pg_config"):
        found = Path(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip())
        if (found / "initdb").exists():
            return found
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not versions:
        raise SystemExit("no PostgreSQL server: set DATABASE_URL, start one on 127.0.0.1:5432, or install "
                         "PostgreSQL's server binaries (Debian: postgresql-15) for the embedded cluster")
    return versions[-1].parent


class Cluster:
    """A private cluster under ``home``: data/, its log, its socket directory."""

    def __init__(self, home: Path = HOME, *, max_connections: int = 200,
                 settings: Mapping[str, str | int] | None = None) -> None:
        self.home = home
        self.data = home / "data"
        self.bin = bindir()
        self.port = free_port()
        self.max_connections = max_connections
        # more server settings, each passed as -c name=value (a test's shared_preload_libraries, ...)
        self.settings = dict(settings or {})

    def _run(self, *argv: str) -> None:
        command = [str(self.bin / argv[0]), *argv[1:]]
        if os.geteuid() == 0:  # the server refuses root: run it as the postgres system user
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, text=True)

    def standby_of(self, primary: Cluster) -> Cluster:
        """Make this (not yet started) cluster a streaming replica of ``primary``: pg_basebackup
        of its data with -R (standby.signal and primary_conninfo), over a replication connection."""
        self._prepare_home()
        self._run("pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres", "-D", str(self.data),
                  "-R", "-X", "stream", "-c", "fast")
        return self

    def _prepare_home(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.home, user.pw_uid, user.pw_gid)

    def start(self) -> Cluster:
        self._prepare_home()
        if not (self.data / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                      "--locale=C.UTF-8")
        settings = {"listen_addresses": "127.0.0.1", "unix_socket_directories": str(self.home),
                    "max_connections": self.max_connections, **self.settings}
        options = f"-p {self.port}" + "".join(f" -c {name}={value}" for name, value in settings.items())
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.home / "server.log"), "-o", options, "-w", "start")
        return self

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def restart(self, mode: str = "fast") -> None:
        """Stop (``fast``: clean; ``immediate``: as a crash, recovered from the WAL) and start
        again on the same port and options (fault tests)."""
        # -l as at start: the new server must not inherit (and hold open) our output pipes;
        # -t 180: a fast shutdown also waits for every child, and pg_ctl's own 60 s once ran out
        # under the full suite's load (the server shut down a moment later)
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.home / "server.log"), "-m", mode, "-t", "180",
                  "-w", "restart")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def version(self) -> str:
        return (self.data / "PG_VERSION").read_text().strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def resolve() -> Database:
    """The server to use (see the module docstring); sets DATABASE_URL for what follows."""
    if url := os.environ.get("DATABASE_URL"):
        return Database(url, "DATABASE_URL")
    if answers(DEFAULT_URL):
        database = Database(DEFAULT_URL, "the server on the default address")
    else:
        cluster = Cluster().start()
        database = Database(cluster.url, f"embedded PostgreSQL {cluster.version} (this machine's server "
                                         f"binaries, {cluster.bin}) in {cluster.home}", cluster)
    os.environ["DATABASE_URL"] = database.url
    return database
