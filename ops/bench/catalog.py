"""A realistic catalog for benchmarks and search tests: titles built from the words real anime
titles are made of (romaji with and without macrons, English, Russian, kanji and kana), with
sequel suffixes, English and Russian names, originals and abbreviations as synonyms; or, with
``real``, real titles (bangumi-data, ``real_rows``) and variants derived from them.

Deterministic for a seed. ``rows(n)`` yields tuples in the column order of ``COLUMNS``;
``load(conn, n)`` copies them into data.anime as published titles (through the table's triggers,
so everything maintained beside a title is maintained here too).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from typing import Any

import psycopg

from fake_upstream import real_titles

ROMAJI = (
    "shingeki kyojin kimetsu yaiba boku hero akademia jujutsu kaisen sousou frieren tensei shitara "
    "suraimu datta ken kono subarashii sekai shukufuku owari seraph tokyo ghoul mahou shoujo madoka "
    "kaguya sama koi sensou yakusoku kanojo okarishimasu oshi bocchi kusuriya hitorigoto meshi kaijuu "
    "sono bisque shikkaku monogatari bakemonogatari steins gate geass hangyaku fullmetal gintama "
    "haikyuu kuroko basuke yowamushi ansatsu kyoushitsu nanatsu taizai exorcist shokugeki yahari ore "
    "seishun machigatteiru kimi nawa tenki suzume tojimari kaze tachinu chihiro kamikakushi hauru "
    "ugoku shiro mononoke hime tonari totoro majo takkyuubin hotaru haka ookami kodomo yuki toki "
    "kakeru natsu zakura hibike euphonium clannad kanon toradora nisekoi gotoubun hanayome horimiya "
    "tsuki kirei kaichou ouran koukou hataraku maou kyoukai kanata hyouka chuunibyou tamako nichijou "
    "shirobako yuru kyanpu isekai shokudou maoujou oyasumi danjon deai machigatte darou mushoku "
    "tensai ouji akachan kishi kuro shinigami kekkai sensen mob psycho hyakuman ichi yoru sora umi "
    "hikari kokoro yume tenshi akuma densetsu senki gakuen tantei shinsekai yori kami nomi zo shiru"
).split()
MACRONS = {"kyoukai": "kyōkai", "shoujo": "shōjo", "koukou": "kōkō", "toukyou": "tōkyō",
           "ouji": "ōji", "chuunibyou": "chūnibyō", "kaijuu": "kaijū", "kyoushitsu": "kyōshitsu",
           "hyouka": "hyōka", "ookami": "ōkami", "yuuki": "yūki", "shounen": "shōnen"}
PARTICLES = ["no", "wa", "ga", "to", "ni", "wo", "de", "mo"]
ENGLISH = (
    "attack titan demon slayer academia hero sorcery fight beyond journey end reincarnated slime "
    "blessing wonderful world promised neverland girlfriend spy family chainsaw man delicious dungeon "
    "apothecary diaries moon light night star sword art online fire force soul eater black clover "
    "blue lock recoil violet garden your name weathering spirited away moving castle princess "
    "neighbor girl time wolf children silent voice words second summer ghost shadow legend chronicle "
    "melody dream sky heart spirit dragon sea kingdom empire witch knight angel devil school club "
    "war love story tale hunter alchemist machine golden silver crimson eternal last first lost "
    "hidden secret sacred broken fallen rising endless frozen burning wandering"
).split()
RUSSIAN = (
    "атака титанов клинок рассекающий демонов моя геройская академия магическая битва провожающая "
    "последний путь перерождение слизь замечательный мир обещанный страна девушка час семья шпиона "
    "человек бензопила подземелье вкусностей монолог фармацевта твоё имя дитя погоды унесённые "
    "призраками ходячий замок принцесса сосед ведьмина служба доставки могила светлячков волчьи "
    "дети форма голоса сад изящных слов ёлка звезда ночь луна небо море сердце мечта легенда "
    "хроника тень призрак дракон королевство империя ведьма рыцарь ангел дьявол школа клуб война "
    "любовь история охотник алхимик золотой серебряный багровый вечный потерянный тайный священный "
    "падший бесконечный ледяной пылающий странствующий весна лето осень зима меч песня"
).split()
KANJI = ("進撃 巨人 鬼滅 刃 呪術 廻戦 葬送 魔法 少女 世界 物語 恋 戦争 君 名 天気 子 風 城 姫 月 星 夜 "
         "夏 空 海 桜 剣 神 龍 学園 探偵 天使 悪魔 伝説 戦記 心 夢 光 王子 騎士 魔王 勇者 異世界").split()
KANA = ("ノ の ナルト ワンピース ハイキュー スパイ ファミリー チェンソー マン ダンジョン メシ ボッチ ロック "
        "ラブ コメ ヒーロー アカデミア モンスター ゴースト シャドウ ドラゴン スター ナイト").split()
SEQUELS = [" 2nd Season", " Season 2", " Season 3", " 3rd Season", ": Kanketsu-hen", " Movie", " OVA",
           " Part 2", " (TV)", " Final Season", ": Shuushou", " Specials", " Zoku-hen", " Shin"]
RU_SEQUELS = [" 2", " 3", ": Финал", " (фильм)", " OVA", ": Часть 2", " — второй сезон"]
KINDS = ["tv"] * 8 + ["movie"] * 3 + ["ova"] * 2 + ["ona"] * 2 + ["special", "tv_special", "music"]
RATINGS = ["g", "pg", "pg_13", "pg_13", "pg_13", "r", "r_plus", "none"]
SEASONS = ["winter", "spring", "summer", "fall"]

COLUMNS = ("shikimori_id", "title", "title_ru", "title_en", "title_original", "synonyms", "kind",
           "status", "episodes_total", "episodes_aired", "score", "rating", "year", "season",
           "poster_url", "description", "state", "source", "title_ru_generated")


def _romaji(rng: random.Random) -> str:
    word = rng.choice(ROMAJI)
    if word in MACRONS and rng.random() < 0.4:
        word = MACRONS[word]
    return word


def _cap(words: list[str]) -> str:
    return " ".join(w if w in PARTICLES else w[:1].upper() + w[1:] for w in words)


def title_names(rng: random.Random) -> dict[str, Any]:
    """One title's names: romaji (or English) main title, English, Russian, original, synonyms."""
    shape = rng.random()
    if shape < 0.45:
        words = [_romaji(rng), rng.choice(PARTICLES), _romaji(rng)]
    elif shape < 0.7:
        words = [_romaji(rng) for _ in range(rng.randint(2, 3))]
    elif shape < 0.85:
        words = [_romaji(rng), rng.choice(PARTICLES), _romaji(rng), rng.choice(PARTICLES), _romaji(rng)]
    else:
        words = [rng.choice(ENGLISH) for _ in range(rng.randint(2, 3))]
    title = _cap(words)
    sequel = rng.random() < 0.3
    if sequel:
        title += rng.choice(SEQUELS)
    english = None
    if rng.random() < 0.7:
        english = _cap([rng.choice(ENGLISH) for _ in range(rng.randint(1, 3))])
        if rng.random() < 0.3:
            english = f"The {english} of {_cap([rng.choice(ENGLISH)])}"
        if rng.random() < 0.25:
            english += f": {_cap([rng.choice(ENGLISH) for _ in range(2)])}"
    russian = None
    if rng.random() < 0.9:
        russian = " ".join(rng.choice(RUSSIAN) for _ in range(rng.randint(1, 4))).capitalize()
        if sequel:
            russian += rng.choice(RU_SEQUELS)
    original = None
    if rng.random() < 0.85:
        parts = [rng.choice(KANJI if rng.random() < 0.6 else KANA) for _ in range(rng.randint(2, 4))]
        original = "の".join(parts) if rng.random() < 0.4 else "".join(parts)
    synonyms = []
    if rng.random() < 0.5:  # an abbreviation from the initials, as fans write it
        synonyms.append("".join(w[0] for w in title.split() if w[0].isalpha()).upper())
    if english and rng.random() < 0.2:
        synonyms.append(english.split(":")[0])
    return {"title": title, "title_ru": russian, "title_en": english, "title_original": original,
            "synonyms": synonyms}


def rows(n: int, seed: int = 20_000) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(seed)
    for i in range(1, n + 1):
        yield _row(i, i, title_names(rng), rng)


def _row(i: int, shikimori_id: int, names: dict[str, Any], rng: random.Random, kind: str | None = None,
         description: str | None = None) -> tuple[Any, ...]:
    """One title's row in COLUMNS order: its names, and the rest made up (the random draws in the
    same order as ever, so a seed still gives the same made-up catalog)."""
    kind = kind or rng.choice(KINDS)
    status = rng.choices(["released", "ongoing", "anons"], [70, 15, 15])[0]
    episodes = 1 if kind in ("movie", "music") else rng.choice([12, 13, 24, 25, 26, 50])
    aired = episodes if status == "released" else (0 if status == "anons" else rng.randint(1, episodes))
    score = round(rng.uniform(4.5, 9.3), 2) if status != "anons" else None
    return (shikimori_id, names["title"], names["title_ru"], names["title_en"], names["title_original"],
            names["synonyms"], kind, status, episodes, aired, score, rng.choice(RATINGS),
            rng.randint(1970, 2026), rng.choice(SEASONS), f"https://img.example/posters/{i}.jpg",
            description or f"{names['title']}: " + " ".join(rng.choice(ENGLISH) for _ in range(30)),
            "published", "parser", names["title_ru"] is not None and names.get("title_ru_generated", False))


# Derived titles past the real ones: what franchises really add (seasons, films, OVAs, specials,
# parts), numbered so that every name stays distinct. {t}: the base title in that script.
VARIANTS = [  # romaji, English, Japanese, Russian, kind
    ("{t} Season {n}", "{t} Season {n}", "{t} 第{n}期", "{t} {n} сезон", "tv"),
    ("{t} Movie {n}", "{t} the Movie {n}", "劇場版 {t} {n}", "{t} (фильм {n})", "movie"),
    ("{t} OVA {n}", "{t} OVA {n}", "{t} OVA {n}", "{t} OVA {n}", "ova"),
    ("{t} Specials {n}", "{t} Specials {n}", "{t} 特別編 {n}", "{t}: спецвыпуск {n}", "special"),
    ("{t}: Part {n}", "{t}: Part {n}", "{t} 第{n}部", "{t}: часть {n}", "tv"),
]
DERIVED_IDS = 10_000_000  # shikimori_id of derived titles: past every real id


def real_available() -> bool:
    return real_titles.available()


def real_rows(n: int, seed: int = 20_000) -> Iterator[tuple[Any, ...]]:
    """``n`` titles named from bangumi-data (fake_upstream.real_titles, `make titles`): every real
    title first (its MyAnimeList id as shikimori_id), then derived ones (VARIANTS of the real
    titles in turn). Each description says what is real and what was generated, and a generated
    Russian title is marked (data.anime.title_ru_generated)."""
    rng = random.Random(seed)
    base = real_titles.titles()
    source = real_titles.describe()
    for i in range(1, n + 1):
        title = base[(i - 1) % len(base)]
        variant = (i - 1) // len(base)  # 0: the real title itself
        if variant == 0:
            names = {"title": title["title"], "title_en": title["english"], "title_original": title["japanese"],
                     "title_ru": title["russian"], "synonyms": title["synonyms"],
                     "title_ru_generated": "russian" in title["generated"]}
            yield _row(i, title["mal_id"], names, rng, title["kind"],
                       f"{title['title']}. Names from {source}; generated: romaji, Russian title.")
            continue
        romaji, english, japanese, russian, kind = VARIANTS[(variant - 1) % len(VARIANTS)]
        number = (variant - 1) // len(VARIANTS) + 2
        names = {"title": romaji.format(t=title["title"], n=number),
                 "title_en": english.format(t=title["english"], n=number) if title["english"] else None,
                 "title_original": japanese.format(t=title["japanese"], n=number),
                 "title_ru": russian.format(t=title["russian"], n=number), "synonyms": [],
                 "title_ru_generated": "russian" in title["generated"]}
        yield _row(i, DERIVED_IDS + i, names, rng, kind,
                   f"{names['title']}. Derived for benchmarks from \"{title['title']}\" ({source}): "
                   f"not a real title; generated: romaji, Russian title.")


def load(conn: psycopg.Connection, n: int, seed: int = 20_000, real: bool = False,
         chunk: int | None = None) -> None:
    """Copy ``n`` titles into data.anime: made-up names, or with ``real`` those of real_rows. With
    ``chunk``, one COPY per that many rows: the search triggers run per statement, so each sees a
    bounded transition table instead of all of them at once."""
    source = (real_rows if real else rows)(n, seed)
    while batch := list(itertools.islice(source, chunk or n)):
        with conn.cursor().copy(f"copy data.anime ({', '.join(COLUMNS)}) from stdin") as copy:
            for row in batch:
                copy.write_row(row)


if __name__ == "__main__":
    for row in rows(12):
        print(row[1:6])


def library(titles: int, favorites: int, progress: int) -> str:
    """SQL giving every person ``favorites`` favorites and ``progress`` progress rows (on episode
    2 of each title), a window of consecutive titles per person; run it after the people, the
    titles and their episodes exist (ops.bench.api, ops.load.harness)."""
    return f"""
with numbered as (select id, row_number() over (order by id) as n from data.anime),
     people as (select id, row_number() over (order by id) as p from data.users)
insert into data.favorites (user_id, anime_id, list_status)
select people.id, numbered.id, 'watching'
  from people join numbered on numbered.n between (people.p * 7) % {titles - favorites} + 1
                                              and (people.p * 7) % {titles - favorites} + {favorites};
with numbered as (select id, row_number() over (order by id) as n from data.anime),
     people as (select id, row_number() over (order by id) as p from data.users)
insert into data.watch_progress (user_id, anime_id, episode_number, episode_id, position_seconds,
                                 progress_percent, last_watched_at)
select people.id, numbered.id, 2, e.id, 600, 42.5, now() - numbered.n * interval '1 minute'
  from people
  join numbered on numbered.n between (people.p * 7) % {titles - favorites} + 1
                                  and (people.p * 7) % {titles - favorites} + {progress}
  join data.episodes e on e.anime_id = numbered.id and e.number = 2;
"""
