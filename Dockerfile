# The recops image, CPU only: `recops serve` by default, and the image every step of
# the compiled training pipeline runs in (Kubeflow / Vertex AI replace the command
# with `recops pipeline step ...`).
#
#   docker build -t recops:0.1.0 .
#   docker run --rm -p 8000:8000 -v "$PWD/models:/srv/models:ro" recops:0.1.0
#   docker run --rm recops:0.1.0 --help          # any other recops command
#
# Stage `build` makes the recops wheel and a virtualenv with every dependency;
# stage `runtime` copies that virtualenv into a slim image that runs as a non-root
# user. No BuildKit-only syntax, so the classic builder builds it too.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# torch comes first, alone, from the PyTorch CPU index (torch==2.13.0 on PyPI is the
# CUDA build, several GB of nvidia-* wheels); every later install then finds
# torch==2.13.0 (+cpu) already satisfied. The project's development machines cannot
# reach this index, so this build is not run by the project's tests (deploy/README.md
# says what is checked instead).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/recops \
    && /opt/recops/bin/pip install --index-url "${TORCH_INDEX_URL}" torch==2.13.0
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/recops/bin/pip wheel --no-deps --wheel-dir /wheels . \
    && /opt/recops/bin/pip install /wheels/recops-*.whl
# The clients of the PostgreSQL event log and the Redis online state, which recops
# imports only when event_log_url / state_url are set (not dependencies of the
# wheel): the image serves compose and Cloud Run on those backends.
RUN /opt/recops/bin/pip install "psycopg[binary]>=3.2" "redis>=5"

FROM ${PYTHON_IMAGE} AS runtime
# libgomp1: the OpenMP runtime that implicit's manylinux wheel links without bundling.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
# A fixed numeric uid/gid, so that orchestrators' runAsNonRoot checks and volume
# permissions can name it. The two data folders exist and belong to it before the
# volumes mount there: a new named volume takes their owner.
RUN groupadd --system --gid 10001 recops \
    && useradd --system --uid 10001 --gid recops --home-dir /var/lib/recops \
       --shell /usr/sbin/nologin recops \
    && mkdir -p /srv/models /var/lib/recops \
    && chown recops:recops /srv/models /var/lib/recops
COPY --from=build /opt/recops /opt/recops
# The server's settings as RECOPS_* variables (docs/serving-production.md lists them
# all); host 0.0.0.0 so the published port reaches it. The working directory is the
# data folder: pipeline commands keep their run and artifact stores under it.
ENV PATH=/opt/recops/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    RECOPS_HOST=0.0.0.0 \
    RECOPS_PORT=8000 \
    RECOPS_MODEL_REPOSITORY=/srv/models \
    RECOPS_EVENT_LOG_PATH=/var/lib/recops/events.sqlite3
VOLUME ["/srv/models", "/var/lib/recops"]
WORKDIR /var/lib/recops
USER 10001:10001
EXPOSE 8000
# Liveness from the standard library (no curl in a slim image): /healthz answers
# 200 while the process serves; /readyz is for load balancers. The start period
# covers loading the model and replaying the event log into the online state.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('RECOPS_PORT', '8000'), timeout=4)"]
ENTRYPOINT ["recops"]
CMD ["serve"]
