# syntax=docker/dockerfile:1
FROM python:3.11-slim-bookworm AS build
RUN pip install --no-cache-dir "uv>=0.5,<1"
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY bot ./bot
COPY cogs ./cogs
RUN uv sync --frozen --no-dev

FROM python:3.11-slim-bookworm
RUN useradd --create-home --uid 10001 suno \
    && mkdir /data && chown suno:suno /data
WORKDIR /app
COPY --from=build --chown=suno:suno /app /app
ENV PATH="/app/.venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    DATABASE_URL=sqlite:////data/suno-bot.sqlite3
USER suno
VOLUME ["/data"]
STOPSIGNAL SIGTERM
CMD ["python", "-m", "bot"]
