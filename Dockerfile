# syntax=docker/dockerfile:1
# The trailkeeper operator image. Two stages: `build` installs trailkeeper and its pinned dependencies
# into a virtualenv; `runtime` copies only that virtualenv onto a clean slim Python, so no pip cache,
# source tree or build backend ends up in the image.
#
#   docker build -t trailkeeper:0.1.0 .
#
# Both stages must use the same base: the virtualenv's interpreter links to the base's Python.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/trailkeeper
WORKDIR /src
COPY constraints.txt pyproject.toml ./
COPY operator ./operator
# Every runtime dependency at the version in constraints.txt; the cache mount keeps downloads across
# builds without putting them in a layer.
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/trailkeeper/bin/pip install -c constraints.txt . \
 && /opt/trailkeeper/bin/pip check
# Constraints only pin what they list: fail the build if a dependency outside the list was pulled in
# (a new transitive dependency), rather than shipping it unpinned.
RUN /opt/trailkeeper/bin/pip freeze --exclude trailkeeper | sort -f > /tmp/installed \
 && grep -v -e '^#' -e '^$' constraints.txt | sort -f > /tmp/pinned \
 && diff -u /tmp/pinned /tmp/installed

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="trailkeeper" \
      org.opencontainers.image.description="A Kubernetes operator that manages AWS CloudTrail" \
      org.opencontainers.image.licenses="Apache-2.0"
# The root filesystem is read-only in the Deployment: no .pyc writes, unbuffered logs.
ENV PATH=/opt/trailkeeper/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# A fixed numeric user, so Kubernetes can verify runAsNonRoot; it is in /etc/passwd because kopf names
# itself by user name when POD_ID is not set.
RUN groupadd --system --gid 10001 trailkeeper \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin trailkeeper
COPY --from=build /opt/trailkeeper /opt/trailkeeper
USER 10001:10001
# kopf's health endpoint (--liveness) and the Prometheus metrics (--metrics-port) of the chart's defaults.
EXPOSE 8080 9090
ENTRYPOINT ["trailkeeper", "run"]
CMD ["-A", "--liveness=http://0.0.0.0:8080/healthz", "--metrics-port=9090"]
