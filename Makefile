# Everything starts from a plain Python >= 3.11: the first target bootstraps uv into .tools/,
# and uv builds .venv from uv.lock.
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/bin/uv
BIN := .venv/bin
export UV_PROJECT_ENVIRONMENT := .venv

.PHONY: run test lint typecheck pytest bench sync clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.venv/.synced: pyproject.toml uv.lock $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

sync: .venv/.synced

run: sync
	$(BIN)/pms dev

lint: sync
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: sync
	$(BIN)/mypy

pytest: sync
	$(BIN)/python -m pytest

test: lint typecheck pytest

bench: sync
	$(BIN)/python -m bench

clean:
	rm -rf .venv .tools .mypy_cache .ruff_cache
