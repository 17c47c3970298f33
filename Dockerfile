# syntax=docker/dockerfile:1.7
# The tabjob image: the API and the CPU workers (lanes small and large). The process is chosen
# by arguments: `tabjob api ...` (default) or `tabjob worker --lane small`.
#
# Two stages: the builder resolves dependencies from uv.lock into /app/.venv; the final stage
# copies only that virtual environment onto the same Python base, so no compiler, uv or cache
# reaches the runtime image. Both stages use the same interpreter path (/usr/local/bin/python3.11),
# which the venv's symlinks point at.

# Bases are pinned to exact versions (the builder and the runtime must be the same Python image).
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM python:3.11.18-slim-bookworm AS builder

COPY --from=uv /uv /usr/local/bin/uv

# Compile bytecode at build time (the runtime root FS is read-only), copy files out of the cache
# mount instead of hard-linking, and never download another interpreter: the venv must use the
# base image's Python, which the final stage has at the same path.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=0 \
    UV_PROJECT_ENVIRONMENT=/app/.venv

WORKDIR /app

# Dependencies first, in their own layer: it is rebuilt only when the lock changes.
# --no-dev --no-default-groups keeps the dev and infra groups (pytest, pulumi...) out, and no
# --extra keeps the optional ones out: `local` (the laptop's Valkey and SeaweedFS binaries) and
# `gpu` (XGBoost with its CUDA libraries, Dockerfile.gpu only).
# Bind-mount targets are absolute: podman and buildah refuse relative ones.
# --no-install-workspace: the server and client/ (a workspace member) come in the next step.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=/app/uv.lock \
    --mount=type=bind,source=pyproject.toml,target=/app/pyproject.toml \
    uv sync --frozen --no-dev --no-default-groups --no-editable --no-install-workspace

# Then the project itself, installed as a wheel (--no-editable) so the venv does not point back
# at /app's sources.
COPY pyproject.toml uv.lock README.md ./
COPY app ./app
COPY ml ./ml
COPY client ./client
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-default-groups --no-editable


FROM python:3.11.18-slim-bookworm AS runtime

# A fixed numeric uid, so Kubernetes can enforce runAsNonRoot without resolving names.
RUN groupadd --system --gid 10001 tabjob \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /tmp --shell /usr/sbin/nologin tabjob

COPY --from=builder --chown=root:root /app/.venv /app/.venv

# HOME=/tmp: the root FS is read-only in the cluster, /tmp is the writable emptyDir.
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TABJOB_SCRATCH_DIR=/tmp \
    HOME=/tmp

WORKDIR /tmp
USER 10001:10001

# 8000: the API; 8001: the worker's /healthz (TABJOB_WORKER_HEALTH_PORT).
EXPOSE 8000 8001

ENTRYPOINT ["tabjob"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000"]
