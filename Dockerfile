# syntax=docker/dockerfile:1
# The trailkeeper operator image. Two stages: `build` installs trailkeeper and its pinned dependencies
# into a virtualenv that has no pip; `runtime` copies only that virtualenv onto the same slim Python, from
# which pip, setuptools and the wheels ensurepip bundles are removed, so no installer, build backend,
# source tree or pip cache ends up in the image.
#
#   docker build -t registry.example.com/trailkeeper:0.1.0 \
#     --build-arg REVISION="$(git rev-parse HEAD)" --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" .
#
# Both stages use the same base (the virtualenv's interpreter links to the base's Python), pinned by
# digest: a rebuild gets the same base until the digest is changed on purpose. To move to a newer base
# (a Python patch release, Debian security fixes), read the current digest of the tag's multi-platform
# index and put it in PYTHON_DIGEST, then rebuild and run `make test`:
#
#   docker buildx imagetools inspect python:3.11-slim-bookworm --format '{{json .Manifest.Digest}}'
#   # or: crane digest python:3.11-slim-bookworm
#
# (or build once with --build-arg PYTHON_DIGEST=sha256:… to try one). docs/operations.md, "The image".
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG PYTHON_DIGEST=sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91

FROM ${PYTHON_IMAGE}@${PYTHON_DIGEST} AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
# No pip in the virtualenv: the base's pip installs into it from outside (--python).
RUN python -m venv --without-pip /opt/trailkeeper
WORKDIR /src
COPY constraints.txt pyproject.toml ./
COPY operator ./operator
# Every runtime dependency at the version in constraints.txt; the cache mount keeps downloads across
# builds without putting them in a layer.
RUN --mount=type=cache,target=/root/.cache/pip \
    python -m pip --python /opt/trailkeeper/bin/python install -c constraints.txt . \
 && python -m pip --python /opt/trailkeeper/bin/python check
# Constraints only pin what they list: fail the build if a dependency outside the list was pulled in
# (a new transitive dependency), rather than shipping it unpinned; and if pip or setuptools got in.
RUN python -m pip --python /opt/trailkeeper/bin/python freeze --all --exclude trailkeeper \
      | sort -f > /tmp/installed \
 && grep -v -e '^#' -e '^$' constraints.txt | sort -f > /tmp/pinned \
 && diff -u /tmp/pinned /tmp/installed

FROM ${PYTHON_IMAGE}@${PYTHON_DIGEST} AS runtime
ARG PYTHON_IMAGE
ARG PYTHON_DIGEST
# Set by the release build; the defaults describe a local build of this checkout.
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="trailkeeper" \
      org.opencontainers.image.description="A Kubernetes operator that manages AWS CloudTrail" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="https://github.com/trailkeeper/trailkeeper" \
      org.opencontainers.image.url="https://github.com/trailkeeper/trailkeeper" \
      org.opencontainers.image.documentation="https://github.com/trailkeeper/trailkeeper/blob/main/docs/operations.md" \
      org.opencontainers.image.base.name="docker.io/library/${PYTHON_IMAGE}" \
      org.opencontainers.image.base.digest="${PYTHON_DIGEST}"
# The root filesystem is read-only in the Deployment: no .pyc writes, unbuffered logs.
ENV PATH=/opt/trailkeeper/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# The operator never installs anything: take the installers out of the base (pip, setuptools, wheel,
# and the copies ensurepip keeps). A fixed numeric user, so Kubernetes can verify runAsNonRoot; it is in
# /etc/passwd because kopf names itself by user name when POD_ID is not set.
RUN python -m pip uninstall --yes --no-cache-dir --quiet pip setuptools wheel \
 && rm -rf /usr/local/bin/pip* /usr/local/lib/python3.*/ensurepip/_bundled \
 && groupadd --system --gid 10001 trailkeeper \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin trailkeeper
COPY --from=build /opt/trailkeeper /opt/trailkeeper
USER 10001:10001
# kopf's health endpoint (--liveness) and the Prometheus metrics (--metrics-port) of the chart's defaults.
EXPOSE 8080 9090
ENTRYPOINT ["trailkeeper", "run"]
CMD ["-A", "--liveness=http://0.0.0.0:8080/healthz", "--metrics-port=9090"]
