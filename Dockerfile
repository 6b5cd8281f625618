# The image runs what the README's quick start runs: `stratum serve`, on the embedded
# PostgreSQL unless DATABASE_URL is set.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 stratum
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER stratum
WORKDIR /home/stratum
ENV STRATUM_DATA_DIR=/home/stratum/data \
    PYTHONUNBUFFERED=1
VOLUME ["/home/stratum/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=3)" || exit 1
CMD ["stratum", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
