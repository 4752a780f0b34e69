"""Deterministic catalog data for the local upstream.

``generate(n)`` makes n titles in Shikimori's GraphQL shape (camelCase, dates as objects,
`english`/`japanese` one-element arrays that may hold null, episodes 0 = unknown, times in
+03:00). The bundled ``data/animes.json`` (a few hundred titles) was written by
``python -m fake_upstream.fixtures`` and is what `make run` serves; the synthetic mode of the
server (``--titles N``) calls ``generate(N)`` directly. Kodik results are derived from a title
(``kodik_results``): one result per translation, as Kodik sends them.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from fake_upstream import real_titles

DATA = Path(__file__).resolve().parent / "data" / "animes.json"
MSK = timezone(timedelta(hours=3))
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)

SYLLABLES = [
    "ka",
    "ki",
    "ku",
    "ke",
    "ko",
    "sa",
    "shi",
    "su",
    "se",
    "so",
    "ta",
    "chi",
    "tsu",
    "te",
    "to",
    "na",
    "ni",
    "nu",
    "ne",
    "no",
    "ha",
    "hi",
    "fu",
    "he",
    "ho",
    "ma",
    "mi",
    "mu",
    "me",
    "mo",
    "ya",
    "yu",
    "yo",
    "ra",
    "ri",
    "ru",
    "re",
    "ro",
    "wa",
    "n",
    "ga",
    "gi",
    "go",
    "za",
    "ji",
    "da",
    "ba",
]
RU = [
    "Ко",
    "Са",
    "Ми",
    "Хи",
    "То",
    "На",
    "Ри",
    "Ю",
    "Ка",
    "Мо",
    "Се",
    "Те",
    "Ну",
    "Ва",
    "Ро",
    "Да",
    "Ба",
    "Ги",
]
KANA = "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワン"
WORDS = [
    "Sword",
    "Sky",
    "Heart",
    "Academy",
    "Chronicle",
    "Dream",
    "Star",
    "Shadow",
    "Garden",
    "Beyond",
    "Legend",
    "Summer",
    "Ghost",
    "Blade",
    "Melody",
    "Journey",
    "Tale",
    "Spirit",
    "Dragon",
    "Sea",
]
GENRES = [
    (1, "Action", "Экшен"),
    (2, "Adventure", "Приключения"),
    (4, "Comedy", "Комедия"),
    (8, "Drama", "Драма"),
    (10, "Fantasy", "Фэнтези"),
    (22, "Romance", "Романтика"),
    (24, "Sci-Fi", "Фантастика"),
    (36, "Slice of Life", "Повседневность"),
    (37, "Supernatural", "Сверхъестественное"),
    (7, "Mystery", "Детектив"),
    (30, "Sports", "Спорт"),
    (19, "Music", "Музыка"),
]
KINDS = ["tv"] * 8 + ["movie"] * 3 + ["ova"] * 2 + ["ona"] * 2 + ["special", "tv_special", "music"]
RATINGS = ["g", "pg", "pg_13", "pg_13", "pg_13", "r", "r_plus", "none"]
SEASONS = {
    12: "winter",
    1: "winter",
    2: "winter",
    3: "spring",
    4: "spring",
    5: "spring",
    6: "summer",
    7: "summer",
    8: "summer",
    9: "fall",
    10: "fall",
    11: "fall",
}
TRANSLATIONS = [
    (610, "AniLibria.TV", "voice"),
    (609, "AniDUB", "voice"),
    (767, "SHIZA Project", "voice"),
    (1978, "Dream Cast", "voice"),
    (1291, "Crunchyroll.Subtitles", "subtitles"),
    (869, "Субтитры", "subtitles"),
]
QUALITIES = ["BDRip 720p", "WEB-DLRip 720p", "HDTVRip 720p", "BDRip 1080p"]


def _word(rng: random.Random, parts: int) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(parts)).capitalize()


def _date_obj(value: date | None) -> dict[str, Any]:
    if value is None:
        return {"year": None, "month": None, "day": None, "date": None}
    return {"year": value.year, "month": value.month, "day": value.day, "date": value.isoformat()}


def msk(moment: datetime) -> str:
    return moment.astimezone(MSK).isoformat(timespec="milliseconds")


def make_title(i: int, rng: random.Random, real: dict[str, Any] | None = None) -> dict[str, Any]:
    """A title in Shikimori's GraphQL shape; with ``real`` (a fake_upstream.real_titles row) its
    id, names, kind and first air date are that title's and the rest is made up as for any other
    (the same random draws, so synthetic titles do not change)."""
    anime_id = real["mal_id"] if real else 1 + i * 3 + (i * 7) % 3
    name = f"{_word(rng, rng.randint(2, 3))} no {_word(rng, rng.randint(2, 4))}"
    if rng.random() < 0.3:
        name += f" {rng.choice(WORDS)}"
    english = f"{rng.choice(WORDS)} {rng.choice(WORDS)}" if rng.random() < 0.7 else None
    japanese = (
        "".join(rng.choice(KANA) for _ in range(rng.randint(3, 8))) if rng.random() < 0.85 else None
    )
    kind = rng.choice(KINDS)
    roll = rng.random()
    start = date(1995, 1, 1) + timedelta(days=rng.randint(0, 31 * 365 - 1))
    if real:
        name, english, japanese = real["title"], real["english"], real["japanese"]
        kind, start = real["kind"], real["begin"] or start
        if start < EPOCH.date() - timedelta(days=365):
            roll = 0.0  # a title that began over a year ago has finished airing
    status = "released" if roll < 0.7 else "ongoing" if roll < 0.85 else "anons"
    episodes = 1 if kind in ("movie", "music") else rng.choice([12, 13, 24, 25, 26, 50, 0])
    aired_on: date | None = start
    released_on: date | None = None
    next_episode_at = None
    if status == "released":
        episodes = episodes or 12
        aired = episodes
        released_on = start + timedelta(weeks=max(aired - 1, 0))
    elif status == "ongoing":
        aired = rng.randint(1, max(episodes - 1, 1)) if episodes else rng.randint(1, 40)
        aired_on = EPOCH.date() - timedelta(weeks=aired)
        next_episode_at = msk(EPOCH + timedelta(days=rng.randint(1, 7), hours=rng.randint(0, 23)))
    else:
        aired = 0
        aired_on = (
            None if rng.random() < 0.5 else EPOCH.date() + timedelta(days=rng.randint(10, 200))
        )
        if aired_on is not None and rng.random() < 0.5:
            next_episode_at = msk(
                datetime.combine(aired_on, datetime.min.time(), MSK) + timedelta(hours=20)
            )
        episodes = episodes if rng.random() < 0.5 else 0
    season = f"{SEASONS[aired_on.month]}_{aired_on.year}" if aired_on else None
    genres = sorted(rng.sample(GENRES, rng.randint(1, 3)))
    title = {
        "id": str(anime_id),
        "malId": str(anime_id),
        "name": name,
        "russian": f"{rng.choice(RU)}{rng.choice(RU).lower()} "
        f"{rng.choice(RU)}{rng.choice(RU).lower()}"
        if rng.random() < 0.9
        else None,
        "english": [english],
        "japanese": [japanese],
        "synonyms": [f"{name.split()[0]} {rng.randint(1, 3)}"] * rng.randint(0, 1)
        + ([english.upper()] if english and rng.random() < 0.2 else []),
        "kind": kind,
        "status": status,
        "rating": rng.choice(RATINGS),
        "episodes": episodes,
        "episodesAired": aired,
        "score": round(rng.uniform(5.0, 9.3), 2) if status != "anons" else 0.0,
        "season": season,
        "airedOn": _date_obj(aired_on),
        "releasedOn": _date_obj(released_on),
        "nextEpisodeAt": next_episode_at,
        "genres": [
            {"id": str(g[0]), "name": g[1], "russian": g[2], "kind": "genre"} for g in genres
        ],
        "description": f"{name}: {rng.choice(WORDS).lower()} and {rng.choice(WORDS).lower()}, "
        f"a story #{anime_id}.",
        "updatedAt": msk(EPOCH - timedelta(minutes=anime_id)),
    }
    if real:
        title.update(russian=real["russian"], synonyms=real["synonyms"], generated=real["generated"],
                     description=f"{name}. Names from {real_titles.describe()}; "
                     f"generated here: {', '.join(real['generated'])} title.")
    return title


def generate(n: int, seed: int = 20260101) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [make_title(i, rng) for i in range(n)]


def real(n: int | None = None, seed: int = 20260101) -> list[dict[str, Any]]:
    """The ``n`` best-known real titles (all when None) of bangumi-data (fake_upstream.real_titles)."""
    rng = random.Random(seed)
    return [make_title(i, rng, row) for i, row in enumerate(real_titles.titles()[:n])]


def load(titles: int | None = None, catalog: str = "bundled") -> list[dict[str, Any]]:
    """``titles`` synthetic titles; or the catalog: "bundled" (data/animes.json, 300 made-up
    titles) or "real" (the first 300 real ones, or ``titles`` of them, when `make titles` has
    installed bangumi-data; else the bundled fixture, saying so)."""
    if catalog == "real":
        if real_titles.available():
            return real(titles or 300)
        print("fake_upstream: bangumi-data is not installed (`make titles`); serving the bundled catalog",
              file=sys.stderr, flush=True)
    if titles is not None:
        return generate(titles)
    return json.loads(DATA.read_text())


def _hash(*parts: object) -> str:
    return hashlib.sha1(":".join(map(str, parts)).encode()).hexdigest()[:32]


def kodik_results(anime: dict[str, Any]) -> list[dict[str, Any]]:
    """Kodik results for one title: one per translation (none for announcements)."""
    anime_id = int(anime["id"])
    if anime["status"] == "anons" or anime_id % 10 == 3:
        return []
    rng = random.Random(anime_id)
    serial = anime["kind"] not in ("movie", "music")
    aired = max(int(anime["episodesAired"] or 0), 1)
    results = []
    for tid, title, ttype in rng.sample(TRANSLATIONS, rng.randint(1, 3)):
        kodik_id = f"{'serial' if serial else 'movie'}-{anime_id * 10 + tid % 7}{tid}"
        num = kodik_id.split("-")[1]
        link = f"//kodik.info/{'serial' if serial else 'video'}/{num}/{_hash(kodik_id)}/720p"
        updated = EPOCH - timedelta(seconds=anime_id * 37 + tid)
        result: dict[str, Any] = {
            "id": kodik_id,
            "type": "anime-serial" if serial else "anime",
            "link": link,
            "title": anime["russian"] or anime["name"],
            "title_orig": anime["name"],
            "other_title": " / ".join(anime["synonyms"]),
            "translation": {"id": tid, "title": title, "type": ttype},
            "year": anime["airedOn"]["year"],
            "kinopoisk_id": str(1000000 + anime_id),
            "imdb_id": f"tt{9000000 + anime_id}",
            "shikimori_id": str(anime_id),
            "quality": rng.choice(QUALITIES),
            "camrip": False,
            "lgbt": False,
            "blocked_countries": [],
            "created_at": (updated - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "updated_at": updated.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "screenshots": [],
        }
        if serial:
            episodes = {
                str(n): f"//kodik.info/seria/{num}{n:03d}/{_hash(kodik_id, n)}/720p"
                for n in range(1, aired + 1)
            }
            result.update(
                {
                    "last_season": 1,
                    "last_episode": aired,
                    "episodes_count": aired,
                    "seasons": {"1": {"link": link, "episodes": episodes}},
                }
            )
        results.append(result)
    return results


if __name__ == "__main__":
    DATA.parent.mkdir(parents=True, exist_ok=True)
    DATA.write_text(json.dumps(generate(300), ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"wrote {DATA} ({DATA.stat().st_size} bytes)")
