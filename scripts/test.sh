#!/usr/bin/env bash
# Sets up the machine and runs every check: lint, types, unit tests, e2e tests
# of the built CLI on the real kernel, and the packaging checks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
pnpm lint
pnpm typecheck
pnpm test
bash scripts/check-packages.sh
