"""fake_upstream.real_titles: what is generated beside the real (bangumi-data) names, and the
bundled fallback when the package is not installed."""

from __future__ import annotations

import pytest

from fake_upstream import fixtures, real_titles


@pytest.mark.parametrize(("japanese", "romaji", "russian"), [
    ("進撃の巨人", "Shingeki no Kyojin", "Сингэки но Кёдзин"),
    ("千と千尋の神隠し", "Sen to Senjin no Kamikakushi", "Сэн то Сэндзин но Камикакуси"),
    ("ハイキュー!!", "Haikyuu!!", "Хайкюу!!"),
    ("Dr.STONE", "Dr. STONE", "Dr. STONE"),  # Latin stays Latin in both
])
def test_romaji_and_russian_are_generated_from_the_japanese_title(japanese, romaji, russian):
    assert real_titles.readings(japanese) == (romaji, russian)


def test_polivanov_spells_the_syllables_russian_sites_use():
    assert [real_titles.to_cyrillic(w) for w in ["shi", "tsu", "ji", "kyou", "senpai", "kaette", "shinbun"]] == [
        "си", "цу", "дзи", "кёу", "сэмпай", "каэттэ", "симбун"]


def test_without_the_package_the_real_catalog_falls_back_to_the_bundled_one(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(real_titles, "SOURCE", tmp_path / "missing.json")
    assert fixtures.load(catalog="real") == fixtures.load()
    assert "make titles" in capsys.readouterr().err


def test_real_titles_say_what_was_generated():
    if not real_titles.available():
        pytest.skip("bangumi-data is not installed (`make titles`)")
    [title] = fixtures.real(1)
    assert title["generated"] == ["romaji", "russian"]
    assert "generated here: romaji, russian title" in title["description"]
    assert title["id"] == title["malId"] == str(real_titles.titles()[0]["mal_id"])


def test_benchmark_catalogs_mark_the_generated_russian_titles():
    from ops.bench import catalog

    at = catalog.COLUMNS.index("title_ru_generated")
    assert {row[at] for row in catalog.rows(50)} == {False}  # made-up catalog: no source to mark against
    if not real_titles.available():
        pytest.skip("bangumi-data is not installed (`make titles`)")
    count = len(real_titles.titles())
    rows = list(catalog.real_rows(count + 3))  # every real title, then three derived ones
    assert all(row[at] is (row[catalog.COLUMNS.index("title_ru")] is not None) for row in rows)
