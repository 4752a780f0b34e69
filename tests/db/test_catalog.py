"""Catalog lints: each must find nothing in the real schema, and must find a planted violation
(otherwise it could be passing vacuously)."""

from __future__ import annotations

import pytest

from tests.conftest import owner_connect
from tests.db.catalog_lints import LINTS, search_plan_violations

# one statement per lint that creates exactly the kind of object the lint must catch
PLANTED = {
    "table without row-level security in a private schema": (
        "create table data.planted_no_rls (id int primary key)", "data.planted_no_rls"),
    "table (or other stored relation) in api": (
        "create table api.planted_table (id int)", "planted_table"),
    "security definer function without a fixed search_path": (
        "create function auth.planted_definer() returns int language sql security definer as 'select 1'",
        "auth.planted_definer"),
    "foreign key without an index on its columns": (
        "create table data.planted_fk (id int primary key, user_id uuid references data.users (id))",
        "data.planted_fk planted_fk_user_id_fkey"),
    "api view or function without a comment": (
        "create view api.planted_view with (security_invoker = true) as select 1 as x", "planted_view"),
    "api view column without a comment": (
        "create view api.planted_cols with (security_invoker = true) as select 1 as x;"
        "comment on view api.planted_cols is 'planted'", "planted_cols.x"),
    "api view that is not security_invoker (would bypass row-level security)": (
        "create view api.planted_owner as select 1 as x", "planted_owner"),
    "object outside api that depends on api (api must stay rebuildable)": (
        "create view private.planted_dependent as select id from api.anime", "private.planted_dependent"),
    "function anon may execute that is not on the allow-list": (
        "create function api.planted_fn() returns int language sql as 'select 1';"
        "grant execute on function api.planted_fn() to anon", "api.planted_fn"),
    "function anyone (PUBLIC) may execute": (
        "create function ingest.planted_public() returns int language sql as 'select 1';"
        "grant execute on function ingest.planted_public() to public", "ingest.planted_public"),
    "web role granted anything on a queue or auth table": (
        "create table auth.planted_secret (id int); grant select on auth.planted_secret to anon",
        "auth.planted_secret to anon"),
}


@pytest.mark.parametrize("name", LINTS)
def test_catalog_lint_finds_nothing(conn, name):
    assert conn.execute(LINTS[name]).fetchall() == []


@pytest.mark.parametrize("name", LINTS)
def test_catalog_lint_catches_a_planted_violation(conn, name):
    statement, expected = PLANTED[name]
    conn.execute(statement)
    found = [row[0] for row in conn.execute(LINTS[name]).fetchall()]
    assert expected in found


@pytest.mark.parametrize("role", ["anon", "web_user"])
def test_search_plans_use_indexes(template_db, role):
    assert search_plan_violations(template_db, role) == []


def test_search_plan_lint_catches_a_row_policy_that_blocks_the_index(fresh_db):
    # the original design: a search over a table whose policy is not `true` (here on the
    # search table itself) cannot use the trigram index for the web roles
    with owner_connect(fresh_db) as conn:
        conn.execute("alter policy catalog_search_public_read on data.catalog_search using (kind is not null)")
    found = search_plan_violations(fresh_db, "anon")
    assert "anon: select * from api.search_anime('kai'): no 'Index Cond: (doc ~~ '" in found, found
