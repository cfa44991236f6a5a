# The two commands of the README: `make demo` and `make test`. Both do all set-up
# on a fresh machine: a virtualenv with the pinned packages, and Apache Kafka
# fetched from Maven Central into deploy/kafka/.cache (first run only). `make test`
# also needs Prometheus and promtool: from PATH, else Debian's package unpacked into
# deploy/prometheus/.cache (first run only; see sync_worker/devprometheus.py).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_ARGS ?=
PYTEST_ARGS ?=

# The test broker lives apart from the development one (port 9092, var/kafka),
# so `make test` never touches a broker you are using. It starts empty every time:
# each test run creates topics of its own, and those of earlier runs would pile up
# (15,000 partitions exhausted the broker's heap on a developer's machine).
TEST_KAFKA_PORT := 19092
TEST_KAFKA_CONTROLLER_PORT := 19192
TEST_KAFKA_DIR := var/test-kafka
TEST_KAFKA := --port $(TEST_KAFKA_PORT) --controller-port $(TEST_KAFKA_CONTROLLER_PORT) --data-dir $(TEST_KAFKA_DIR)

.PHONY: demo test lint setup kafka prometheus clean

demo: setup kafka
	$(BIN)/stockcast demo $(DEMO_ARGS)

test: setup kafka prometheus lint
	@$(BIN)/stockcast dev down $(TEST_KAFKA)
	@rm -rf $(TEST_KAFKA_DIR)
	@$(BIN)/stockcast dev up $(TEST_KAFKA)
	@status=0; \
	TEST_KAFKA_BOOTSTRAP=127.0.0.1:$(TEST_KAFKA_PORT) $(BIN)/pytest $(PYTEST_ARGS) || status=$$?; \
	$(BIN)/stockcast dev down $(TEST_KAFKA); \
	exit $$status

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --constraint constraints.txt --editable '.[dev]'
	touch $(STAMP)

kafka: setup
	$(BIN)/stockcast dev fetch

prometheus: setup
	$(BIN)/stockcast dev prometheus fetch

clean:
	-$(BIN)/stockcast dev down $(TEST_KAFKA)
	-$(BIN)/stockcast dev down
	rm -rf $(VENV) var deploy/kafka/.cache deploy/prometheus/.cache
