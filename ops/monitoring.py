"""Prometheus for `make run` (contract §14): a configuration that scrapes every service this
run started, with the alert rules of ops/prometheus/rules.yml, and Debian's ``prometheus``
started on it when installed (``PROMETHEUS_PORT``, default 9090; its data in the run folder).

Scraped: auth_service ``/metrics`` (every uvicorn worker, multiprocess), each ingest worker's
``/metrics`` (its own counters and the database's figures, ingest/metrics.py), and PostgREST's
admin ``/ready``: 12.0.2 has no ``/metrics``, but its ``/ready`` answers 200 with an empty body
(a valid exposition with no samples) and 503 without its database, so ``up{job="postgrest"}``
is its readiness. compose uses ops/prometheus/compose.yml, the same jobs by service name.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from ops.services import Service

RULES = Path(__file__).with_name("prometheus") / "rules.yml"
SCRAPE_INTERVAL = "5s"  # a dev run: see changes quickly; compose scrapes every 15 s


def _host(url: str) -> str:
    return url.removeprefix("http://").removeprefix("https://").rstrip("/")


def config(*, auth: Sequence[str], workers: Sequence[str], postgrest_admin: Sequence[str],
           rules: Path = RULES, interval: str = SCRAPE_INTERVAL) -> str:
    """prometheus.yml (JSON is YAML) scraping the given base URLs."""
    jobs = [
        {"job_name": "auth_service", "metrics_path": "/metrics", "targets": auth},
        {"job_name": "ingest", "metrics_path": "/metrics", "targets": workers},
        {"job_name": "postgrest", "metrics_path": "/ready", "targets": postgrest_admin},
    ]
    document = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {"job_name": job["job_name"], "metrics_path": job["metrics_path"],
             "static_configs": [{"targets": [_host(url) for url in job["targets"]]}]}
            for job in jobs if job["targets"]
        ],
    }
    return json.dumps(document, indent=2) + "\n"


def prometheus_binary() -> str | None:
    return shutil.which("prometheus") or next((p for p in ("/usr/bin/prometheus",) if os.access(p, os.X_OK)), None)


def prometheus_process(config_text: str, *, run_dir: Path, port: int, log_path: Path | None = None) -> Service:
    """Prometheus on 127.0.0.1:``port`` with ``config_text``; ready_url is its /-/ready."""
    binary = prometheus_binary()
    if binary is None:
        raise FileNotFoundError("prometheus is not installed (Debian package prometheus)")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "prometheus.yml").write_text(config_text)
    argv = [binary, f"--config.file={run_dir / 'prometheus.yml'}", f"--storage.tsdb.path={run_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=2d"]
    url = f"http://127.0.0.1:{port}"
    return Service("prometheus", argv, {}, ready_url=f"{url}/-/ready", url=url, log_path=log_path)
