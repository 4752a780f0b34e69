"""Kitsu ingest: Procrastinate workers syncing the catalog from Shikimori and Kodik.

``procrastinate --app=ingest.app`` resolves to the App (contract §8).
"""

from __future__ import annotations

from ingest.app import app

__all__ = ["app"]
