# rcgate gateway image: one process, embedded store by default; set RCGATE_STORE__BACKEND=redis to scale out.
FROM python:3.11-slim-bookworm AS web
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs=18.* npm=9.* \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund --omit=dev

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN useradd --create-home --uid 10001 rcgate
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY gateway ./gateway
RUN pip install --no-cache-dir -c constraints.txt .
COPY web ./web
COPY --from=web /src/web/node_modules ./web/node_modules
RUN mkdir -p /data /recordings && chown rcgate:rcgate /data /recordings
USER 10001
ENV RCGATE_DATA_DIR=/data RCGATE_RECORDINGS_DIR=/recordings
EXPOSE 8080 2222
VOLUME ["/data", "/recordings"]
HEALTHCHECK --interval=30s --timeout=3s CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
ENTRYPOINT ["rcgate"]
# Behind a TLS-terminating proxy set RCGATE_HTTP__PUBLIC_URL=https://…; or mount a cert and pass --tls-cert/--tls-key.
CMD ["serve", "--host", "0.0.0.0"]
