"""Real anime titles from the npm package ``bangumi-data`` (CC-BY-4.0), for the offline upstream,
the benchmark catalogs and the search relevance tests.

`make titles` installs the pinned package into ``.cache/bangumi-data`` (git-ignored, never
committed; npm checks the tarball against the pinned integrity). This module reads its
``dist/data.json``: each item has the Japanese title (``title``), translations (``titleTranslate``:
``en``, ``ja``, ``zh-Hans``, ``zh-Hant``), a type, air dates and the ids of other sites, among them
MyAnimeList's, which is Shikimori's id too.

What the package lacks is made here and says so: the romaji title is a Hepburn transliteration of
the Japanese one (pykakasi's dictionary reading, so kanji readings can be off), and the Russian
title is a Polivanov transcription of that romaji, the way Russian sites write untranslated
Japanese names. Each title lists what was generated in ``generated`` (``["romaji", "russian"]``),
and the offline upstream and the benchmark catalogs carry that into the description.
The converted list is cached beside the package (``names-<version>.json``): pykakasi needs a few
seconds for all of them.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / ".cache" / "bangumi-data" / "node_modules" / "bangumi-data"
SOURCE = PACKAGE / "dist" / "data.json"
KINDS = {"tv": "tv", "movie": "movie", "ova": "ova", "web": "ona"}
PARTICLES = {"no", "wa", "ga", "to", "ni", "wo", "de", "mo", "e", "ya", "ka", "yo", "na",
             "но", "ва", "га", "то", "ни", "о", "дэ", "мо", "э", "я", "ка", "ё", "на"}
CONVERSION = 3  # bump when the conversion below changes: the cache file's name carries it


def available() -> bool:
    return SOURCE.is_file()


def version() -> str:
    return str(json.loads((PACKAGE / "package.json").read_text())["version"])


def describe() -> str:
    """Where the names came from, for a description or a log line."""
    return f"bangumi-data {version()} (CC-BY-4.0)"


@cache
def titles() -> list[dict[str, Any]]:
    """Every title of the package with a MyAnimeList id, first by how many sites list it (a
    stand-in for how well known it is), then by that id. Keys: mal_id, title (romaji), english,
    japanese, russian, synonyms, kind, begin (date or None), generated."""
    if not available():
        raise FileNotFoundError(f"{SOURCE} is missing: run `make titles` (installs bangumi-data with npm)")
    cached = PACKAGE.parent.parent / f"names-{version()}-{CONVERSION}.json"
    if cached.is_file():
        rows = json.loads(cached.read_text())
    else:
        rows = _convert(json.loads(SOURCE.read_text())["items"])
        partial = cached.with_suffix(f".{os.getpid()}.tmp")  # a reader never sees half a file
        partial.write_text(json.dumps(rows, ensure_ascii=False))
        partial.replace(cached)
    for row in rows:
        row["begin"] = date.fromisoformat(row["begin"]) if row["begin"] else None
    return rows


def _convert(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[int] = set()
    rows = []
    for item in items:
        mal = next((s["id"] for s in item["sites"] if s["site"] == "mal" and str(s.get("id", "")).isdigit()), None)
        if mal is None or int(mal) in seen or not item["title"].strip():
            continue
        seen.add(int(mal))
        japanese = unicodedata.normalize("NFKC", item["title"]).strip()
        translated = item.get("titleTranslate", {})
        english = [t for t in translated.get("en", []) if t.strip()]
        romaji, russian = readings(japanese)
        synonyms = [*english[1:], *translated.get("ja", []), *translated.get("zh-Hans", [])[:2]]
        rows.append({
            "mal_id": int(mal), "title": romaji, "english": english[0] if english else None,
            "japanese": japanese, "russian": russian,
            "synonyms": list(dict.fromkeys(s for s in synonyms if s not in (romaji, japanese))),
            "kind": KINDS.get(item["type"], "tv"), "begin": (item.get("begin") or "")[:10] or None,
            "sites": len(item["sites"]), "generated": ["romaji", "russian"],
        })
    rows.sort(key=lambda r: (-r["sites"], r["mal_id"]))
    return rows


@cache
def _kakasi() -> Any:
    import pykakasi  # a dev dependency: only the tooling converts titles

    return pykakasi.kakasi()


def readings(japanese: str) -> tuple[str, str]:
    """Hepburn romaji and its Russian (Polivanov) rendering of a Japanese title. Latin parts are kept
    as they are in both; words are capitalised except particles."""
    romaji, russian = [], []
    for token in _kakasi().convert(japanese):
        if token["orig"].isascii() or not token["hepburn"]:
            romaji.append(token["orig"])
            russian.append(token["orig"])
        else:
            romaji.append(token["hepburn"])
            russian.append(" ".join(to_cyrillic(word) for word in token["hepburn"].split()))
    return _tidy(romaji), _tidy(russian)


def _tidy(parts: list[str]) -> str:
    text = " ".join(parts).replace("・", " ")
    text = re.sub(r"\s+([!?,.:;)\]~])", r"\1", text)
    text = re.sub(r"([(\[])\s+", r"\1", text)
    words = re.sub(r"\s+", " ", text).strip().split(" ")
    return " ".join(w if not w.islower() or (i and w in PARTICLES) else w[:1].upper() + w[1:]
                    for i, w in enumerate(words))


# Polivanov: Hepburn syllables to Cyrillic (shi = си, tsu = цу, ji = дзи, e = э after consonants)
_SYLLABLES = {
    "kya": "кя", "kyu": "кю", "kyo": "кё", "sha": "ся", "shu": "сю", "sho": "сё", "she": "сэ", "shi": "си",
    "chi": "ти", "cha": "тя", "chu": "тю", "cho": "тё", "che": "тэ", "tsu": "цу", "nya": "ня", "nyu": "ню",
    "nyo": "нё", "hya": "хя", "hyu": "хю", "hyo": "хё", "mya": "мя", "myu": "мю", "myo": "мё", "rya": "ря",
    "ryu": "рю", "ryo": "рё", "gya": "гя", "gyu": "гю", "gyo": "гё", "bya": "бя", "byu": "бю", "byo": "бё",
    "pya": "пя", "pyu": "пю", "pyo": "пё", "ja": "дзя", "ju": "дзю", "jo": "дзё", "je": "дзэ", "ji": "дзи",
    "ya": "я", "yu": "ю", "yo": "ё", "ye": "э", "wo": "о", "fu": "фу",
}
_CONSONANTS = {"k": "к", "s": "с", "t": "т", "n": "н", "h": "х", "m": "м", "r": "р", "g": "г", "d": "д",
               "b": "б", "p": "п", "w": "в", "z": "дз", "f": "ф", "v": "в", "l": "р", "j": "дз", "c": "т",
               "y": "й"}
_VOWELS = {"a": "а", "i": "и", "u": "у", "e": "э", "o": "о"}


def to_cyrillic(word: str) -> str:
    """One Hepburn word in Cyrillic (Polivanov); characters that are not romaji are kept."""
    lower, out, i = word.lower(), [], 0
    while i < len(lower):
        c = lower[i]
        if c not in _VOWELS and c not in _CONSONANTS:
            out.append(c)
            i += 1
            continue
        for size in (3, 2):
            if lower[i:i + size] in _SYLLABLES:
                out.append(_SYLLABLES[lower[i:i + size]])
                i += size
                break
        else:
            nxt = lower[i + 1] if i + 1 < len(lower) else ""
            if c in _VOWELS:
                # a second vowel i after a vowel is й (ai = ай, ei = эй)
                out.append("й" if c == "i" and i and lower[i - 1] in _VOWELS else _VOWELS[c])
            elif nxt in _VOWELS:
                out.append(_CONSONANTS[c] + ("э" if nxt == "e" else _VOWELS[nxt]))
                i += 1
            elif c == "n":
                out.append("м" if nxt in ("b", "p", "m") else "н")
            else:  # a doubled consonant (kk, tt, tch) or one alone
                out.append(_CONSONANTS[c])
            i += 1
    return "".join(out)


if __name__ == "__main__":
    for row in titles()[:20]:
        print(row["mal_id"], "|", row["title"], "|", row["english"], "|", row["japanese"], "|", row["russian"])
