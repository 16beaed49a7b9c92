# syntax=docker/dockerfile:1
# Two stages, after uv's Docker guide: the build stage installs the locked runtime dependencies
# (a layer that changes only with uv.lock), then the bot; the runtime stage gets only the
# virtual environment, owned by root and read-only to the user the bot runs as.

FROM python:3.11-slim-bookworm AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies only: cached until pyproject.toml or uv.lock change, whatever else does.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    uv sync --frozen --no-dev --no-install-project
COPY pyproject.toml uv.lock README.md ./
COPY bot ./bot
COPY cogs ./cogs
# The bot itself, installed into the environment (not linked to /src), compiled to bytecode.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

FROM python:3.11-slim-bookworm AS runtime
RUN groupadd --system --gid 10001 suno \
    && useradd --system --uid 10001 --gid suno --no-create-home --home-dir /data \
        --shell /usr/sbin/nologin suno \
    && mkdir /data \
    && chown suno:suno /data \
    && chmod 700 /data
# Root-owned: the bot's user can read and run its code but not change it.
COPY --from=build /app/.venv /app/.venv
ENV PATH="/app/.venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DATABASE_URL=sqlite:////data/suno-bot.sqlite3
WORKDIR /app
USER suno:suno
VOLUME ["/data"]
STOPSIGNAL SIGTERM
# Asks /healthz when METRICS_ADDRESS is set (docker-compose.yml sets it); passes otherwise.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-m", "bot", "health"]
CMD ["python", "-m", "bot"]
