"""A local upstream speaking Shikimori's and Kodik's formats and limits over HTTP.

Shikimori (docs/upstream-apis.md §1), at the root:
  POST /api/graphql        `animes(page, limit<=50, order, ids, status, kind)`; every field
                           the ingest client asks for is answered (selection sets are not
                           trimmed)
  GET  /api/animes         v1 list: `limit` clamped to 50, N+1 items when a next page exists
  GET  /api/animes/{id}    v1 profile
  GET  /api/calendar       next episodes of ongoing / announced titles
  rules: a User-Agent is required (403 without one or with a browser's), 5 requests/s and
  90/min per client IP in any sliding window (429 "Retry later" beyond), string `score` and
  relative image paths in v1, +03:00 timestamps.
Kodik (§2), under /kodik:
  GET|POST /kodik/list     keyset pagination: `next` = base64 JSON [updated_at ms, id],
                           `next_page` a full URL; `limit` clamped to 100
  GET|POST /kodik/search   by `shikimori_id` (comma list)
  rules: a bad or missing `token` answers {"error": "Отсутствует или неверный токен"}.
Control (tests, benchmark; not part of either API), under /_control: health, log, stats,
faults (inject 429 / 500 / delays), config (limits, delay, token), animes (edit titles).
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from fake_upstream import fixtures

KODIK_TOKEN_ERROR = "Отсутствует или неверный токен"


@dataclass
class Limits:
    enabled: bool = True
    per_second: int = 5
    per_minute: int = 90
    window_scale: float = 1.0  # tests shrink the windows (e.g. 0.1: 5 per 0.1 s, 90 per 6 s)


@dataclass
class Fault:
    target: str  # shikimori | kodik | any
    status: int = 500
    count: int = 1
    retry_after: float | None = None
    delay: float = 0.0


@dataclass
class State:
    animes: list[dict[str, Any]]
    token: str
    limits: Limits
    delay: float = 0.0
    faults: list[Fault] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)
    granted: dict[str, deque[float]] = field(default_factory=dict)
    by_id: dict[int, dict[str, Any]] = field(default_factory=dict)
    kodik: list[dict[str, Any]] = field(default_factory=list)

    def reindex(self) -> None:
        self.animes.sort(key=lambda a: int(a["id"]))
        self.by_id = {int(a["id"]): a for a in self.animes}
        self.kodik = [r for a in self.animes for r in fixtures.kodik_results(a)]
        self.kodik.sort(key=lambda r: (kodik_ms(r), r["id"]))


def kodik_ms(result: dict[str, Any]) -> int:
    moment = datetime.strptime(result["updated_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def client_ip(request: Request) -> str:
    """The socket peer, as the real upstreams key their limits: no proxy of ours sits in front of
    them, so a client's X-Forwarded-For would only let it dodge the limit."""
    return request.client.host if request.client else "?"


def over_limit(state: State, ip: str, now: float) -> float | None:
    """Sliding windows of accepted requests; None = accept (and record), else seconds to wait."""
    limits = state.limits
    if not limits.enabled:
        return None
    window_s, window_m = 1.0 * limits.window_scale, 60.0 * limits.window_scale
    times = state.granted.setdefault(ip, deque())
    while times and times[0] <= now - window_m:
        times.popleft()
    in_second = sum(1 for t in times if t > now - window_s)
    if in_second >= limits.per_second:
        return [t for t in times if t > now - window_s][-limits.per_second] + window_s - now
    if len(times) >= limits.per_minute:
        return times[-limits.per_minute] + window_m - now
    times.append(now)
    return None


def take_fault(state: State, target: str) -> Fault | None:
    for fault in state.faults:
        if fault.target in (target, "any") and fault.count > 0:
            fault.count -= 1
            if fault.count == 0:
                state.faults.remove(fault)
            return fault
    return None


async def gate(request: Request, target: str) -> Response | None:
    """UA, limits, injected faults and the request log, shared by every upstream route."""
    state: State = request.app.state.upstream
    now = time.monotonic()
    entry = {
        "t": now,
        "wall": time.time(),
        "target": target,
        "path": request.url.path,
        "status": 200,
    }
    state.log.append(entry)
    if target == "shikimori":
        agent = request.headers.get("user-agent", "")
        if not agent.strip() or agent.startswith("Mozilla/"):
            entry["status"] = 403
            return PlainTextResponse(
                "Forbidden: set a User-Agent naming your OAuth2 application", 403
            )
        wait = over_limit(state, client_ip(request), now)
        if wait is not None:
            entry["status"] = 429
            return PlainTextResponse("Retry later\n", 429)
    if state.delay:
        await asyncio.sleep(state.delay)
    fault = take_fault(state, target)
    if fault is not None:
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.status != 200:
            entry["status"] = fault.status
            headers = (
                {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            )
            body = "Retry later\n" if fault.status == 429 else "Internal Server Error\n"
            return PlainTextResponse(body, fault.status, headers=headers)
    return None


# --- Shikimori ---------------------------------------------------------------------------------


def rest_anime(anime: dict[str, Any]) -> dict[str, Any]:
    anime_id = int(anime["id"])
    stamp = 1470452690 + anime_id
    return {
        "id": anime_id,
        "name": anime["name"],
        "russian": anime["russian"],
        "image": {
            size: f"/system/animes/{size}/{anime_id}.jpg?{stamp}"
            for size in ("original", "preview", "x96", "x48")
        },
        "url": f"/animes/{anime_id}-{anime['name'].lower().replace(' ', '-')}",
        "kind": anime["kind"],
        "score": f"{anime['score']:.2f}",
        "status": anime["status"],
        "episodes": anime["episodes"],
        "episodes_aired": anime["episodesAired"],
        "aired_on": anime["airedOn"]["date"],
        "released_on": anime["releasedOn"]["date"],
    }


def rest_profile(anime: dict[str, Any]) -> dict[str, Any]:
    return {
        **rest_anime(anime),
        "rating": anime["rating"],
        "english": anime["english"],
        "japanese": anime["japanese"],
        "synonyms": anime["synonyms"],
        "description": anime["description"],
        "next_episode_at": anime["nextEpisodeAt"],
        "updated_at": anime["updatedAt"],
        "genres": [
            {
                "id": int(g["id"]),
                "name": g["name"],
                "russian": g["russian"],
                "kind": "genre",
                "entry_type": "Anime",
            }
            for g in anime["genres"]
        ],
    }


def graphql_anime(anime: dict[str, Any], base: str) -> dict[str, Any]:
    anime_id = int(anime["id"])
    poster = f"{base}/uploads/poster/animes/{anime_id}/original.svg"
    # `related` as the titles carry it (edit_animes sets it); none unless they do
    return {"related": [], **anime, "poster": {"originalUrl": poster, "mainUrl": poster}}


def select(
    state: State, *, ids: str | None, status: str | None, kind: str | None
) -> list[dict[str, Any]]:
    items = state.animes
    if ids:
        wanted = {int(x) for x in ids.split(",") if x.strip().isdigit()}
        items = [a for a in items if int(a["id"]) in wanted]
    if status:
        allowed = set(status.split(","))
        items = [a for a in items if a["status"] in allowed]
    if kind:
        allowed = set(kind.split(","))
        items = [a for a in items if a["kind"] in allowed]
    return items


def int_arg(value: Any, default: int) -> int:
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return default


def graphql_args(query: str, variables: dict[str, Any]) -> dict[str, Any] | None:
    start = query.find("animes(")
    if start < 0:
        return None
    end = query.find(")", start)
    args: dict[str, Any] = {}
    for part in query[start + len("animes(") : end].split(","):
        if ":" not in part:
            continue
        name, value = (s.strip() for s in part.split(":", 1))
        if value.startswith("$"):
            args[name] = variables.get(value[1:])
        else:
            args[name] = value.strip('"')
    return args


async def graphql(request: Request) -> Response:
    if (denied := await gate(request, "shikimori")) is not None:
        return denied
    state: State = request.app.state.upstream
    try:
        body = await request.json()
    except ValueError:
        return JSONResponse({"errors": [{"message": "invalid JSON body"}]}, 400)
    args = graphql_args(str(body.get("query", "")), body.get("variables") or {})
    if args is None:
        return JSONResponse(
            {"errors": [{"message": "only the `animes` query is served here"}]}, 200
        )
    page, limit = int_arg(args.get("page"), 1), min(int_arg(args.get("limit"), 2), 50)
    items = select(state, ids=args.get("ids"), status=args.get("status"), kind=args.get("kind"))
    base = str(request.base_url).rstrip("/")
    chunk = items[(page - 1) * limit : page * limit]
    return JSONResponse({"data": {"animes": [graphql_anime(a, base) for a in chunk]}})


async def animes(request: Request) -> Response:
    if (denied := await gate(request, "shikimori")) is not None:
        return denied
    state: State = request.app.state.upstream
    q = request.query_params
    page, limit = int_arg(q.get("page"), 1), min(int_arg(q.get("limit"), 50), 50)
    items = select(state, ids=q.get("ids"), status=q.get("status"), kind=q.get("kind"))
    # v1 pagination: limit + 1 items when a next page exists
    chunk = items[(page - 1) * limit : page * limit + 1]
    return JSONResponse([rest_anime(a) for a in chunk])


async def anime(request: Request) -> Response:
    if (denied := await gate(request, "shikimori")) is not None:
        return denied
    state: State = request.app.state.upstream
    found = state.by_id.get(int_arg(request.path_params["anime_id"], 0))
    if found is None:
        return JSONResponse({"message": "Страница не найдена", "code": 404}, 404)
    return JSONResponse(rest_profile(found))


async def calendar(request: Request) -> Response:
    if (denied := await gate(request, "shikimori")) is not None:
        return denied
    state: State = request.app.state.upstream
    return JSONResponse(
        [
            {
                "next_episode": a["episodesAired"] + 1,
                "next_episode_at": a["nextEpisodeAt"],
                "duration": 1440,
                "anime": rest_anime(a),
            }
            for a in state.animes
            if a["status"] in ("ongoing", "anons") and a["nextEpisodeAt"]
        ]
    )


async def poster(request: Request) -> Response:
    anime_id = request.path_params["anime_id"]
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="225" height="320">'
        '<rect width="100%" height="100%"'
        f' fill="#{int(anime_id) * 2654435761 % 0xFFFFFF:06x}"/><text x="20" y="160" font-size="28"'
        f' fill="#fff">#{anime_id}</text></svg>'
    )
    return Response(svg, media_type="image/svg+xml")


# --- Kodik -------------------------------------------------------------------------------------


def encode_cursor(result: dict[str, Any]) -> str:
    raw = json.dumps([kodik_ms(result), result["id"]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str] | None:
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return int(value[0]), str(value[1])
    except (ValueError, TypeError, IndexError):
        return None


def shape_result(result: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
    out = dict(result)
    if "seasons" in out:
        if params.get("with_episodes") == "true" or params.get("with_episodes_data") == "true":
            pass
        elif params.get("with_seasons") == "true":
            out["seasons"] = {k: {"link": v["link"]} for k, v in out["seasons"].items()}
        else:
            del out["seasons"]
    return out


async def kodik_params(request: Request) -> dict[str, str]:
    params = dict(request.query_params)
    if request.method == "POST":  # form-encoded, like Kodik's own clients send
        body = (await request.body()).decode("utf-8", "replace")
        params.update({k: v[-1] for k, v in parse_qs(body).items()})
    return params


def token_error(state: State, params: dict[str, str]) -> Response | None:
    if params.get("token") != state.token:
        return JSONResponse({"error": KODIK_TOKEN_ERROR}, 500)
    return None


async def kodik_list(request: Request) -> Response:
    if (denied := await gate(request, "kodik")) is not None:
        return denied
    state: State = request.app.state.upstream
    params = await kodik_params(request)
    if (bad := token_error(state, params)) is not None:
        return bad
    limit = min(int_arg(params.get("limit"), 50), 100)
    descending = params.get("order", "desc") != "asc"
    items = list(reversed(state.kodik)) if descending else state.kodik
    if params.get("types"):
        allowed = set(params["types"].split(","))
        items = [r for r in items if r["type"] in allowed]
    if params.get("next"):
        cursor = decode_cursor(params["next"])
        if cursor is None:
            return JSONResponse({"error": "Неверный параметр next"}, 500)
        key = cursor
        items = [
            r
            for r in items
            if ((kodik_ms(r), r["id"]) < key if descending else (kodik_ms(r), r["id"]) > key)
        ]
    page = items[:limit]
    next_page = None
    if len(items) > limit:
        query = {k: v for k, v in params.items() if k != "next"}
        query["next"] = encode_cursor(page[-1])
        next_page = f"{str(request.base_url).rstrip('/')}{request.url.path}?{urlencode(query)}"
    return JSONResponse(
        {
            "time": "3ms",
            "total": len(state.kodik),
            "prev_page": None,
            "next_page": next_page,
            "results": [shape_result(r, params) for r in page],
        }
    )


async def kodik_search(request: Request) -> Response:
    if (denied := await gate(request, "kodik")) is not None:
        return denied
    state: State = request.app.state.upstream
    params = await kodik_params(request)
    if (bad := token_error(state, params)) is not None:
        return bad
    limit = min(int_arg(params.get("limit"), 50), 100)
    wanted = {x.strip() for x in params.get("shikimori_id", "").split(",") if x.strip()}
    results = [r for r in state.kodik if r.get("shikimori_id") in wanted] if wanted else []
    return JSONResponse(
        {
            "time": "2ms",
            "total": len(results),
            "results": [shape_result(r, params) for r in results[:limit]],
        }
    )


# --- control -----------------------------------------------------------------------------------


async def health(request: Request) -> Response:
    state: State = request.app.state.upstream
    return JSONResponse(
        {"status": "ok", "titles": len(state.animes), "kodik_results": len(state.kodik)}
    )


def max_in_window(times: list[float], window: float) -> int:
    best, start = 0, 0
    for end in range(len(times)):
        while times[end] - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def stats(request: Request) -> Response:
    """The request log summarised: the most accepted Shikimori requests in any window."""
    state: State = request.app.state.upstream
    shiki = [e for e in state.log if e["target"] == "shikimori"]
    accepted = sorted(e["t"] for e in shiki if e["status"] != 429 and e["status"] != 403)
    scale = state.limits.window_scale
    return JSONResponse(
        {
            "requests": len(state.log),
            "shikimori_requests": len(shiki),
            "shikimori_accepted": len(accepted),
            "shikimori_429": sum(1 for e in shiki if e["status"] == 429),
            "max_per_second_window": max_in_window(accepted, 1.0 * scale),
            "max_per_minute_window": max_in_window(accepted, 60.0 * scale),
            "limits": state.limits.__dict__,
            "first": accepted[0] if accepted else None,
            "last": accepted[-1] if accepted else None,
        }
    )


async def log(request: Request) -> Response:
    return JSONResponse(request.app.state.upstream.log)


async def faults(request: Request) -> Response:
    state: State = request.app.state.upstream
    body = await request.json()
    for item in body if isinstance(body, list) else [body]:
        state.faults.append(Fault(**item))
    return JSONResponse({"faults": len(state.faults)})


async def config(request: Request) -> Response:
    state: State = request.app.state.upstream
    body = await request.json()
    if "delay" in body:
        state.delay = float(body["delay"])
    if "token" in body:
        state.token = str(body["token"])
    if "limits" in body:
        state.limits = Limits(**{**state.limits.__dict__, **body["limits"]})
        state.granted.clear()
    if body.get("clear_faults"):
        state.faults.clear()
    if body.get("reset_log"):
        state.log.clear()
        state.granted.clear()
    return JSONResponse({"delay": state.delay, "limits": state.limits.__dict__})


async def edit_animes(request: Request) -> Response:
    """Merge partial titles by id (new ids are added); Kodik results follow."""
    state: State = request.app.state.upstream
    for patch in await request.json():
        current = state.by_id.get(int(patch["id"]))
        if current is None:
            state.animes.append(patch)
        else:
            current.update(patch)
            current["updatedAt"] = fixtures.msk(datetime.now(UTC))
    state.reindex()
    return JSONResponse({"titles": len(state.animes)})


def create_app(
    *,
    titles: int | None = None,
    catalog: str = "bundled",
    token: str = "kitsu-offline-token",
    limits: Limits | None = None,
    delay: float = 0.0,
) -> Starlette:
    state = State(animes=fixtures.load(titles, catalog), token=token, limits=limits or Limits(), delay=delay)
    state.reindex()
    app = Starlette(
        routes=[
            Route("/api/graphql", graphql, methods=["POST"]),
            Route("/api/animes", animes),
            Route("/api/animes/{anime_id}", anime),
            Route("/api/calendar", calendar),
            Route("/uploads/poster/animes/{anime_id:int}/original.svg", poster),
            Route("/kodik/list", kodik_list, methods=["GET", "POST"]),
            Route("/kodik/search", kodik_search, methods=["GET", "POST"]),
            Route("/_control/health", health),
            Route("/_control/stats", stats),
            Route("/_control/log", log),
            Route("/_control/faults", faults, methods=["POST"]),
            Route("/_control/config", config, methods=["POST"]),
            Route("/_control/animes", edit_animes, methods=["POST"]),
        ]
    )
    app.state.upstream = state
    return app


def pages(titles: int, per_page: int = 50) -> int:
    return math.ceil(titles / per_page)
