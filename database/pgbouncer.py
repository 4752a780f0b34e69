"""PgBouncer's configuration for the web logins (docs/scaling.md): transaction mode, at most
``pool_size`` server connections per login and their sum capped by ``max_db_connections``, so
the connection budget holds however many PostgREST and auth_service replicas connect. Written by
`make run` (ops/launch.py) and, in compose, by `python -m database pgbouncer-config` before
PgBouncer starts (the same text both ways)."""

from __future__ import annotations

import os
from pathlib import Path

from database.build import ROLE_PASSWORDS

WEB_LOGINS = ("authenticator", "auth_service")  # PostgREST's and auth_service's; workers connect directly


def write(directory: Path, *, dbname: str, server_host: str, server_port: int, listen_addr: str,
          listen_port: int, pool_size: int) -> Path:
    """pgbouncer.ini and its userlist (mode 0600) in ``directory``; returns the ini's path.
    The userlist holds the logins' passwords from the environment in plain text, because
    PgBouncer logs in to the server with them too; without passwords (a trust-auth server)
    PgBouncer trusts as the server does."""
    passwords = {login: os.environ.get(ROLE_PASSWORDS[login], "") for login in WEB_LOGINS}
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    users = directory / "userlist.txt"
    users.write_text("".join(f'"{login}" "{password}"\n' for login, password in passwords.items()))
    users.chmod(0o600)
    ini = directory / "pgbouncer.ini"
    ini.write_text(
        f"[databases]\n{dbname} = host={server_host} port={server_port} dbname={dbname}\n\n[pgbouncer]\n"
        f"listen_addr = {listen_addr}\nlisten_port = {listen_port}\nunix_socket_dir =\n"
        f"auth_type = {'scram-sha-256' if all(passwords.values()) else 'trust'}\nauth_file = {users}\n"
        "pool_mode = transaction\n"
        f"default_pool_size = {pool_size}\nmin_pool_size = 0\nreserve_pool_size = 0\n"
        f"max_db_connections = {len(WEB_LOGINS) * pool_size}\nmax_client_conn = 2000\n"
        # transaction mode: nothing of a session survives the transaction, so nothing to reset
        "server_reset_query =\nignore_startup_parameters = extra_float_digits\n")
    return ini
