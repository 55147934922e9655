# Collapse Lab server image. The default build installs the CPU build of PyTorch (small);
# `--build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124` (the compose "gpu" profile)
# installs a CUDA build instead; `--build-arg EXTRAS=[ray]` adds Ray (the compose "ray" profile).
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
# optional extras of the package, e.g. "[ray]" for the Ray backend (the compose "ray" profile)
ARG EXTRAS=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1

WORKDIR /app
RUN pip install "torch>=2.4,<3" --index-url "$TORCH_INDEX"
COPY pyproject.toml setup.py README.md ./
COPY collapse_lab collapse_lab
COPY trainer trainer
COPY server server
COPY frontend frontend
RUN pip install ".${EXTRAS}"

ENV COLLAPSE_LAB_DATA_DIR=/data COLLAPSE_LAB_HOST=0.0.0.0 COLLAPSE_LAB_PORT=8000
VOLUME /data
EXPOSE 8000
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/health')"
CMD ["collapse-lab", "serve"]
