#!/bin/sh
# The project's one test command (README, .ci/run): lint, format, types, YAML, tests.
# Run it with the project's virtual environment first on PATH.
set -eu
cd "$(dirname "$0")/.."
echo "== ruff check";       ruff check src tests benchmarks scripts
echo "== ruff format";      ruff format --check src tests benchmarks scripts
echo "== mypy";             mypy
echo "== import contracts (pyproject.toml [tool.importlinter])"
contracts=$(lint-imports --no-cache --no-logo) || { echo "$contracts"; exit 1; }
echo "$contracts" | tail -n 1
echo "== yamllint";         yamllint -s rules patient_fixtures
echo "== bonecds rules check"; bonecds rules check rules
echo "== bonecds test (scenarios, golden snapshots, rule coverage)"
bonecds test patient_fixtures --coverage --fail-under 100 > .scenario-report.txt || { cat .scenario-report.txt; exit 1; }
tail -n 1 .scenario-report.txt
echo "== pytest"
# pytest exits 5 when it collects nothing; `set -e` turns that into a failure too. The slow
# 100,000-profile soak is opt-in (pyproject.toml): `sh scripts/test.sh -m slow` runs it alone.
python -m pytest -p no:cacheprovider "$@"
