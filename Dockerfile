# Conv3D Lab in a container (CPU; the image does not include requirements-gpu.txt).
#   docker build -t conv3d-lab .
#   docker run -p 8501:8501 -v conv3d-lab:/lab -e CONV3D_LAB_DEMO=1 conv3d-lab
# Everything comes from Debian's packages and PyPI. The base defaults to Docker Hub's
# debian:bookworm-slim; where Docker Hub cannot be reached, tools/container_check.sh builds an
# equivalent base from Debian's mirrors (debootstrap) and passes it as BASE_IMAGE (README "Hosting").
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

# bookworm's python3 is 3.11, the version the lab is tested on. curl is for the health check.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-venv ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# A virtual environment: Debian's own python3 refuses `pip install` into the system (PEP 668).
# Workers are started with sys.executable, so they run in the same environment.
RUN python3 -m venv "$VIRTUAL_ENV"
COPY requirements.txt /app/requirements.txt
RUN pip install -r /app/requirements.txt

# The database, run folders and dataset cache live on a volume, not in the image.
ENV CONV3D_LAB_HOME=/lab \
    CONV3D_LAB_DATA=/lab/data
RUN useradd --create-home --uid 1000 lab && mkdir -p /lab && chown lab:lab /lab
WORKDIR /app
COPY . /app
USER lab
VOLUME ["/lab"]

# Address and port as settings, not flags, so `-e STREAMLIT_SERVER_PORT=...` can move the lab
# (needed with --network host, where the container shares the host's ports).
ENV STREAMLIT_SERVER_ADDRESS=0.0.0.0 \
    STREAMLIT_SERVER_PORT=8501
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${STREAMLIT_SERVER_PORT}/_stcore/health" || exit 1

CMD ["streamlit", "run", "streamlit_app.py"]
