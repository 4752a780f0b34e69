"""Search benchmark on real titles (issue 10): catalogs of 20,000, 100,000 and 1,000,000 titles
named from bangumi-data (`make titles`; ops.bench.catalog.real_rows: the ~7,700 real titles, then
derived seasons, films, OVAs, specials and parts), each built with COPY and timed, then driven
through PostgREST with wrk (ops.bench.api's runner: per-process CPU, payload).

Scenarios per catalog size:
- "search": what people type, mixed in equal parts: a whole name (any script), its first 5
  characters, 3 letters from inside it, and the name with two letters swapped; one client (p50/p95);
  then each of the four alone ("search: name", "search: prefix", "search: piece", "search: typo")
- "search" at 50 connections (searches/s), at 20k only (--many-at)
- "q=an limit=20" and "q=an limit=1000": a two-letter query, one page of 20 vs 1,000 rows
- "title page": a title with its episodes and their sources (and related titles when the API has
  them) in one request, at 50 connections, at 20k only (12 episodes x 2 sources each)

Usage: python -m ops.bench.search [--sizes 20000,100000,1000000] [--duration 10] [--keep] [--reuse]
Targets (2 shared cores): search p95 < 15 ms at 100k and < 50 ms at 1M (one client); >= 1,000
searches/s at 50 clients on 20k.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

import psycopg

from auth_service import keys
from database import build as db
from ops import services
from ops.bench import catalog
from ops.bench.api import run_wrk

# what the title page shows beside the title: episodes and the players of each, per translation
TITLE_PAGE_SEED = """
insert into data.translations (id, title, type)
values (610, 'AniLibria.TV', 'voice'), (1291, 'Crunchyroll', 'subtitles') on conflict do nothing;
insert into data.episodes (anime_id, number, title, aired_at)
select a.id, n, 'Episode ' || n, now() - (13 - n) * interval '7 days'
  from data.anime a, generate_series(1, 12) n;
insert into data.episode_sources (episode_id, translation_id, quality, player_url)
select e.id, t.id, 'WEB-DLRip 720p', 'https://kodik.info/seria/' || md5(e.id::text || t.id) || '/720p'
  from data.episodes e, data.translations t;
"""
TITLE_PAGE = "/anime?id=eq.{anime}&select=*,episodes(*,episode_sources(*)){related}"


def build(dbname: str, titles: int, title_page: bool, chunk: int | None = 100_000) -> dict[str, Any]:
    """A fresh database with ``titles`` real-named titles; returns how long each step took."""
    db.drop_database(dbname)
    db.ensure_roles()
    db.ensure_database(dbname)
    db.migrate(dbname)
    timings: dict[str, Any] = {"titles": titles}
    started = time.monotonic()
    with psycopg.connect(db.role_url(dbname, "kitsu_owner")) as conn:
        # COPY through data.anime's search triggers, 100,000 rows a statement
        catalog.load(conn, titles, real=True, chunk=chunk)
    timings["copy_s"] = round(time.monotonic() - started, 1)
    step = time.monotonic()
    with psycopg.connect(db.role_url(dbname, "ingest_worker")) as conn:
        # what the worker's hourly search_words task does: count the titles of each word
        conn.execute("select ingest.refresh_search_words()")
    timings["words_s"] = round(time.monotonic() - step, 1)
    if title_page:
        step = time.monotonic()
        with psycopg.connect(db.role_url(dbname, "kitsu_owner")) as conn:
            conn.execute(TITLE_PAGE_SEED)
        timings["episodes_s"] = round(time.monotonic() - step, 1)
    step = time.monotonic()
    with psycopg.connect(db.role_url(dbname, "kitsu_owner"), autocommit=True) as conn:
        conn.execute("vacuum analyze")
        timings["database_mb"] = round(conn.execute("select pg_database_size(current_database())").fetchone()[0]
                                       / 2**20)
    timings["vacuum_s"] = round(time.monotonic() - step, 1)
    timings["build_s"] = round(time.monotonic() - started, 1)
    return timings


SHAPES = ("name", "prefix", "piece", "typo")


def typed(name: str, rng: random.Random, shape: str) -> str:
    """What a person types looking for ``name``: all of it, its first 5 characters, 3 letters from
    inside it, or it with two neighbouring letters swapped (the whole name when it is too short)."""
    if shape == "prefix" and len(name) > 5:
        return name[:5]
    if shape == "piece" and len(name) > 4:
        start = rng.randrange(len(name) - 3)
        if len(name[start:start + 3].strip()) >= 2:
            return name[start:start + 3]
    if shape == "typo" and len(name) >= 7:
        i = rng.randrange(1, len(name) - 2)
        return name[:i] + name[i + 1] + name[i] + name[i + 2:]
    return name


def request_files(dbname: str, directory: Path, related: str) -> dict[str, Path]:
    rng = random.Random(10)
    with psycopg.connect(db.role_url(dbname, "kitsu_owner")) as conn:
        names = [n for row in conn.execute(
            "select title, title_en, title_ru, title_original from data.anime order by random() limit 5000")
                 for n in row if n and len(n.strip()) >= 2]
        titles = [row[0] for row in conn.execute("select id from data.anime order by random() limit 5000")]
    def searches(shapes: tuple[str, ...]) -> list[str]:
        return [f"/rpc/search_anime?q={urllib.parse.quote(typed(rng.choice(names), rng, rng.choice(shapes)))}"
                "&limit=20" for _ in range(20_000)]

    files = {
        "search": searches(SHAPES),
        **{f"search: {shape}": searches((shape,)) for shape in SHAPES},
        "q=an limit=20": ["/rpc/search_anime?q=an&limit=20"],
        "q=an limit=1000": ["/rpc/search_anime?q=an&limit=1000"],
        "title page": [TITLE_PAGE.format(anime=t, related=related) for t in titles],
    }
    paths = {}
    for scenario, lines in files.items():
        path = directory / (scenario.replace(" ", "_").replace("=", "").replace(":", "") + ".tsv")
        path.write_text("".join(line + "\t\n" for line in lines))
        paths[scenario] = path
    return paths


def related_embed(dbname: str) -> str:
    """",related(*)" when the API has a related-titles resource (issue 10's other half), else ""."""
    with psycopg.connect(db.role_url(dbname, "kitsu_owner")) as conn:
        row = conn.execute("select viewname from pg_views where schemaname = 'api' and viewname like '%related%'"
                           " order by viewname limit 1").fetchone()
    return f",{row[0]}(*)" if row else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="20000,100000,1000000")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--pool", type=int, default=20, help="PostgREST db-pool")
    parser.add_argument("--many-at", type=int, default=20_000,
                        help="catalog size of the 50-connection runs and the title page")
    parser.add_argument("--keep", action="store_true", help="keep the bench databases")
    parser.add_argument("--reuse", action="store_true", help="reuse kept bench databases")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (Debian package wrk)")
    if not catalog.real_available():
        raise SystemExit("bangumi-data is not installed: run `make titles` (npm)")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    jwks = keys.jwks_json({"bench": keys.generate_private_pem()})
    results, builds = [], []
    for size in (int(s) for s in args.sizes.split(",")):
        first = size == args.many_at  # the 50-connection runs and the title page: on one size
        dbname = f"kitsu_bench_search_{size}"
        if not (args.reuse and db.database_exists(dbname)):
            builds.append(build(dbname, size, title_page=first))
            print(json.dumps({"build": builds[-1]}), flush=True)
        postgrest = services.postgrest(dbname, jwks_json=jwks, pool=args.pool).start().wait_ready()
        assert postgrest.url
        try:
            with tempfile.TemporaryDirectory() as tmp:
                files = request_files(dbname, Path(tmp), related_embed(dbname))
                runs = [("search", 1), *((f"search: {shape}", 1) for shape in SHAPES),
                        ("q=an limit=20", 1), ("q=an limit=1000", 1)]
                if first:
                    runs += [("search", 50), ("title page", 50)]
                for scenario, connections in runs:
                    figures = run_wrk(postgrest.url, files[scenario], connections, args.duration)
                    figures.update(size=size, scenario=scenario, connections=connections,
                                   load=os.getloadavg()[0])
                    results.append(figures)
                    print(json.dumps(figures), flush=True)
        finally:
            postgrest.stop()
            if not args.keep:
                db.drop_database(dbname)

    print(f"\nwrk {args.duration}s per run, 2 threads, PostgREST db-pool={args.pool}, {os.cpu_count()} cores shared "
          "by wrk, PostgREST and PostgreSQL; titles from bangumi-data (real, then derived variants)")
    for b in builds:
        print(f"build {b['titles']:>9,} titles: COPY {b['copy_s']} s, word counts {b['words_s']} s, "
              f"episodes {b.get('episodes_s', '-')} s, "
              f"vacuum analyze {b['vacuum_s']} s, total {b['build_s']} s, database {b['database_mb']} MB")
    print(f"{'titles':>9} {'scenario':<16} {'conns':>5} {'req/s':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
          f"{'errors':>6} {'KiB/resp':>8} {'load1':>5}  cores (postgrest/postgres/wrk)")
    for r in results:
        errors = sum(r[k] for k in r if k.startswith("errors_"))
        cores = r["cores"]
        print(f"{r['size']:>9,} {r['scenario']:<16} {r['connections']:>5} {r['rps']:>8.0f} {r['p50_ms']:>7.1f} "
              f"{r['p95_ms']:>7.1f} {r['p99_ms']:>7.1f} {errors:>6} {r['bytes'] / max(r['requests'], 1) / 1024:>8.1f} "
              f"{r['load']:>5.2f}  {cores['postgrest']}/{cores['postgres']}/{cores['wrk']}")


if __name__ == "__main__":
    main()
