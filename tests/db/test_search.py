"""Search and catalog paging at catalog scale, through a real PostgREST (issue 7): relevance
(everything the old ILIKE found is found, exact first, typos), the search documents kept in the
same transaction as every write, and EXPLAIN (ANALYZE, BUFFERS) evidence as anon and web_user
that search and deep pages use their indexes at a cost set by the page, not by the matches."""

from __future__ import annotations

import json
import random
import unicodedata
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from database import build as db
from ops.bench import catalog as bench_catalog
from tests.conftest import owner_connect
from tests.db.catalog_lints import browse_plan_violations
from tests.helpers import create_anime, create_user

TITLES = 5_000
# real titles whose words the generated catalog does not use, for the typo tests
PLANTED = {
    "Naruto Shippuuden": "naroto",               # one letter replaced, 6-letter word
    "Shinseiki Evangelion": "evangelian",        # one letter replaced, 10 letters
    "Mushishi Zoku Shou": "mushisgi",            # 8 letters
    "Cowboy Bebop": "cowbiy",
    "Yakitate!! Japan": "yakitaye",              # the last letter but one
}
# real titles with every name in every script, for the relevance tests of contract §15
REAL = [
    {"title": "Tengen Toppa Gurren Lagann", "title_en": "Gurren Lagann", "title_ru": "Гуррен-Лаганн",
     "title_original": "天元突破グレンラガン", "synonyms": ["TTGL"]},
    {"title": "Sen to Chihiro no Kamikakushi", "title_en": "Spirited Away", "title_ru": "Унесённые призраками",
     "title_original": "千と千尋の神隠し", "synonyms": ["Sen and Chihiro's Spiriting Away"]},
    {"title": "Mahou Shoujo Madoka★Magica", "title_en": "Puella Magi Madoka Magica",
     "title_ru": "Девочка-волшебница Мадока", "title_original": "魔法少女まどか☆マギカ", "synonyms": ["Madomagi"]},
]
# (q, the title it must find): prefixes and two-letter typos (a swapped pair, two letters changed)
PREFIXES = [("tengen top", 0), ("Гуррен", 0), ("天元突破", 0), ("spirited aw", 1), ("sen to chihiro no ka", 1),
            ("千と千尋", 1), ("puella ma", 2), ("Девочка-волш", 2), ("魔法少女まどか", 2)]
TWO_LETTER_TYPOS = [("gurren lagnan", 0), ("gruren lagann", 0), ("Гуррен-Лагнна", 0),
                    ("spirted awya", 1), ("унесённые призарками", 1), ("puella magi madkoa", 2),
                    ("madomgai", 2)]
PLAN = "application/vnd.pgrst.plan+json; options=analyze|buffers"


@pytest.fixture(scope="module")
def search(api_db, start_postgrest, mint):
    with owner_connect(api_db) as conn:
        bench_catalog.load(conn, TITLES)
        for title in PLANTED:
            create_anime(conn, title, score=5.0, kind="tv")
        for names in REAL:
            # the best score: ties within a tier go to the better score, and these must win them
            create_anime(conn, names["title"], **{k: v for k, v in names.items() if k != "title"}, score=9.99)
        conn.execute("insert into data.genres (id, name, name_ru) "
                     "values (1, 'Action', 'Экшен'), (4, 'Comedy', 'Комедия')")
        # probes for filters and sorts whose attributes are known, whatever the catalog's titles are:
        # every kind, status, rating and season, repeated and missing scores and years (ties, nulls)
        conn.execute(
            "insert into data.anime (title, title_ru, kind, status, score, rating, year, season, aired_on, state) "
            "select 'Zorblax ' || (array['alpha', 'beta', 'gamma'])[1 + i % 3] || ' ' || i, 'Зорблакс ' || i, "
            "       (array['tv', 'movie', 'ova'])[1 + i % 3], (array['anons', 'ongoing', 'released'])[1 + i / 3 % 3], "
            "       case when i % 11 <> 0 then (i * 37 % 100) / 10.0 end, (array['g', 'pg_13', 'r'])[1 + i / 3 % 3], "
            "       case when i % 13 <> 0 then 2000 + i % 7 end, "
            "       (array['winter', 'spring', 'summer', 'fall'])[1 + i % 4], "
            "       case when i % 13 <> 0 and i % 5 <> 0 then make_date(2000 + i % 7, 1 + i % 12, 1 + i % 28) end, "
            "       'published' "
            "  from generate_series(1, 240) i")
        conn.execute("insert into data.anime_genres select id, 1 + 3 * (abs(hashtext(id::text)) % 2) from data.anime")
        conn.execute("insert into data.anime_genres select id, 1 from data.anime where title like 'Zorblax %' "
                     "on conflict do nothing")
        # a third genre on a fifth of the titles, for filters that need several genres at once
        conn.execute("insert into data.genres (id, name) values (7, 'Mystery')")
        conn.execute("insert into data.anime_genres select id, 7 from data.anime "
                     "where abs(hashtext(id::text || 'm')) % 5 = 0 and title not like 'Zorblax %'")
        conn.execute("insert into data.anime_genres select id, 7 from data.anime "
                     "where title like 'Zorblax %' and substring(title from '[0-9]+$')::integer % 2 = 0")
        # announced airings, one a week per ongoing title, from 8 weeks back to 4 ahead
        conn.execute("insert into data.schedule (anime_id, episode_number, airs_at) "
                     "select id, n, now() + (n - 8) * interval '7 days' "
                     "       + (abs(hashtext(id::text)) % 7) * interval '1 day' "
                     "from data.anime, generate_series(1, 12) n where status = 'ongoing'")
        user_id, session_id = create_user(conn)
    with owner_connect(api_db, autocommit=True) as conn:
        conn.execute("vacuum analyze")  # as autovacuum would: all-visible pages for index-only scans
    postgrest = start_postgrest(api_db, plans=True)
    return {"url": postgrest.url, "db": api_db, "token": mint(user_id, session_id)}


def call(search, path, *, token=None, accept="application/json", **params):
    headers = {"Accept": accept}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    response = httpx.get(f"{search['url']}{path}", params=params, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def every_result(search, q):
    """All results of a search, page by page (db-max-rows is 1,000)."""
    found, offset = [], 0
    while page := call(search, "/rpc/search_anime", q=q, select="id,title", limit=1000, offset=offset):
        found += page
        offset += len(page)
    return found


def nodes(plan):
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def explain(search, path, role, **params):
    token = search["token"] if role == "web_user" else None
    [result] = call(search, path, token=token, accept=PLAN, **params)
    return result


def titles_of(conn, sql, *args):
    return [row[0] for row in conn.execute(sql, args)]


# --- relevance -----------------------------------------------------------------------------------

def test_every_title_the_old_ilike_found_is_still_found(search):
    rng = random.Random(7)
    with owner_connect(search["db"]) as conn:
        names = titles_of(conn, "select title from data.anime")
        queries = set()
        while len(queries) < 25:
            name = rng.choice(names)
            start = rng.randrange(max(len(name) - 2, 1))
            if (piece := name[start:start + 3]).isalpha() and len(piece) == 3:
                queries.add(piece)
        for q in sorted(queries):
            # the old system: ILIKE '%q%' on the title (the search here also matches every other name)
            old = set(map(str, titles_of(conn, "select id from data.anime where title ilike %s", f"%{q}%")))
            found = [row["id"] for row in every_result(search, q)]
            assert len(found) == len(set(found)), f"{q}: a title listed twice"
            assert old <= set(found), f"{q}: {len(old - set(found))} of {len(old)} titles lost"


def test_an_exact_title_ranks_first(search):
    rng = random.Random(11)
    with owner_connect(search["db"]) as conn:
        rows = conn.execute("select title from data.anime where length(title) >= 3").fetchall()
    for (title,) in rng.sample(rows, 20):
        [first] = call(search, "/rpc/search_anime", q=title, select=NAMES, limit=1)
        assert fold(title) in names_of(first), (title, first)


NAMES = "title,title_ru,title_en,title_original,synonyms"


def names_of(row):
    """A result's names as the search documents store them."""
    return [fold(n) for n in (row["title"], row["title_ru"], row["title_en"], row["title_original"],
                              *row["synonyms"]) if n]


def fold(text):
    """Lower case without accents, as the search documents store names."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))


def test_tiers_exact_then_prefix_then_substring_by_score(search):
    results = call(search, "/rpc/search_anime", q="kai", select=f"{NAMES},score", limit=200)

    def tier(row):
        names = names_of(row)
        return 0 if "kai" in names else 1 if any(n.startswith("kai") for n in names) else 2
    tiers = [tier(row) for row in results]
    assert tiers == sorted(tiers) and tiers[0] <= 1 and 2 in tiers
    for t in set(tiers):  # within a tier: score, best first (nulls last)
        scores = [-1 if row["score"] is None else row["score"]
                  for row, x in zip(results, tiers, strict=True) if x == t]
        assert scores == sorted(scores, reverse=True)


def test_one_typo_in_a_long_word_still_finds_the_title(search):
    for title, typo in PLANTED.items():
        found = [row["title"] for row in call(search, "/rpc/search_anime", q=typo, select="title", limit=20)]
        assert title in found, (typo, found)


def test_two_letters_search_name_prefixes_only(search):
    results = call(search, "/rpc/search_anime", q="Ko", select=NAMES, limit=1000)
    assert results
    for row in results:
        assert any(n.startswith("ko") for n in names_of(row)), row


def test_paging_is_stable_and_complete(search):
    whole = [row["id"] for row in call(search, "/rpc/search_anime", q="ana", select="id", limit=300)]
    pages = [row["id"] for offset in range(0, 300, 20)
             for row in call(search, "/rpc/search_anime", q="ana", select="id", limit=20, offset=offset)]
    assert pages == whole and len(whole) == len(set(whole))


def test_filters_narrow_every_tier(search):
    rows = call(search, "/rpc/search_anime", q="kai", kind="movie", genre="экшен", select="kind,genres", limit=1000)
    assert rows and all(r["kind"] == "movie" and "Экшен" in r["genres"] for r in rows)


@pytest.mark.parametrize("q, code", [("k", "query_too_short"), (" k ", "query_too_short"),
                                     ("x" * 201, "query_too_long")])
def test_query_length_is_checked(search, q, code):
    response = httpx.get(f"{search['url']}/rpc/search_anime", params={"q": q}, timeout=10)
    assert response.status_code == 400 and response.json()["code"] == code


# --- the documents follow every write ------------------------------------------------------------

def searched(search, q):
    return [row["title"] for row in every_result(search, q)]


def test_search_documents_follow_publication_edits_and_deletion(search):
    marker = "Zyxvu" + uuid.uuid4().hex[:6]
    with owner_connect(search["db"]) as conn:
        anime = create_anime(conn, f"{marker} Draft", state="draft", title_ru="Черновик")
    assert searched(search, marker) == []
    with owner_connect(search["db"]) as conn:
        conn.execute("update data.anime set state = 'published' where id = %s", (anime,))
    assert searched(search, marker) == [f"{marker} Draft"]
    with owner_connect(search["db"]) as conn:
        conn.execute("update data.anime set title = %s, synonyms = '{Qwertz}' where id = %s",
                     (f"{marker} Renamed", anime))
    assert searched(search, marker) == [f"{marker} Renamed"] and searched(search, "qwertz") == [f"{marker} Renamed"]
    with owner_connect(search["db"]) as conn:
        conn.execute("update data.anime set deleted_at = now() where id = %s", (anime,))
    assert searched(search, marker) == [] and searched(search, "qwertz") == []
    with owner_connect(search["db"]) as conn:
        keys = conn.execute("select count(*) from data.catalog_search_keys where anime_id = %s", (anime,))
        assert keys.fetchone()[0] == 0


def test_a_new_titles_words_correct_typos_at_once_and_the_recount_drops_stale_ones(search):
    """Typos are corrected to the catalog's own words (data.catalog_search_words): a title's
    words are there as soon as it is published; the worker's hourly recount fixes the counts and
    drops the words no published title has (a planted stale word and a planted wrong count)."""
    word = "zyphorian" + uuid.uuid4().hex[:4].translate(str.maketrans("0123456789", "ghijklmnop"))
    typo = word[:3] + word[4] + word[3] + word[5:]  # two letters swapped
    with owner_connect(search["db"]) as conn:
        anime = create_anime(conn, f"{word.title()} Chronicle", score=5.0)
        conn.execute("insert into data.catalog_search_words (word, titles) values ('zzstaleword', 7)")
        conn.execute("update data.catalog_search_words set titles = 999 where word = 'chronicle'")
    assert searched(search, typo) == [f"{word.title()} Chronicle"]
    with psycopg.connect(db.role_url(search["db"], "ingest_worker")) as conn:
        changed = conn.execute("select ingest.refresh_search_words()").fetchone()[0]
    assert changed >= 2
    with owner_connect(search["db"]) as conn:
        rows = dict(conn.execute("select word, titles from data.catalog_search_words "
                                 "where word in ('zzstaleword', 'chronicle', %s)", (word,)).fetchall())
        published = conn.execute("select count(*) from data.catalog_search "
                                 "where doc like '%%chronicle%%'").fetchone()[0]
    assert "zzstaleword" not in rows
    assert rows[word] == 1 and rows["chronicle"] == published
    with owner_connect(search["db"]) as conn:
        conn.execute("update data.anime set deleted_at = now() where id = %s", (anime,))
    with psycopg.connect(db.role_url(search["db"], "ingest_worker")) as conn:
        conn.execute("select ingest.refresh_search_words()")
    with owner_connect(search["db"]) as conn:
        assert conn.execute("select count(*) from data.catalog_search_words where word = %s",
                            (word,)).fetchone()[0] == 0
    assert searched(search, typo) == []


def test_a_failed_write_leaves_the_search_as_it_was(search):
    marker = "Rollbk" + uuid.uuid4().hex[:6]
    with owner_connect(search["db"]) as conn:
        anime = create_anime(conn, marker)
    with pytest.raises(psycopg.errors.CheckViolation), owner_connect(search["db"]) as conn:
        conn.execute("update data.anime set title = 'Other name' where id = %s", (anime,))
        conn.execute("update data.anime set score = 11 where id = %s", (anime,))  # violates anime_score_range
    assert searched(search, marker) == [marker]


def test_genres_are_stored_on_the_title_and_follow_their_links(search):
    with owner_connect(search["db"]) as conn:  # a genre of its own: a rename rewrites every title that has it
        anime = create_anime(conn, "Genre Probe " + uuid.uuid4().hex[:6])
        conn.execute("insert into data.genres values (90, 'Probe A', 'Проба А'), (91, 'Probe B', null)")
        conn.execute("insert into data.anime_genres values (%s, 90), (%s, 91)", (anime, anime))
        assert titles_of(conn, "select unnest(genres) from data.anime where id = %s", anime) == ["Проба А", "Probe B"]
        conn.execute("delete from data.anime_genres where anime_id = %s and genre_id = 90", (anime,))
        conn.execute("update data.genres set name_ru = 'Проба Б' where id = 91")
    [row] = call(search, "/anime", id=f"eq.{anime}", select="genres")
    assert row["genres"] == ["Проба Б"]
    [row] = call(search, "/rpc/search_anime", q="genre probe", genre="проба б", select="id")
    assert row["id"] == str(anime)


# --- plans: the index does the work, and the page sets the cost ---------------------------------

def search_plan(search, role, q, offset=0):
    return explain(search, "/rpc/search_anime", role, q=q, limit=20, offset=offset)


@pytest.mark.parametrize("role", ["anon", "web_user"])
def test_search_uses_its_indexes_as_the_web_roles(search, role):
    for q in ("ko", "kai", "ель", "のメ", "naroto", "mushishi zoku"):
        plan = search_plan(search, role, q)["Plan"]
        scans = [n for n in nodes(plan) if "Scan" in n["Node Type"] and n.get("Actual Loops", 0)]
        assert not [n["Relation Name"] for n in scans if n["Node Type"] == "Seq Scan"], (q, role)
        used = {n.get("Index Name") for n in scans}
        search_indexes = {"catalog_search_keys_rank_idx", "catalog_search_rank_idx", "catalog_search_doc_trgm_idx"}
        assert used & search_indexes, (q, used)


def common_query(conn, at_least):
    """A 3-letter substring that at least ``at_least`` titles contain."""
    return conn.execute(
        "select g, count(*) from data.catalog_search, "
        "lateral (select substr(btrim(doc, '|'), i, 3) g from generate_series(1, 12) i) x "
        "where g ~ '^[a-z]{3}$' group by g having count(*) >= %s order by count(*) desc limit 1",
        (at_least,)).fetchone()


@pytest.mark.parametrize("role", ["anon", "web_user"])
def test_search_cost_does_not_grow_with_the_matches(search, role):
    with owner_connect(search["db"]) as conn:
        common, matches = common_query(conn, 500)
        rare = "mushishi"
    costs = {}
    for q in (common, rare):
        result = search_plan(search, role, q)
        costs[q] = result["Plan"]["Shared Hit Blocks"] + result["Plan"].get("Shared Read Blocks", 0)
        walked = [n["Actual Rows"] for n in nodes(result["Plan"]) if n.get("Index Name") == "catalog_search_rank_idx"]
        assert all(rows <= 2000 for rows in walked)
    # a q matching hundreds of titles reads about what a q matching one does: the page's rows
    assert costs[common] <= 400, (common, matches, costs)
    assert costs[common] <= 3 * costs[rare] + 100, costs


CARD = "id,title,title_ru,title_original,kind,status,year,poster_url"


def vacuum(search):
    """What autovacuum does after writes: marks pages all-visible, so index-only scans skip the heap."""
    with owner_connect(search["db"], autocommit=True) as conn:
        conn.execute("vacuum data.anime")


@pytest.mark.parametrize("role", ["anon", "web_user"])
def test_deep_catalog_pages_skip_through_the_covering_index(search, role):
    vacuum(search)
    shallow = explain(search, "/anime", role, select=CARD, order="updated_at.desc", limit=20, offset=0)["Plan"]
    deep = explain(search, "/anime", role, select=CARD, order="updated_at.desc", limit=20, offset=TITLES - 20)["Plan"]
    for plan in (shallow, deep):
        kinds = {n["Node Type"] for n in nodes(plan)}
        assert "Sort" not in kinds and "Seq Scan" not in kinds
        [scan] = [n for n in nodes(plan) if n["Node Type"] == "Index Only Scan"]
        # the heap is read only for the few pages written since the last vacuum
        assert scan["Index Name"] == "anime_published_updated_idx" and scan["Heap Fetches"] <= 50
    # skipped rows cost index pages only (no heap, no genres): one 8 KiB page per ~23 list cards
    assert deep["Shared Hit Blocks"] <= shallow["Shared Hit Blocks"] + TITLES / 15


@pytest.mark.parametrize("role", ["anon", "web_user"])
def test_keyset_pages_cost_the_same_anywhere(search, role):
    with owner_connect(search["db"]) as conn:
        updated_at, anime = conn.execute(
            "select updated_at, id from data.anime where state = 'published' order by updated_at desc, id desc "
            "offset %s limit 1", (TITLES - 100,)).fetchone()
    params = dict(select=CARD, order="updated_at.desc,id.desc", limit=20)
    first = explain(search, "/anime", role, **params)["Plan"]
    # the documented keyset (README): the rows after the last one seen, in the same order
    at = f'"{updated_at.isoformat()}"'
    after = {"updated_at": f"lte.{at}", "or": f"(updated_at.lt.{at},id.lt.{anime})"}
    later = explain(search, "/anime", role, **params, **after)["Plan"]
    assert "Sort" not in {n["Node Type"] for n in nodes(later)}
    assert later["Shared Hit Blocks"] <= first["Shared Hit Blocks"] + 10
    rows = call(search, "/anime", **params, **after)
    assert len(rows) == 20 and all(r["id"] != str(anime) for r in rows)


def test_the_plan_endpoint_is_not_served_by_default(api_db, start_postgrest):
    postgrest = start_postgrest(api_db)
    response = httpx.get(f"{postgrest.url}/anime", headers={"Accept": PLAN}, timeout=10)
    assert response.status_code == 415  # plans are a test instance's option (services.postgrest(plans=True))
    assert json.loads(response.text)["code"] == "PGRST107"


# --- catalog v1.1 (contract §15): filters, sorts, browse, schedule -------------------------------

def every_page(search, path, page=50, **params):
    """Every row of a request, page by page with limit/offset."""
    found, offset = [], 0
    while rows := call(search, path, limit=page, offset=offset, **params):
        found += rows
        offset += len(rows)
    return found


def ids_in_order(conn, ids, order):
    return [str(row[0]) for row in conn.execute(
        f"select a.id from data.anime a join data.catalog_search s on s.anime_id = a.id "
        f"where a.id = any (%s::uuid[]) order by {order}", (ids,))]


FILTERED = "id,kind,status,year,season,rating,score,genre_ids"


def test_filters_combine_and_keep_the_relevance_order(search):
    whole = every_page(search, "/rpc/search_anime", q="zorblax", select=FILTERED, page=1000)
    wanted = {"kind": "tv", "rating": "pg_13", "min_score": 5, "genres": "{Экшен,mystery}"}

    def kept(row):
        return (row["kind"] == "tv" and row["rating"] == "pg_13" and row["score"] is not None
                and row["score"] >= 5 and {1, 7} <= set(row["genre_ids"]))
    filtered = every_page(search, "/rpc/search_anime", q="zorblax", select=FILTERED, page=3, **wanted)
    # exactly the matches that pass every filter, in the order relevance gave them
    assert filtered and filtered == [row for row in whole if kept(row)]
    for year, season in {(r["year"], r["season"]) for r in filtered if r["year"]}:
        narrower = call(search, "/rpc/search_anime", q="zorblax", select="id", limit=1000, year=year, season=season,
                        status=filtered[0]["status"], **wanted)
        assert [r["id"] for r in narrower] == [r["id"] for r in filtered if (r["year"], r["season"]) == (year, season)
                                               and r["status"] == filtered[0]["status"]]


def test_every_genre_must_match(search):
    both = call(search, "/rpc/search_anime", q="zorblax", genres="{Action,Comedy}", select="genre_ids", limit=1000)
    assert both and all({1, 4} <= set(row["genre_ids"]) for row in both)
    with owner_connect(search["db"]) as conn:
        [(truth,)] = conn.execute("select count(*) from data.anime a where title like 'Zorblax %' "
                                  "and (select count(*) from data.anime_genres g where g.anime_id = a.id "
                                  "     and g.genre_id in (1, 4)) = 2").fetchall()
    assert len(both) == truth
    assert call(search, "/rpc/search_anime", q="zorblax", genres="{Action,No Such Genre}", limit=1000) == []
    by_id = call(search, "/rpc/search_anime", q="zorblax", genres="{7}", select="id", limit=1000)
    by_name = call(search, "/rpc/search_anime", q="zorblax", genres="{MYSTERY}", select="id", limit=1000)
    assert len(by_id) == 120 and by_id == by_name


SORTS = {  # what each sort means, as SQL over the matches (README §15)
    "score": "s.score desc nulls last, a.id",
    "year": "s.year desc nulls last, a.aired_on desc nulls last, a.id",
    "title": "a.title, a.id",
    "updated": "a.updated_at desc, a.id",
}


@pytest.mark.parametrize("sort", SORTS)
def test_sorts_order_the_matches_and_page_stably(search, sort):
    q = "zorblax"  # fewer than 1,000 matches: a sort orders them all
    relevant = [row["id"] for row in every_page(search, "/rpc/search_anime", q=q, select="id", page=1000)]
    assert 240 <= len(relevant) < 1000
    whole = [row["id"] for row in call(search, "/rpc/search_anime", q=q, sort=sort, select="id", limit=1000)]
    with owner_connect(search["db"]) as conn:
        assert whole == ids_in_order(conn, relevant, SORTS[sort])
    pages = [row["id"] for row in every_page(search, "/rpc/search_anime", q=q, sort=sort, select="id", page=7)]
    assert pages == whole


def test_a_sort_orders_the_1000_most_relevant_matches(search):
    q = "sortprobe"
    with owner_connect(search["db"]) as conn:
        conn.execute("insert into data.anime (title, score, state) "
                     "select 'Sortprobe ' || i, (i % 97) / 10.0, 'published' from generate_series(1, 1100) i")
    relevant = [row["id"] for row in every_page(search, "/rpc/search_anime", q=q, select="id", page=1000)]
    assert len(relevant) > 1000  # the 1,100 names, then typo matches
    by_title = [row["id"] for row in every_page(search, "/rpc/search_anime", q=q, sort="title", select="id", page=300)]
    assert len(by_title) == 1000 and set(by_title) == set(relevant[:1000])  # the best-scored 1,000
    with owner_connect(search["db"]) as conn:
        assert by_title == ids_in_order(conn, relevant[:1000], SORTS["title"])


def test_an_unknown_sort_is_refused(search):
    response = httpx.get(f"{search['url']}/rpc/search_anime", params={"q": "kai", "sort": "random"}, timeout=10)
    assert response.status_code == 400 and response.json()["code"] == "invalid_sort"
    assert "relevance" in response.json()["message"]


def test_genres_list_counts_published_titles_and_follows_writes(search):
    with owner_connect(search["db"]) as conn:
        truth = dict(conn.execute(
            "select g.id, count(a.id) from data.genres g left join data.anime_genres ag on ag.genre_id = g.id "
            "left join data.anime a on a.id = ag.anime_id and a.state = 'published' and a.deleted_at is null "
            "group by g.id").fetchall())
    listed = {row["id"]: row for row in call(search, "/genres")}
    assert {i: row["anime_count"] for i, row in listed.items()} == truth
    assert listed[1]["name"] == "Action" and listed[1]["name_ru"] == "Экшен"
    with owner_connect(search["db"]) as conn:
        draft = create_anime(conn, "Genre Count Probe", state="draft")
        conn.execute("insert into data.anime_genres values (%s, 7)", (draft,))
        assert next(r for r in call(search, "/genres", id="eq.7"))["anime_count"] == truth[7]  # not published
        conn.execute("update data.anime set state = 'published' where id = %s", (draft,))
        conn.execute("delete from data.anime_genres where anime_id = %s and genre_id = 7", (draft,))
        conn.execute("insert into data.anime_genres values (%s, 1), (%s, 4)", (draft, draft))
    [action, mystery] = call(search, "/genres", id="in.(1,7)", order="id")
    assert (action["anime_count"], mystery["anime_count"]) == (truth[1] + 1, truth[7])
    with owner_connect(search["db"]) as conn:
        conn.execute("update data.anime set deleted_at = now() where id = %s", (draft,))
    assert call(search, "/genres", id="eq.1")[0]["anime_count"] == truth[1]


def test_anime_filters_by_genre_ids(search):
    found = every_page(search, "/anime", select="id,genre_ids,genres", genre_ids="cs.{4,7}", order="id", page=1000)
    with owner_connect(search["db"]) as conn:
        truth = [str(r[0]) for r in conn.execute(
            "select a.id from data.anime a where a.state = 'published' and a.deleted_at is null "
            "and exists (select 1 from data.anime_genres where anime_id = a.id and genre_id = 4) "
            "and exists (select 1 from data.anime_genres where anime_id = a.id and genre_id = 7) order by a.id")]
    assert truth and [r["id"] for r in found] == truth
    assert all({4, 7} <= set(r["genre_ids"]) and "Комедия" in r["genres"] for r in found)


@pytest.mark.parametrize("role", ["anon", "web_user"])
def test_browse_filters_use_their_indexes(search, role):
    assert browse_plan_violations(search["db"], role) == []


@pytest.mark.parametrize("plant, missing", [
    ("drop index data.catalog_search_genre_ids_idx", "no 'Index Cond: (genre_ids @> '"),
    ("drop index data.anime_published_status_idx", "no 'anime_published_status_idx'"),
    ("drop index data.schedule_airs_at_idx", "no 'schedule_airs_at_idx'"),
    # the genre filter read from the row-secured data.anime (policy not `true`): @> may not use
    # an index there, even one made for it
    ("create index planted_genre_ids on data.anime using gin (genre_ids);"
     "drop index data.catalog_search_genre_ids_idx;"
     "create or replace view api.anime_planted with (security_invoker = true) as "
     "select a.id, a.status, a.score, a.year, a.season, a.updated_at, a.genre_ids from data.anime a "
     "where a.state = 'published' and a.deleted_at is null;"
     "grant select on api.anime_planted to anon;"
     "alter view api.anime rename to anime_original; alter view api.anime_planted rename to anime",
     "no 'Index Cond: (genre_ids @> '"),
])
def test_the_browse_plan_lint_catches_a_lost_index(search, plant, missing):
    found = browse_plan_violations(search["db"], "anon", plant)
    assert any(missing in line for line in found), found


def test_schedule_keeps_every_airing_from_30_days_back(search):
    rows = every_page(search, "/schedule", select="anime_id,episode_number,airs_at",
                      order="airs_at,anime_id,episode_number", page=1000)
    with owner_connect(search["db"]) as conn:
        stored, older = conn.execute(
            "select count(*) filter (where airs_at >= now() - interval '30 days'), "
            "count(*) filter (where airs_at < now() - interval '31 days') from data.schedule").fetchone()
    assert len(rows) == stored and older > 0  # each episode its own row; the older ones hidden
    per_title = {}
    for row in rows:
        per_title.setdefault(row["anime_id"], []).append(row["episode_number"])
    assert max(len(v) for v in per_title.values()) >= 5
    week = call(search, "/schedule", select="airs_at", order="airs_at",
                airs_at=["gte.2000-01-01", "lt.2100-01-01"], limit=5)  # two bounds on one column
    assert len(week) == 5


@pytest.mark.parametrize("role", ["anon", "web_user"])
def test_schedule_range_uses_its_index(search, role):
    start = datetime.now(UTC).replace(microsecond=0)
    params = {"airs_at": [f"gte.{start.isoformat()}", f"lt.{(start + timedelta(days=7)).isoformat()}"]}
    plan = explain(search, "/schedule", role, order="airs_at", **params)["Plan"]
    assert "Seq Scan" not in {n["Node Type"] for n in nodes(plan)}
    assert "schedule_airs_at_idx" in {n.get("Index Name") for n in nodes(plan)}


@pytest.mark.parametrize("script", ["title", "title_en", "title_ru", "title_original", "synonyms"])
def test_an_exact_name_in_each_script_ranks_first(search, script):
    for names in REAL:
        q = names[script][0] if script == "synonyms" else names[script]
        [first] = call(search, "/rpc/search_anime", q=q, select="title", limit=1)
        assert first["title"] == names["title"], (script, q, first)


@pytest.mark.parametrize("q, which", PREFIXES)
def test_a_prefix_in_each_script_finds_the_title(search, q, which):
    [first] = call(search, "/rpc/search_anime", q=q, select="title", limit=1)
    assert first["title"] == REAL[which]["title"], (q, first)


@pytest.mark.parametrize("q, which", TWO_LETTER_TYPOS)
def test_a_two_letter_typo_still_finds_the_title(search, q, which):
    found = [row["title"] for row in call(search, "/rpc/search_anime", q=q, select="title", limit=5)]
    assert REAL[which]["title"] in found, (q, found)
