# syntax=docker/dockerfile:1
# memabrad daemon image: `docker build -t memabrad .` at the repository root.
# Runs `memabrad run -c /etc/memabrad/config.yaml` as a non-root user. Mount your own config.yaml
# over /etc/memabrad/config.yaml (the image carries the documented defaults) and override any key
# with MEMABRAD_<SECTION>__<KEY> environment variables. The store lives on the /var/lib/memabrad volume.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- build: install memabrad and its dependencies into a self-contained virtualenv ----------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/memabrad
WORKDIR /src
# Dependencies first, so code changes do not re-download them.
COPY pyproject.toml README.md ./
RUN mkdir -p memabrad && touch memabrad/__init__.py \
    && /opt/memabrad/bin/pip install . \
    && /opt/memabrad/bin/pip uninstall -y memabrad
COPY memabrad ./memabrad
RUN /opt/memabrad/bin/pip install --no-deps . \
    && /opt/memabrad/bin/python -m compileall -q /opt/memabrad/lib

# -- runtime ------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="memabrad" \
      org.opencontainers.image.description="Keeps an agent's router learning safely from live traffic." \
      org.opencontainers.image.licenses="Apache-2.0"
# uid/gid 10001: keep in step with USER below and runAsUser/fsGroup in deploy/kubernetes/deployment.yaml.
RUN groupadd --system --gid 10001 memabrad \
    && useradd --system --uid 10001 --gid memabrad --home-dir /var/lib/memabrad --no-create-home \
       --shell /usr/sbin/nologin memabrad \
    && mkdir -p /var/lib/memabrad /etc/memabrad \
    && chown memabrad:memabrad /var/lib/memabrad
COPY --from=build /opt/memabrad /opt/memabrad
COPY config.yaml /etc/memabrad/config.yaml
ENV PATH=/opt/memabrad/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MEMABRAD_STORE__BASE_DIR=/var/lib/memabrad \
    MEMABRAD_HTTP__HOST=0.0.0.0 \
    MEMABRAD_HTTP__PORT=9464
VOLUME ["/var/lib/memabrad"]
WORKDIR /var/lib/memabrad
USER 10001:10001
EXPOSE 9464
# /healthz answers 200 while the process and its loops run (slim images have no curl).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('MEMABRAD_HTTP__PORT', '9464'), timeout=4)"]
# SIGTERM: the daemon checkpoints, commits and exits 0 within 10 s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["memabrad"]
CMD ["run", "-c", "/etc/memabrad/config.yaml"]
