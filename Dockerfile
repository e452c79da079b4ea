# bidsmrs BIDS-App container.
#   docker build -t bidsmrs .
#   docker run --rm --read-only --tmpfs /tmp -v /data/ds:/data:ro -v /out:/out bidsmrs /data /out participant
# The install steps below are the ones tests/integration/test_dockerfile.py replays (wheel -> fresh venv -> run.py).
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml setup.py version README.md LICENSE run.py ./
COPY bidsmrs ./bidsmrs
COPY boilerplate ./boilerplate
RUN python -m pip install --no-cache-dir build \
 && python -m build --wheel --outdir /wheels .

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="bidsmrs" \
      org.opencontainers.image.description="BIDS-App for single-voxel MR spectroscopy" \
      org.opencontainers.image.licenses="MIT"
ENV PYTHONDONTWRITEBYTECODE=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    XDG_CACHE_HOME=/tmp/cache \
    BIDSMRS_CACHE=/tmp/bidsmrs-cache \
    OMP_NUM_THREADS=1 \
    BIDSMRS_CONTAINER_TYPE=docker
COPY --from=build /wheels /wheels
RUN python -m venv /opt/bidsmrs \
 && /opt/bidsmrs/bin/pip install --no-cache-dir /wheels/*.whl \
 && rm -rf /wheels \
 && useradd --create-home --uid 1000 bidsmrs
ENV PATH=/opt/bidsmrs/bin:$PATH
COPY --chmod=0755 run.py /run.py
COPY version /version
USER bidsmrs
WORKDIR /tmp
ENTRYPOINT ["/opt/bidsmrs/bin/python", "/run.py"]
