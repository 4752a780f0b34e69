"""PostgREST benchmark: seeds a realistic catalog of 20,000 titles (ops.bench.catalog: romaji,
English, Russian and Japanese names) and 1,000 people with 50 favorites and 10 progress rows
each, then drives wrk against each scenario at each connection count. Prints one table.

Scenarios: favorites+anime, continue_watching, anime page (issue 2); search (a random 3-letter
substring of a real title, limit 20) and catalog page (list card columns, random offset up to
19,980) (issue 7); title page (issue 10: a title with its 12 episodes, their 24 players and its 4
related titles in one request, on 2,000 titles seeded with them); "favorites|search" runs
favorites at 10 connections while another wrk searches at 50, to show what searching costs the signed-in pages.

"catalog home" (the 5 top-rated pages) shows the gateway's micro-cache; --targets direct,gateway,
gateway-nocache runs every scenario against PostgREST and through nginx (issue 9).

Usage: python -m ops.bench.api [--duration 15] [--connections 50,500] [--scenarios a,b] [--keep]
       [--targets direct,gateway,gateway-nocache] [--db kitsu_bench]
Targets on the 2-core machine: p95 < 100 ms at 50 connections, zero errors at 500; search and
catalog pages >= 1,000/s at 50 with p95 < 50 ms and >= 2x the favorites pages/s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt

from auth_service import keys
from database import build as db
from ops import launch, services
from ops.bench import catalog
from ops.bench.cpu import cores_between, cores_used, cpu_by_pid, cpu_seconds

BENCH_DB = "kitsu_bench"
PROCESSES = ("postgrest", "postgres", "nginx")  # whose CPU a run reports
HERE = Path(__file__).resolve().parent
TITLES, PEOPLE, FAVORITES, PROGRESS = 20_000, 1_000, 50, 10

# the catalog itself comes from ops.bench.catalog; these give it genres, episodes and people
SEED = f"""
insert into data.genres (id, name, name_ru) values (1, 'Action', 'Экшен'), (2, 'Adventure', 'Приключения'),
  (4, 'Comedy', 'Комедия'), (8, 'Drama', 'Драма'), (10, 'Fantasy', 'Фэнтези'), (22, 'Romance', 'Романтика');
insert into data.anime_genres (anime_id, genre_id)
select a.id, g.id from data.anime a join data.genres g on abs(hashtext(a.id::text || g.id)) % 3 = 0;
insert into data.episodes (anime_id, number, title)
select a.id, n, 'Episode ' || n from data.anime a, generate_series(1, 3) n;
insert into data.users (email, password_hash)
select 'bench-' || i || '@example.test', '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA'
  from generate_series(1, {PEOPLE}) i;
insert into data.sessions (user_id, expires_at) select id, now() + interval '1 day' from data.users;
{catalog.library(TITLES, FAVORITES, PROGRESS)}
"""
# "title page" (issue 10): PAGE_TITLES titles get what a title page shows beside the title, as the
# offline upstream has it: 12 episodes (the 3 above and 9 more), 2 players each (one per
# translation), and 4 related titles (Shikimori relation kinds, to neighbouring titles). The other
# scenarios' titles are outside this set, so their pages are as before.
PAGE_TITLES = 2_000
TITLE_PAGE_SEED = f"""
create temporary table page_titles as
select a.id, a.shikimori_id, row_number() over (order by a.shikimori_id) as n from data.anime a;
delete from page_titles where n > {PAGE_TITLES} + 4;
insert into data.translations (id, title, type)
values (610, 'AniLibria.TV', 'voice'), (1291, 'Crunchyroll', 'subtitles') on conflict do nothing;
insert into data.episodes (anime_id, number, title)
select p.id, e, 'Episode ' || e from page_titles p, generate_series(4, 12) e where p.n <= {PAGE_TITLES};
insert into data.episode_sources (episode_id, translation_id, quality, player_url)
select e.id, t.id, 'WEB-DLRip 720p', 'https://kodik.info/seria/' || md5(e.id::text || t.id) || '/720p'
  from page_titles p join data.episodes e on e.anime_id = p.id, data.translations t
 where p.n <= {PAGE_TITLES} and t.id in (610, 1291);
insert into data.anime_relations (anime_id, related_shikimori_id, relation)
select p.id, o.shikimori_id, k.relation
  from page_titles p
  join (values (1, 'sequel'), (2, 'side_story'), (3, 'spin_off'), (4, 'summary')) k(step, relation) on true
  join page_titles o on o.n = p.n + k.step
 where p.n <= {PAGE_TITLES};
"""

CATALOG_PAGE = ("/anime?select=id,title,title_ru,title_original,kind,status,year,poster_url"
                "&order=updated_at.desc&limit=20&offset={offset}")
SCENARIOS = {
    # a page of 20 (of the person's 50), as the profile list shows it
    "favorites+anime": "/favorites?select=*,anime(*)&order=created_at.desc&limit=20",
    "continue_watching": "/continue_watching?select=*,anime(id,title,poster_url),episodes(id,number,title)"
                         "&order=last_watched_at.desc&limit=10",
    "anime page": "/anime?id=eq.{anime}&select=*,episodes(id,number,title)",
    # issue 10: the title page in one request (on the PAGE_TITLES titles)
    "title page": "/anime?id=eq.{page_anime}&select=*,episodes(*,episode_sources(*)),related(*)",
    "search": "/rpc/search_anime?q={q}&limit=20",
    "catalog page": CATALOG_PAGE,
    # the first pages everyone opens (top rated, 5 pages): what the gateway's micro-cache is for
    "catalog home": "/anime?select=id,title,title_ru,title_original,kind,status,year,poster_url"
                    "&order=score.desc.nullslast,id&limit=20&offset={home_offset}",
}
ANONYMOUS = {"anime page", "title page", "search", "catalog page", "catalog home"}
# where wrk sends the requests: PostgREST itself, or the nginx gateway (contract §10) in front of
# it with its anonymous micro-cache on (as deployed) or off (GATEWAY_CACHE_SECONDS=0)
TARGETS = ("direct", "gateway", "gateway-nocache")


def seed(dbname: str = BENCH_DB) -> None:
    db.drop_database(dbname)
    db.ensure_roles()
    db.ensure_database(dbname)
    db.migrate(dbname)
    import psycopg

    started = time.monotonic()
    with psycopg.connect(db.role_url(dbname, "kitsu_owner")) as conn:
        catalog.load(conn, TITLES, real=catalog.real_available())  # real names after `make titles`
        conn.execute(SEED)
        conn.execute(TITLE_PAGE_SEED)
    with psycopg.connect(db.role_url(dbname, "kitsu_owner"), autocommit=True) as conn:
        conn.execute("vacuum analyze")  # all-visible pages: index-only scans skip the heap
        counts = conn.execute(
            "select (select count(*) from data.anime), (select count(*) from data.users), "
            "(select count(*) from data.favorites), (select count(*) from data.watch_progress)").fetchone()
    names = "real (bangumi-data) and derived" if catalog.real_available() else "made-up (no `make titles`)"
    print(f"seeded {counts[0]} titles ({names} names), {counts[1]} people, {counts[2]} favorites, "
          f"{counts[3]} progress rows in {time.monotonic() - started:.1f}s")


def request_file(directory: Path, scenario: str, private_pem: str, dbname: str = BENCH_DB) -> Path:
    """One line per request: the scenario path and (for signed-in scenarios) a person's token."""
    import psycopg

    with psycopg.connect(db.role_url(dbname, "kitsu_owner")) as conn:
        sessions = conn.execute("select user_id, id from data.sessions").fetchall()
        page = "exists (select 1 from data.anime_relations r where r.anime_id = a.id)"
        titles = [row[0] for row in conn.execute(f"select id from data.anime a where not {page}")]
        page_titles = [row[0] for row in conn.execute(f"select id from data.anime a where {page}")]
        names = [n for row in conn.execute("select title, title_ru, title_en, title_original from data.anime")
                 for n in row if n]
    lines = []
    now = int(time.time())
    for user_id, sid in sessions * (10 if scenario in ANONYMOUS else 1):
        if scenario in ANONYMOUS:  # no token
            lines.append(SCENARIOS[scenario].format(anime=random.choice(titles),
                                                    page_anime=random.choice(page_titles or titles),
                                                    q=urllib.parse.quote(query_of(names)),
                                                    offset=random.randint(0, TITLES - 20),
                                                    home_offset=20 * random.randint(0, 4)) + "\t")
            continue
        token = jwt.encode({"sub": str(user_id), "sid": str(sid), "role": "web_user", "aud": "kitsu",
                            "iss": "kitsu-auth", "iat": now, "exp": now + 3600},
                           private_pem, algorithm="ES256", headers={"kid": "bench"})
        lines.append(SCENARIOS[scenario] + "\t" + token)
    path = directory / f"{scenario.replace(' ', '_').replace('+', '_')}.tsv"
    path.write_text("\n".join(lines) + "\n")
    return path


def query_of(names: list[str]) -> str:
    """What a person types: 3 consecutive letters of a real title (any of its names)."""
    while True:
        name = random.choice(names)
        start = random.randint(0, max(len(name) - 3, 0))
        if len(piece := name[start:start + 3]) == 3 and piece.isalpha():
            return piece


def wrk(url: str, requests: Path, connections: int, duration: int) -> subprocess.Popen[str]:
    base = urllib.parse.urlsplit(url)
    return subprocess.Popen(
        ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s",
         "-s", str(HERE / "wrk_report.lua"), f"{base.scheme}://{base.netloc}"],
        env={**os.environ, "KITSU_BENCH_REQUESTS": str(requests), "KITSU_BENCH_PREFIX": base.path.rstrip("/")},
        stdout=subprocess.PIPE, text=True)


def figures_of(process: subprocess.Popen[str]) -> dict[str, Any]:
    output, _ = process.communicate()
    if process.returncode:
        raise RuntimeError(f"wrk failed ({process.returncode})")
    return json.loads(output.strip().splitlines()[-1])


def run_wrk(url: str, requests: Path, connections: int, duration: int,
            background: Path | None = None, processes: tuple[str, ...] = PROCESSES,
            keep: Callable[[int, str], bool] | None = None) -> dict[str, Any]:
    """One wrk run; with ``background``, a second wrk drives those requests at 50 connections
    for the same time (its figures go under "background"); ``processes``: whose CPU is reported,
    ``keep``: which of their processes count (default: all of them)."""
    before = cpu_seconds(processes)
    before_by_pid = cpu_by_pid(processes) if keep else {}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    other = wrk(url, background, 50, duration) if background else None
    figures = figures_of(wrk(url, requests, connections, duration))
    if other:
        figures["background"] = figures_of(other)
    elapsed = time.monotonic() - started
    figures["cores"] = (cores_between(before_by_pid, cpu_by_pid(processes), elapsed, processes, keep) if keep
                        else cores_used(before, cpu_seconds(processes), elapsed))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk has exited: its CPU is a child's
    wrk_cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    figures["cores"]["wrk"] = round(wrk_cpu / elapsed, 2)
    return figures


def target_url(target: str, postgrest: services.Service, admin_port: int, tmp: Path,
               gateways: list[services.Service]) -> str:
    """The base URL of the API for ``target`` (starting the gateway it needs)."""
    assert postgrest.url
    if target == "direct":
        return postgrest.url
    if target not in TARGETS:
        raise SystemExit(f"unknown target {target!r}: one of {', '.join(TARGETS)}")
    # no auth_service in this benchmark: the gateway's /auth routes are not driven
    auth = services.Service("auth_service (not started)", [], {}, url=f"http://127.0.0.1:{services.free_port()}")
    gateway = launch.gateway_process(postgrest=postgrest, postgrest_admin=f"127.0.0.1:{admin_port}", auth=auth,
                                     run_dir=tmp / target, port=services.free_port(),
                                     env={"GATEWAY_CACHE_SECONDS": "0" if target == "gateway-nocache" else "5"})
    gateway.ready_url = f"{gateway.url}/rest/"
    gateways.append(gateway.start().wait_ready())
    return f"{gateway.url}/rest"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", default="50,500")
    parser.add_argument("--pool", type=int, default=20, help="PostgREST db-pool")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--scenarios", default=",".join([*SCENARIOS, "favorites+anime|search"]),
                        help="comma-separated subset; a|b runs a while b runs at 50 connections")
    parser.add_argument("--reuse", action="store_true", help="reuse a kept bench database")
    parser.add_argument("--targets", default="direct", help=f"comma-separated of {', '.join(TARGETS)}")
    parser.add_argument("--db", default=BENCH_DB, help="the bench database (dropped first, and after unless --keep)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (Debian package wrk)")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))

    if not (args.reuse and db.database_exists(args.db)):
        seed(args.db)
    private_pem = keys.generate_private_pem()
    admin_port = services.free_port()
    postgrest = services.postgrest(args.db, jwks_json=keys.jwks_json({"bench": private_pem}), pool=args.pool,
                                   admin_port=admin_port)
    postgrest.start().wait_ready()
    results = []
    gateways: list[services.Service] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            urls = {target: target_url(target, postgrest, admin_port, Path(tmp), gateways)
                    for target in args.targets.split(",")}
            for scenario in args.scenarios.split(","):
                main_scenario, _, background = scenario.partition("|")
                requests = request_file(Path(tmp), main_scenario, private_pem, args.db)
                other = request_file(Path(tmp), background, private_pem, args.db) if background else None
                for target, url in urls.items():
                    for connections in (int(c) for c in args.connections.split(",")):
                        figures = run_wrk(url, requests, connections, args.duration, other)
                        figures.update(scenario=scenario, connections=connections, target=target)
                        results.append(figures)
                        print(json.dumps(figures), flush=True)
    finally:
        for gateway in gateways:
            gateway.stop()
        postgrest.stop()
        if not args.keep:
            db.drop_database(args.db)

    print(f"\nwrk, {args.duration}s per run, 2 threads, PostgREST db-pool={args.pool}, "
          f"{os.cpu_count()} cores shared by wrk, PostgREST and PostgreSQL")
    print(f"{'scenario':<22} {'target':<15} {'conns':>5} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
          f"{'errors':>6} {'KiB/resp':>8}  cores (postgrest/postgres/nginx/wrk)")
    for r in results:
        errors = sum(r[k] for k in r if k.startswith("errors_"))
        per_response = r["bytes"] / max(r["requests"], 1) / 1024
        cores = r["cores"]
        print(f"{r['scenario']:<22} {r['target']:<15} {r['connections']:>5} {r['rps']:>8.0f} {r['p50_ms']:>8.1f} "
              f"{r['p95_ms']:>8.1f} {r['p99_ms']:>8.1f} {errors:>6} {per_response:>8.1f}  "
              f"{cores['postgrest']}/{cores['postgres']}/{cores['nginx']}/{cores['wrk']}")
        if b := r.get("background"):
            print(f"{'  (meanwhile: 50 conns)':<22} {'':<15} {'':>5} {b['rps']:>8.0f} {b['p50_ms']:>8.1f} "
                  f"{b['p95_ms']:>8.1f} {b['p99_ms']:>8.1f} {sum(b[k] for k in b if k.startswith('errors_')):>6}")
    by_scenario = {(r["scenario"], r["target"], r["connections"]): r["rps"] for r in results}
    for (scenario, target, connections), rps in by_scenario.items():
        base = by_scenario.get(("favorites+anime", target, connections))
        if scenario in ("search", "catalog page") and base:
            print(f"{scenario} ({target}) at {connections}: {rps / base:.1f}x the favorites pages/s")
        if target != "direct" and (direct := by_scenario.get((scenario, "direct", connections))):
            print(f"{scenario} at {connections} through the {target}: {rps / direct:.2f}x direct")


if __name__ == "__main__":
    main()
