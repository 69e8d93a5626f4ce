# drip-bridge for platforms that run containers. The image runs the Procfile's web
# process; run the same image with `drip-bridge worker` for the worker (with
# --no-healthcheck: it serves no HTTP) and `drip-bridge db upgrade` for the release
# step. Give it DATABASE_URL (PostgreSQL): a container's own disk is not shared with
# the other processes. Dependencies are the locked ones (uv.lock), never re-resolved.
#
#   docker build -t drip-bridge .
#   docker run --rm -e DATABASE_URL=postgres://... -e DRIP_ACCOUNT_ID=... \
#     -e DRIP_API_TOKEN=... -e BRIDGE_WRITE_KEY=... -p 8000:8000 drip-bridge

FROM python:3.11-slim AS build
RUN pip install --no-cache-dir 'uv>=0.9,<1'
WORKDIR /app
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
# Dependencies first (a layer that changes only with the lock), then the project.
COPY pyproject.toml uv.lock .python-version README.md LICENSE ./
RUN uv sync --locked --no-dev --no-install-project
COPY app ./app
RUN uv sync --locked --no-dev --no-editable

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 bridge
WORKDIR /app
COPY --from=build /app/.venv /app/.venv
COPY wsgi.py Procfile ./
# gunicorn_conf binds 0.0.0.0:$PORT.
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 PORT=8000
USER bridge
EXPOSE 8000
# Liveness of the web process (README, "Health checks"); python, as the image has no curl.
# The web process stops within 8 s of SIGTERM (gunicorn's graceful_timeout), inside
# `docker stop`'s 10 s.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]
CMD ["python", "-m", "app.web_process", "wsgi:app"]
