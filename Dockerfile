FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 TF_CPP_MIN_LOG_LEVEL=3
WORKDIR /app
COPY setup.cfg pyproject.toml README.md ./
COPY tuner_app ./tuner_app
# Built into the package as tuner_app.search_spaces: `--space NAME` finds them from any directory.
COPY search_spaces ./search_spaces
RUN pip install --upgrade pip && pip install .
# Runs, caches and the MLflow store live under /work: mount a volume there to keep them.
WORKDIR /work
ENTRYPOINT ["tuner-app"]
CMD ["--help"]
