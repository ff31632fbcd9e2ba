# codex-lb container: multi-stage, runs as an unprivileged user, keeps its data in /var/lib/codex-lb.
#   docker build -t codex-lb .
#   docker run -d -p 2455:2455 -p 1455:1455 -v codex-lb-data:/var/lib/codex-lb codex-lb

FROM node:20-slim AS dashboard
WORKDIR /src/dashboard
COPY dashboard/package.json dashboard/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY dashboard ./
RUN npm run build

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md requirements.lock ./
COPY server ./server
COPY schema ./schema
COPY --from=dashboard /src/server/static ./server/static
# The exact versions of requirements.lock (scripts/lock refreshes it), then codex-lb itself.
RUN pip wheel --no-cache-dir --wheel-dir /wheels -r requirements.lock \
    && pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    CODEX_LB_IN_CONTAINER=1 \
    CODEX_LB_DATA_DIR=/var/lib/codex-lb \
    CODEX_LB_WORKERS=2
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels /wheels/*.whl && rm -rf /wheels \
    && groupadd --system --gid 10001 codexlb \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/codex-lb --shell /usr/sbin/nologin codexlb \
    && install -d -o codexlb -g codexlb -m 0700 /var/lib/codex-lb
USER 10001:10001
WORKDIR /var/lib/codex-lb
VOLUME ["/var/lib/codex-lb"]
EXPOSE 2455 1455
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:2455/health/ready', timeout=4)"]
CMD ["sh", "-c", "exec sanic server.app --host 0.0.0.0 --port 2455 --workers \"$CODEX_LB_WORKERS\""]
