#!/bin/sh
# `server <dir>` as MinIO takes it: serve S3 on port 9000 (moto keeps objects in memory).
set -eu
if [ "${1:-}" = server ]; then
  exec /opt/moto/bin/moto_server -H 0.0.0.0 -p 9000
fi
exec "$@"
