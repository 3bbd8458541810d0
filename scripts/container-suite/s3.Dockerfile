# A stand-in for the minio/minio image (no image registry is reachable in CI): moto's S3 server
# from PyPI (wheels downloaded on the host into the build context) on the locally built base. It
# answers where MinIO does (port 9000, `server /data`) and ships an `mc` with the three commands
# docker-compose.yml uses (`ready local`, `alias set`, `mb --ignore-existing`).
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
COPY wheels /tmp/wheels
RUN python3 -m venv /opt/moto \
 && /opt/moto/bin/pip install --no-cache-dir --no-index --find-links /tmp/wheels 'moto[server]' \
 && rm -rf /tmp/wheels
COPY s3-entrypoint.sh /usr/local/bin/s3-entrypoint.sh
COPY s3-mc.py /usr/local/bin/mc
RUN useradd --system --uid 10002 s3
USER s3
EXPOSE 9000
ENTRYPOINT ["/usr/local/bin/s3-entrypoint.sh"]
CMD ["server", "/data"]
