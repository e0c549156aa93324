#!/usr/bin/env bash
# The project's test command (README "Set up"; CI runs exactly this).
# Checks formatting and lints, builds the dsync binary the cluster tests run
# as real processes, runs every test of the workspace, then holds the live
# server to docs/api_spec.yaml (schemathesis, from PyPI) and tests the Docker
# deployment (skipped, saying so, on a machine without a Docker engine).
set -euo pipefail
cd "$(dirname "$0")/.."

# rustfmt and clippy ship with the toolchain; add them if this one lacks them.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  rustup component add rustfmt clippy
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (warnings denied)"
cargo clippy --workspace --all-targets -- -D warnings

# The cache tests run a real redis-server (tests/tests/common/redis.rs).
if ! command -v redis-server >/dev/null 2>&1; then
  echo "== install redis-server for the cache tests"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server
fi

echo "== build the dsync binary for the cluster tests"
cargo build -p dsync-server --bin dsync

echo "== cargo test"
cargo test --workspace --no-fail-fast -- "$@"

echo "== the API spec held to a live node (scripts/api_spec_test.sh)"
scripts/api_spec_test.sh

echo "== the Docker deployment (scripts/docker_test.sh)"
# The debug binary was just built; the image does not need a release build.
DSYNC_DOCKER_PROFILE=debug scripts/docker_test.sh
