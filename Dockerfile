# One image for the Python parts: migrations (ops.db), auth_service and the ingest workers.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV PYTHONPATH=/app
COPY pyproject.toml README.md ./
COPY auth_service auth_service
COPY ingest ingest
COPY ops ops
RUN pip install --no-cache-dir -e .
COPY sql sql
COPY migrations migrations
RUN useradd --system --uid 10001 kitsu
USER kitsu
