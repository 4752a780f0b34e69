# The product image: the database build (python -m database), auth_service, the ingest workers
# and the gateway's configuration renderer, with sql/ and migrations/ - no tooling (ops/,
# tests/). The `dev` stage adds the offline upstream that compose runs when no real upstream is
# configured.
FROM python:3.11-slim AS product
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV PYTHONPATH=/app
COPY pyproject.toml README.md ./
COPY auth_service auth_service
COPY ingest ingest
COPY database database
COPY gateway gateway
COPY legacy_import legacy_import
COPY observability observability
RUN pip install --no-cache-dir -e .
COPY sql sql
COPY migrations migrations
RUN useradd --system --uid 10001 kitsu && mkdir /gateway && chown kitsu /gateway
USER kitsu

FROM product AS dev
USER root
COPY fake_upstream fake_upstream
# the dev-only mail sink of compose's `mail` service (ops/mail_sink.py; aiosmtpd is a dev extra)
RUN pip install --no-cache-dir aiosmtpd==1.4.6 && mkdir -p ops /mail && chown kitsu /mail
COPY ops/__init__.py ops/mail_sink.py ops/
USER kitsu

# compose's `pooled` profile: PgBouncer from Debian 12 (1.18, the one `make run` uses) in transaction
# mode for the web logins; its configuration comes from `python -m database pgbouncer-config`
FROM product AS pooler
USER root
RUN apt-get update && apt-get install -y --no-install-recommends pgbouncer && rm -rf /var/lib/apt/lists/*
USER kitsu
