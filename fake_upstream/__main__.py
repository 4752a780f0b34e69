"""python -m fake_upstream [--port 8765] [--titles N] [--no-limits] ..."""

from __future__ import annotations

import argparse
import os

import uvicorn

from fake_upstream import OFFLINE_KODIK_TOKEN, OFFLINE_PORT, server


def main() -> None:
    parser = argparse.ArgumentParser(description="Local Shikimori + Kodik upstream")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("INGEST_UPSTREAM_PORT", OFFLINE_PORT)),
    )
    parser.add_argument(
        "--titles", type=int, default=None, help="synthetic titles instead of the bundled fixture"
    )
    parser.add_argument(
        "--catalog",
        choices=["bundled", "real"],
        default="bundled",
        help="real: titles from bangumi-data (`make titles`), else the bundled made-up ones",
    )
    parser.add_argument(
        "--no-limits", action="store_true", help="turn the 5/s and 90/min limits off"
    )
    parser.add_argument("--per-second", type=int, default=5)
    parser.add_argument("--per-minute", type=int, default=90)
    parser.add_argument(
        "--window-scale", type=float, default=1.0, help="shrink both windows (tests)"
    )
    parser.add_argument(
        "--token", default=os.environ.get("KODIK_TOKEN") or OFFLINE_KODIK_TOKEN
    )
    parser.add_argument("--delay", type=float, default=0.0, help="seconds added to every answer")
    args = parser.parse_args()
    limits = server.Limits(
        enabled=not args.no_limits,
        per_second=args.per_second,
        per_minute=args.per_minute,
        window_scale=args.window_scale,
    )
    app = server.create_app(titles=args.titles, catalog=args.catalog, token=args.token, limits=limits, delay=args.delay)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
