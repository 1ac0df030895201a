# Collegium node image. Multi-stage: the first stage builds the wheel (which carries the
# contract artifacts, the migrations and the built front-end) and installs it into a virtual
# environment; the second copies only that environment and runs as a non-root user.
#
# PYTHON_IMAGE: any image with python3 (3.11+) and its venv module at the same path in both
# stages; the official image by default.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
RUN python3 -m venv /opt/collegium \
    && /opt/collegium/bin/pip install --no-cache-dir --disable-pip-version-check --upgrade pip
COPY pyproject.toml setup.py MANIFEST.in README.md alembic.ini ./
COPY node ./node
COPY migrations ./migrations
COPY contracts/build ./contracts/build
COPY frontend/dist ./frontend/dist
RUN /opt/collegium/bin/pip wheel --no-cache-dir --disable-pip-version-check --no-deps \
        --wheel-dir /wheels . \
    && /opt/collegium/bin/pip install --no-cache-dir --disable-pip-version-check /wheels/*.whl \
    && /opt/collegium/bin/collegium --version

FROM ${PYTHON_IMAGE}
COPY --from=build /opt/collegium /opt/collegium
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home collegium \
    && mkdir -p /data && chown collegium:collegium /data
ENV PATH=/opt/collegium/bin:$PATH \
    COLLEGIUM_DATA_DIR=/data \
    PYTHONUNBUFFERED=1
USER collegium
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
# /livez: answers as soon as the API listens, i.e. once the registry is deployed or joined.
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=5 \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/livez', timeout=2)"]
ENTRYPOINT ["collegium"]
CMD ["up", "--host", "0.0.0.0", "--port", "8000"]
