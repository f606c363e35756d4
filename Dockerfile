# llm-switchyard as a container: slim Python, non-root, config mounted at /etc/llm-switchyard.
#   docker build -t llm-switchyard .
#   docker run -p 4000:4000 -v "$PWD/examples/configs:/etc/llm-switchyard:ro" \
#     -e LLM_ROUTER_CONFIG=/etc/llm-switchyard/quickstart.yaml llm-switchyard
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LLM_ROUTER_CONFIG=/etc/llm-switchyard/router.yaml \
    LLM_ROUTER_HOST=0.0.0.0 \
    LLM_ROUTER_PORT=4000

WORKDIR /app
COPY pyproject.toml README.md ./
COPY router ./router
RUN pip install ".[otlp,postgres]" \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin router \
    && mkdir -p /var/lib/llm-switchyard && chown 10001 /var/lib/llm-switchyard

USER 10001
# The working directory is the router's own: `spend.ledger: {}` writes its SQLite file here.
# Mount a volume on it to keep the ledger across containers.
WORKDIR /var/lib/llm-switchyard
EXPOSE 4000
# No curl in the slim image: the probe is Python's own urllib against the readiness endpoint.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/readiness' % os.environ.get('LLM_ROUTER_PORT', '4000'), timeout=2)"]
# SIGTERM drains (server.drain_seconds) before exiting; exec form so the router gets it.
STOPSIGNAL SIGTERM
ENTRYPOINT ["llm-switchyard", "serve"]
