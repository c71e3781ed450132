# syntax=docker/dockerfile:1.7
# Serving image: the workspace installed from uv.lock and the vLLM (CUDA) backend env pre-built by
# `mg-env build`. Build from the repository root:
#   docker build -f docker/serve.Dockerfile -t mildgiraffe-serve .
# The CUDA libraries come with torch's wheels (nvidia-* packages); the base image only has to match the
# host driver, so the small `base` flavour is enough.
ARG CUDA_IMAGE=nvidia/cuda:13.0.0-base-ubuntu24.04
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

FROM ${CUDA_IMAGE} AS base
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    LANG=C.UTF-8
# Python 3.12 is Ubuntu 24.04's; the locks have a py312 variant. gcc and the Python headers: vLLM's
# Triton kernels compile a small launcher with them at run time.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.12 python3.12-venv python3.12-dev gcc libc6-dev ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# The backend env first, in a stage of its own: it takes minutes and gigabytes, and depends only on
# mg-env (its committed locks) and mg-fs, so editing other packages does not rebuild it. mg-env here
# is a build tool, installed from those two folders; the image's own install is the uv.lock one below.
FROM base AS backends
COPY --from=uv /uv /uvx /usr/local/bin/
# copy: the uv cache is a build mount, gone from the image, so nothing may be hardlinked to it.
ENV UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    UV_PYTHON_DOWNLOADS=never \
    MG_ENV_HOME=/opt/mg-env
COPY packages/mg-fs /src/packages/mg-fs
COPY packages/mg-env /src/packages/mg-env
# Venvs are not relocatable: the env is built under /opt/mg-env, the path the runtime stage copies it to.
# A build host has no GPU: MG_ENV_CUDA=1 builds the CUDA `vllm` profile, not `vllm-cpu`.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv venv /opt/mg-env-tool --python python3.12 \
    && uv pip install --python /opt/mg-env-tool/bin/python /src/packages/mg-fs /src/packages/mg-env \
    && MG_ENV_CUDA=1 /opt/mg-env-tool/bin/mg-env build vllm

FROM base AS build
COPY --from=uv /uv /uvx /usr/local/bin/
ENV UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/mg/venv
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY packages packages
COPY apps apps
# --frozen: exactly uv.lock, never re-resolved. --no-editable: the members are installed as wheels, so
# /src is not needed at run time.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package mg-cli --python python3.12

FROM base AS runtime
COPY --from=uv /uv /usr/local/bin/
COPY --from=build /opt/mg/venv /opt/mg/venv
COPY --from=backends /opt/mg-env /opt/mg-env
RUN useradd --create-home --uid 10001 --shell /bin/bash mg
# MG_ENV_CUDA=1: `vllm` means the CUDA env built above, also where nvidia-smi is not mounted.
ENV PATH=/opt/mg/venv/bin:$PATH \
    MG_ENV_HOME=/opt/mg-env \
    MG_ENV_CUDA=1
USER 10001
WORKDIR /home/mg
EXPOSE 8000
ENTRYPOINT ["mg"]
CMD ["--help"]
