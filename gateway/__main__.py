"""`python -m gateway render --out FILE ...`: write the gateway's nginx configuration (compose
runs this once before nginx starts; `make run` calls gateway.config directly)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.config import EdgeSettings, render


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway")
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("render", help="write the nginx server configuration")
    command.add_argument("--out", type=Path, required=True)
    command.add_argument("--listen", default=None, help="default: GATEWAY_PORT")
    command.add_argument("--postgrest", required=True, help="host:port of PostgREST (comma-separated: replicas)")
    command.add_argument("--postgrest-admin", required=True, help="host:port of PostgREST's admin server(s)")
    command.add_argument("--auth", required=True, help="host:port of auth_service (comma-separated: replicas)")
    command.add_argument("--catalog-replica", default="",
                         help="host:port of a streaming replica's PostgREST for anonymous catalog reads")
    command.add_argument("--cache-dir", required=True)
    command.add_argument("--access-log", default="/dev/stdout")
    args = parser.parse_args(argv)
    edge = EdgeSettings()
    text = render(edge, listen=args.listen or str(edge.gateway_port), postgrest=args.postgrest,
                  postgrest_admin=args.postgrest_admin, auth=args.auth, cache_dir=args.cache_dir,
                  access_log=args.access_log, catalog_replica=args.catalog_replica)
    args.out.write_text(text)
    print(f"gateway configuration written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
