from __future__ import annotations

import httpx


def test_postgrest_serves_the_api(postgrest):
    response = httpx.get(f"{postgrest.url}/anime")
    assert response.status_code == 200
    assert response.json() == []
    assert response.headers["x-content-type-options"] == "nosniff"
