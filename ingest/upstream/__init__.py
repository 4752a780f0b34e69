"""The local upstream: Shikimori and Kodik formats and limits over HTTP (see server.py)."""
