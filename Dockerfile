# Conv3D Lab in a container (CPU). Not built or run as part of the lab's tests: see README "Hosting".
#   docker build -t conv3d-lab .
#   docker run -p 8501:8501 -v conv3d-lab:/lab -e CONV3D_LAB_DEMO=1 conv3d-lab
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    # The database, run folders and dataset cache live on a volume, not in the image.
    CONV3D_LAB_HOME=/lab

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .

RUN useradd --create-home lab && mkdir -p /lab && chown lab /lab
USER lab
VOLUME ["/lab"]

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"

CMD ["streamlit", "run", "streamlit_app.py", "--server.address=0.0.0.0", "--server.port=8501"]
