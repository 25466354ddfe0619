# gexbot daemon image, variant ES. The other variant's file differs only in the variant's name;
# tests/test_docker.py keeps the two in step and in agreement with the CLI and the presets.
FROM python:3.11-slim

# GEXBOT_TOKEN_FILE is where the token lives on the data volume, not a secret itself.
# MPLCONFIGDIR: matplotlib (the day's chart on Discord) keeps its font cache there, since the
# user's home (/app) is not writable.
# hadolint ignore=DL3064
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    GEXBOT_TOKEN_FILE=/data/schwab-token.json \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /app

# The daemon runs as this user; /data (DuckDB files, recordings, the shared token file) is its.
RUN groupadd --system --gid 10001 gexbot \
    && useradd --system --uid 10001 --gid gexbot --home-dir /app --no-create-home gexbot \
    && mkdir /data \
    && chown gexbot:gexbot /data

# Dependencies first: this layer is rebuilt only when requirements.txt changes.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY gexbot/ gexbot/
# The variant's HMM model; mount a directory over /app/models to use a retrained one.
COPY models/hmm_es.json models/

USER 10001:10001
VOLUME ["/data"]
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-m", "gexbot.shell.health", "--probe", "http://127.0.0.1:8080/healthz"]
CMD ["python", "-m", "gexbot.live", "--variant", "es", "--db", "/data/es.db", "--record", "/data/recordings", "--http-port", "8080", "--http-host", "0.0.0.0", "--log-format", "json"]
