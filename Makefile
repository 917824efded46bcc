# 房本助手 — one entry point. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY311 ?= $(shell bash scripts/find-python.sh 3.11)
PY310 ?= $(shell bash scripts/find-python.sh 3.10)
API_PY := api/.venv/bin/python
BOT_PY := bot/.venv/bin/python

.PHONY: help install install-api install-bot install-browser run test lint train evaluate bench bench-scale \
        import-ledger create-admin reset-password lock migration audit

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

install: install-api install-bot ## create api/.venv (3.11) and bot/.venv (3.10) from the lock files

install-api: api/.venv/.installed
api/.venv/.installed: api/requirements.lock
	test -x $(API_PY) || $(PY311) -m venv api/.venv
	$(API_PY) -m pip install -q --disable-pip-version-check -r api/requirements.lock
	touch $@

install-bot: bot/.venv/.installed
bot/.venv/.installed: bot/requirements.lock
	test -x $(BOT_PY) || $(PY310) -m venv bot/.venv
	$(BOT_PY) -m pip install -q --disable-pip-version-check -r bot/requirements.lock
	touch $@

install-browser: ## Debian's chromium, chromedriver and a Chinese font for the browser tests
	@if ! command -v chromium >/dev/null || ! fc-list 2>/dev/null | grep -qi "wenquanyi"; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    chromium chromium-driver fonts-wqy-microhei >/dev/null; fi

run: install ## start api, action server and Rasa on embedded defaults (Ctrl-C stops all)
	bash scripts/run.sh

test: install install-browser ## lint, then the whole suite (what .ci/run calls)
	bash scripts/test.sh

LINT_PATHS := api/app api/alembic/env.py bench bot/actions bot/channels bot/components bot/privacy bot/scripts tests bot/speedups.py bot/trainer

lint: install-api install-bot ## ruff, mypy --strict on api/app and on bot/actions (bot venv, 3.10)
	api/.venv/bin/ruff check $(LINT_PATHS)
	api/.venv/bin/ruff format --check $(LINT_PATHS)
	cd api && .venv/bin/mypy app
	api/.venv/bin/mypy --python-executable $(BOT_PY) --python-version 3.10 bot/actions

audit: install ## pip-audit on both lock files (reviewed ignores: audit/ignore.toml)
	bash scripts/audit.sh

train: install-bot ## train the Rasa model if its data, config or dictionary changed
	bash scripts/train.sh

evaluate: train ## held-out NLU report, model next to the baseline (bot/results/nlu_summary.json)
	bash scripts/evaluate.sh

bench: install ## benchmarks; each prints its figures, all go to bench/results/<time>.json
	bash bench/run_all.sh

bench-scale: install ## only the scale figures beside their anchors (issue 15), same JSON
	bash bench/run_all.sh scale

import-ledger: install-api ## import one ledger file: make import-ledger FILE=path
	@test -n "$(FILE)" || (echo "用法: make import-ledger FILE=台账.xlsx" >&2; exit 2)
	cd api && .venv/bin/python -m app.ledger.cli import "$(abspath $(FILE))"

create-admin: install-api ## create a staff account: make create-admin NAME=zhang ROLE=admin [DEPT=code]
	@test -n "$(NAME)" || (echo "用法: make create-admin NAME=用户名 ROLE=admin|clerk|officer|supervisor|maintainer [DEPT=部门代码]" >&2; exit 2)
	cd api && .venv/bin/python -m app.staff.cli create-user --username "$(NAME)" --role "$(or $(ROLE),admin)" $(if $(DEPT),--department "$(DEPT)")

reset-password: install-api ## new random password for a staff account: make reset-password NAME=demo_clerk
	@test -n "$(NAME)" || (echo "用法: make reset-password NAME=用户名" >&2; exit 2)
	cd api && .venv/bin/python -m app.staff.cli reset-password --username "$(NAME)"

lock: ## re-pin both environments from their .in files
	$(API_PY) -m pip freeze --exclude-editable | grep -v '^pkg_resources' > api/requirements.lock
	$(BOT_PY) -m pip freeze --exclude-editable | grep -v '^pkg_resources' > bot/requirements.lock

migration: ## regenerate the initial migration from the models
	bash scripts/regen_migration.sh
