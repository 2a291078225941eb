# attnserve: the serving install (ONNX Runtime, no PyTorch) and the shipped model.
#
#   podman build --pull=never -t attnserve .                      # CPU (default)
#   podman build --pull=never -t attnserve:gpu \
#       --build-arg ONNXRUNTIME='onnxruntime-gpu[cuda,cudnn]' .   # CUDA 12 + cuDNN from PyPI
#   podman run --rm -p 127.0.0.1:8000:8000 -p 127.0.0.1:8001:8001 attnserve   # HTTP, gRPC
#
# See docs/deploy.md. `.ci/containers` builds, runs and checks this image.

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------------------
# builder: a virtualenv in /opt/venv with the serving dependencies and attnserve itself.
FROM ${PYTHON_IMAGE} AS builder

# The ONNX Runtime distribution that replaces `onnxruntime` in pyproject's dependencies:
# `onnxruntime` (CPU) or `onnxruntime-gpu[cuda,cudnn]` (CUDA and cuDNN as pip wheels).
ARG ONNXRUNTIME=onnxruntime

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
RUN python -m venv /opt/venv

# Dependencies first, from pyproject.toml and the lock alone, so that a code change reuses this
# layer. requirements/serving.txt pins every serving package (see `make lock`).
COPY pyproject.toml ./
COPY requirements/serving.txt ./constraints.txt
RUN python -c 'import re, sys, tomllib; \
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]; \
print("\n".join(re.sub(r"^onnxruntime(?=[<>=!~;\s]|$)", sys.argv[1], d) for d in deps))' \
        "${ONNXRUNTIME}" > requirements.txt \
    && cat requirements.txt \
    && /opt/venv/bin/pip install --no-cache-dir --constraint constraints.txt \
        --requirement requirements.txt

# The package itself, without dependencies: they are all in place. (The README is optional:
# the glob lets the build go on without it, pyproject.toml makes the COPY's sources non-empty.)
COPY pyproject.toml README.md* ./
COPY attnserve ./attnserve
COPY artifact ./artifact
COPY service ./service
COPY models ./models
COPY export ./export
COPY cli ./cli
# pip check only on the CPU build (the GPU build swaps the declared onnxruntime). Then what
# serving never imports goes, so that the image holds the pretrained encoder and stays under
# 400 MB: `tokenizers` requires huggingface_hub (with hf-xet, fsspec, PyYAML, tqdm, filelock,
# httpx2, httpcore2) for Tokenizer.from_pretrained, which fetches from a hub and is never
# called here (about 35 MB); rich requires Pygments for syntax highlighting, which the
# heatmaps do not use (10 MB); the installed packages' own test suites, which nothing imports
# (NumPy's are 27 MB); ONNX Runtime's offline tools (transformers optimiser, quantisation:
# export's, which needs PyTorch anyway; 10 MB) and, in the CPU build, its C API library
# (libonnxruntime.so, 34 MB: the Python binding links ONNX Runtime in and never loads it).
# Last, the installer itself: the runtime image installs nothing (about 20 MB less).
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps . \
    && if [ "${ONNXRUNTIME}" = onnxruntime ]; then /opt/venv/bin/pip check \
        && rm /opt/venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.*; fi \
    && /opt/venv/bin/pip uninstall --yes --quiet huggingface_hub hf-xet fsspec PyYAML tqdm \
        filelock httpx2 httpcore2 Pygments \
    && find /opt/venv -depth -type d -name tests -path '*/site-packages/*' -exec rm -rf {} + \
    && rm -rf /opt/venv/lib/python3*/site-packages/onnxruntime/transformers \
        /opt/venv/lib/python3*/site-packages/onnxruntime/quantization \
        /opt/venv/lib/python3*/site-packages/onnxruntime/tools \
    && /opt/venv/bin/pip uninstall --yes --quiet pip setuptools

# The shipped models, readable by the runtime user whatever the modes in the build context
# (an export's directory is created 0700).
COPY model_repository /opt/attnserve/model_repository
RUN chmod -R u=rwX,go=rX /opt/attnserve/model_repository

# ---------------------------------------------------------------------------------------
# runtime: the interpreter, the virtualenv and the model repository; no compilers, no pip.
FROM ${PYTHON_IMAGE} AS runtime

# ORT_DISABLE_TELEMETRY: ONNX Runtime sends no usage events and writes nothing under $HOME
# (the service sets it too; here it also covers any other use of the library in the image).
ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ORT_DISABLE_TELEMETRY=1 \
    ATTNSERVE_HOST=0.0.0.0 \
    ATTNSERVE_PORT=8000 \
    ATTNSERVE_GRPC_PORT=8001 \
    ATTNSERVE_MODEL_REPOSITORY=/opt/attnserve/model_repository

RUN groupadd --system --gid 10001 attnserve \
    && useradd --system --uid 10001 --gid attnserve --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin attnserve

COPY --from=builder /opt/venv /opt/venv
# Wheels of the GPU build bring CUDA and cuDNN under site-packages/nvidia/*/lib; register
# them with the dynamic loader (writes an empty file for the CPU build).
RUN find /opt/venv -type d -path '*/site-packages/nvidia/*/lib' > /etc/ld.so.conf.d/attnserve-nvidia.conf \
    && ldconfig
COPY --from=builder /opt/attnserve/model_repository /opt/attnserve/model_repository

WORKDIR /opt/attnserve
USER 10001:10001
# HTTP, and the Open Inference Protocol over gRPC
EXPOSE 8000 8001

# Readiness, not liveness: healthy once the models are loaded (GET /readyz answers 200).
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('ATTNSERVE_PORT', '8000'), timeout=2)"]

# Exec form: `attnserve` is PID 1 (or tini's child with --init), so SIGTERM reaches
# uvicorn, which stops accepting connections and drains in-flight requests.
STOPSIGNAL SIGTERM
CMD ["attnserve", "serve"]
