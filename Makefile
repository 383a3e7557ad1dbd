# The two commands of the README:
#   make weekly   - set up .venv and Airflow, run the weekly DAG for the most recent complete week
#   make test     - set up .venv and run the test suite
.PHONY: weekly test bench lint venv sample

venv:
	@./scripts/bootstrap.sh

weekly: venv
	@bash -c 'source scripts/airflow-env.sh && .venv/bin/pv weekly'

test: venv
	@bash -c 'source scripts/airflow-env.sh && .venv/bin/python -m pytest -q $(PYTEST_ARGS)'

bench: venv
	@bash -c 'source scripts/airflow-env.sh && for b in benchmarks/bench_*.py; do echo "== $$b"; .venv/bin/python $$b || exit 1; done'

lint: venv
	@.venv/bin/ruff check .

sample: venv
	@.venv/bin/python -m sample.generate
