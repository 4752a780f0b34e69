"""Render the gateway's nginx configuration from gateway/kitsu.conf.template.

One template for both deployments: `make run` renders it for Debian's nginx (ops/launch.py), and
compose renders it once into a volume the official nginx image reads (`python -m gateway render`).
Edge settings come from the environment (contract §10, §11), where they are validated: a bad
value stops the gateway from starting instead of becoming a broken nginx configuration.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

TEMPLATE = Path(__file__).with_name("kitsu.conf.template")
PLACEHOLDER = re.compile(r"\$\{([A-Z_]+)\}")  # nginx's own variables are lower case
ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")
SIZE = re.compile(r"[0-9]{1,9}[kKmM]?")


class EdgeSettings(BaseSettings):
    """The edge's knobs; names as in contract §10."""

    model_config = SettingsConfigDict(extra="ignore", env_ignore_empty=True)  # blank = default

    gateway_port: int = Field(default=8080, ge=1, le=65535)
    cors_allowed_origins: str = ""  # comma-separated; empty = no cross-origin access
    gateway_max_body: str = "1m"
    gateway_cache_seconds: int = Field(default=5, ge=0, le=3600)
    gateway_hsts: bool = False

    @field_validator("cors_allowed_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        for origin in filter(None, (o.strip() for o in value.split(","))):
            if not ORIGIN.fullmatch(origin):
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port], no path)")
        return value

    @field_validator("gateway_max_body")
    @classmethod
    def _size(cls, value: str) -> str:
        if not SIZE.fullmatch(value.strip()):
            raise ValueError(f"{value!r} is not an nginx size (e.g. 1m, 512k, 1048576)")
        return value.strip()

    def origins(self) -> list[str]:
        return [o.strip() for o in self.cors_allowed_origins.split(",") if o.strip()]


def servers(addresses: str, *, suffix: str = "") -> str:
    """nginx `server` lines for comma-separated host:port ``addresses`` (the replicas of one service)."""
    found = [a.strip() for a in addresses.split(",") if a.strip()]
    if not found:
        raise ValueError("an upstream needs at least one host:port")
    return "\n".join(f"    server {address} max_fails=1 fail_timeout=2s{suffix};" for address in found)


def render(edge: EdgeSettings, *, listen: str, postgrest: str, postgrest_admin: str, auth: str,
           cache_dir: str, access_log: str, catalog_replica: str = "", template: str | None = None) -> str:
    """The server configuration (for nginx's http {} block). ``postgrest``, ``postgrest_admin``
    and ``auth`` are comma-separated host:port lists (one per replica); ``catalog_replica`` is the
    PostgREST of a streaming replica that serves anonymous catalog reads (empty: none). Every
    placeholder of the template must be given a value and every value must have a placeholder,
    so the two cannot drift."""
    values = {
        "LISTEN": listen,
        "POSTGREST_SERVERS": servers(postgrest),
        "POSTGREST_ADMIN_SERVERS": servers(postgrest_admin),
        "AUTH_SERVERS": servers(auth),
        # the primary's PostgREST is the backup: used only while every replica server is out
        "CATALOG_READ_SERVERS": (servers(catalog_replica) + "\n" + servers(postgrest, suffix=" backup")
                                 if catalog_replica.strip() else servers(postgrest)),
        "CACHE_DIR": cache_dir,
        "ACCESS_LOG": access_log,
        "GATEWAY_MAX_BODY": edge.gateway_max_body,
        # proxy_cache_valid needs a positive time; 0 turns the cache off through CACHE_OFF instead
        "GATEWAY_CACHE_SECONDS": str(max(edge.gateway_cache_seconds, 1)),
        "CACHE_OFF": "1" if edge.gateway_cache_seconds == 0 else "0",
        "GATEWAY_HSTS": "1" if edge.gateway_hsts else "0",
        "CORS_ORIGIN_MAP": "\n".join(f'    "{origin}" $http_origin;' for origin in edge.origins()),
    }
    text = TEMPLATE.read_text() if template is None else template
    wanted = set(PLACEHOLDER.findall(text))
    if wanted != values.keys():
        raise ValueError(f"template placeholders {sorted(wanted ^ values.keys())} have no value or no use")
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], text)
