# Two entry points on a fresh machine: `make demo` (main job) and `make test`.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: install install-spark demo test lint lint-sql docs lock dagster clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r requirements.lock
	$(VENV)/bin/pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# The spark target's own environment (dbt-spark + pyspark, ~0.5 GB; Java 17 runs it): the main
# lock plus requirements-spark.lock in .venv-spark. Not in .venv: with pyspark installed, a
# `python -c` process importing GX (an xdist worker) exits silently (docs/engines.md, "Spark").
SPARK_VENV := .venv-spark
SPARK_STAMP := $(SPARK_VENV)/.installed
$(SPARK_STAMP): pyproject.toml requirements.lock requirements-spark.lock
	test -x $(SPARK_VENV)/bin/python || $(PYTHON) -m venv $(SPARK_VENV)
	$(SPARK_VENV)/bin/pip install --quiet -r requirements.lock -r requirements-spark.lock
	$(SPARK_VENV)/bin/pip install --quiet --no-deps -e .
	touch $(SPARK_STAMP)

install-spark: $(SPARK_STAMP)

# Generate a demo landing zone, dbt build, quality gate, print a tag summary.
demo: $(STAMP)
	$(VENV)/bin/crm-tags demo

# One worker per core, a test file per worker: a test builds dbt in a subprocess that keeps
# about one core busy, and a file's module fixtures (a built warehouse) are then built once.
# Files go out in collection order, longest first (tests/conftest.py, LONGEST_FIRST).
test: $(STAMP)
	$(VENV)/bin/pytest -q --numprocesses auto --dist loadfile --no-loadscope-reorder

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests orchestration

# SQL lint: sqlfluff with the dbt templater on the compiled models (.sqlfluff: DuckDB dialect,
# the project's style, and why some rules are off). It compiles the project (about a minute),
# so it is a target of its own; .ci/run runs both. dbt compiles against a scratch file, never a
# warehouse: an empty one also makes every incremental model compile its full-build SQL.
lint-sql: $(STAMP)
	mkdir -p target
	rm -f target/sqlfluff.duckdb
	CRM_WAREHOUSE_PATH=target/sqlfluff.duckdb $(VENV)/bin/sqlfluff lint models tests/dbt

lock: $(STAMP)
	$(VENV)/bin/pip freeze --exclude-editable > requirements.lock.new

# The dbt docs site: target/docs/index.html, one page that opens offline (crm-tags docs).
docs: $(STAMP)
	$(VENV)/bin/crm-tags docs

dagster: $(STAMP)
	$(VENV)/bin/crm-tags dagster-dev

clean:
	rm -rf data/warehouse.duckdb target logs
