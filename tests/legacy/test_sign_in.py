"""An imported person signs in through a real auth_service with the old password (the hash is
argon2id afterwards, and a re-import keeps it) and sees the same list through a real PostgREST."""

from __future__ import annotations

from collections.abc import Callable

from ops import services
from tests.auth_service.conftest import Api, new_ip
from tests.conftest import owner_connect
from tests.legacy.conftest import OLD_PASSWORD, run_import
from tests.legacy.test_import import ALICE, BEBOP, TRIGUN


def test_an_imported_person_signs_in_with_the_old_password_and_sees_their_lists(
        imported, old_db: str, start_auth: Callable[..., services.Service],
        start_postgrest: Callable[..., services.Service]):
    target, _ = imported
    auth, rest = start_auth(target, workers=1), start_postgrest(target)
    assert auth.url and rest.url
    api = Api(auth.url)
    # the old e-mail had other case and a space; the merged duplicate's password does not open it
    assert api.login("alice@example.com", "another", ip=new_ip()).status_code == 401
    response = api.login("ALICE@example.com", OLD_PASSWORD, ip=new_ip())
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    with owner_connect(target) as conn:
        (stored,) = conn.execute("select password_hash from data.users where id = %s", (ALICE,)).fetchone()
    assert stored.startswith("$argon2id$")

    favorites = Api(rest.url).get("/favorites?select=anime_id&order=anime_id", token=token)
    assert favorites.status_code == 200, favorites.text
    # /favorites lists titles anyone may see (published, not deleted: RLS on data.anime; the
    # draft ones are kept, test_import.test_sample_values); /watch_progress lists every row
    assert [row["anime_id"] for row in favorites.json()] == [BEBOP]
    progress = Api(rest.url).get("/watch_progress?select=anime_id,episode_number&order=anime_id", token=token)
    assert progress.status_code == 200, progress.text
    assert progress.json() == [{"anime_id": BEBOP, "episode_number": 2}, {"anime_id": TRIGUN, "episode_number": 3}]

    # old links keep working: the title kept its id
    title = Api(rest.url).get(f"/anime?id=eq.{BEBOP}&select=title")
    assert title.status_code == 200 and title.json() == [{"title": "Cowboy Bebop"}]

    # importing again (e.g. a resumed cut-over) never puts the old hash back
    run_import(target, old_db)
    with owner_connect(target) as conn:
        assert conn.execute("select password_hash from data.users where id = %s", (ALICE,)).fetchone() == (stored,)
    assert api.login("alice@example.com", OLD_PASSWORD, ip=new_ip()).status_code == 200
