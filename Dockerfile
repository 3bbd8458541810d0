# Beacon's image: a Rust build stage and a small Debian runtime (non-root, CA certificates, the
# data folder as a volume, a health check on Beacon's own readiness).
#
#   docker build -t beacon .                          # from source (needs a Rust 1.85+ image)
#   docker build -t beacon --target prebuilt \
#     --build-arg BEACON_BINARY=target/release/beacon .   # from a binary built on this host
#
# Base images are build arguments, so the same file builds with the usual public images or with
# locally made ones (CI: scripts/container-suite.sh). The binary must be built against the
# runtime's glibc (Debian bookworm or older).
ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUNTIME_IMAGE} AS runtime-base
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 beacon \
 && useradd --system --uid 10001 --gid beacon --home-dir /data --no-create-home --shell /usr/sbin/nologin beacon \
 && mkdir -p /data \
 && chown beacon:beacon /data
# The data folder holds the SQLite database, the generated secret key, transcripts, search
# indexes and the embedding model, downloaded into it once at the first start (or set
# BEACON_EMBED_MODEL_DIR to a model folder you mount).
ENV BEACON_DATA_DIR=/data \
    BEACON_HTTP_ADDR=0.0.0.0:8080 \
    BEACON_LOG_FORMAT=json
VOLUME ["/data"]
WORKDIR /data
EXPOSE 8080
USER 10001:10001
# `beacon health` asks this container's /health/ready (database, Redis, shards): no curl needed.
HEALTHCHECK --interval=10s --timeout=6s --start-period=120s --retries=3 CMD ["/usr/local/bin/beacon", "health"]
ENTRYPOINT ["/usr/local/bin/beacon"]
CMD ["run"]

# The runtime with a binary built on the host (CI: its release build, target/release/beacon).
FROM runtime-base AS prebuilt
ARG BEACON_BINARY=target/release/beacon
COPY ${BEACON_BINARY} /usr/local/bin/beacon

# From source. (Stages are in this order because Docker's legacy builder builds every stage up
# to the target: `--target prebuilt` then needs no Rust image.)
FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p beacon --bin beacon \
 && install -m 0755 target/release/beacon /usr/local/bin/beacon

# The default target: the runtime with the binary built in the build stage.
FROM runtime-base AS runtime
COPY --from=build /usr/local/bin/beacon /usr/local/bin/beacon
