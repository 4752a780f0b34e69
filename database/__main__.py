"""python -m database {setup|migrate|reload-code|first-sync|grant-role EMAIL ROLE|pgbouncer-config DIR}

The image's migrate step (compose) runs `setup` then `first-sync`; `make migrate` and
`make grant-role` call the same functions after loading the developer's .env (ops/db.py).
"""

from __future__ import annotations

import os
import sys

from database import build


def main(argv: list[str]) -> None:
    dbname = build.database_name()
    match argv:
        case ["setup"]:
            build.setup(dbname)
        case ["migrate"]:
            print(f"{build.migrate(dbname)} migration(s) applied, code re-applied")
        case ["reload-code"]:
            build.apply_code(dbname)
        case ["first-sync"]:
            # compose's migrate step: queue the first syncs when the catalog is empty
            from ingest import operations

            if operations.catalog_empty(dbname):
                operations.first_sync(dbname, wait=False)
                print("catalog empty: first syncs queued")
        case ["grant-role", email, role]:
            build.grant_role(dbname, email, role)
        case ["pgbouncer-config", directory]:
            # compose's pgbouncer service: the server is DATABASE_URL's, PgBouncer listens on 6432
            from pathlib import Path

            from psycopg.conninfo import conninfo_to_dict

            from database import pgbouncer

            server = conninfo_to_dict(build.admin_url())
            print(pgbouncer.write(Path(directory), dbname=dbname, server_host=str(server.get("host", "db")),
                                  server_port=int(str(server.get("port") or 5432)), listen_addr="0.0.0.0",
                                  listen_port=6432, pool_size=int(os.environ.get("PGBOUNCER_POOL_SIZE") or 10)))
        case _:
            raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
