# The few commands a newcomer needs. Everything runs from a private virtualenv (.venv)
# that `make install` creates, so a machine with Python 3.11 (pip, venv) and make is enough:
# what python-ldap compiles against, `make install` installs as root with apt (deploy/build-deps.sh).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Exact versions of every dependency (pip-tools; `make lock` renews it).
CONSTRAINTS := deploy/constraints.txt

.PHONY: install run test image-test bench bench-cpu bench-scale bench-audit-chain load fuzz failover-test lock lint clean

install: $(STAMP)

$(STAMP): setup.cfg setup.py $(CONSTRAINTS)
	@sh deploy/build-deps.sh $(PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e '.[dev,embedded,hsm]'
	touch $(STAMP)

## Start the whole suite: embedded PostgreSQL (unless DATABASE_URL is set), token issuer, Vault,
## Secrets Manager and worker. Ctrl-C stops everything; data stays under .data/.
run: install
	$(PY) -m common.devtools.devstack

## The whole test suite (the same command CI runs).
test: install
	$(PY) -m pytest

## The three container images built with Podman on a Debian base made here (mmdebstrap), run
## against the machine's PostgreSQL through the wheel test's smoke (tests/deploy/images.py). As root.
image-test: install
	$(PY) -m tests.deploy.images

## The README's quick start (make run, then its printed curl commands) in a container of a bare
## Debian bookworm with only python3, pip, venv and make (tests/deploy/fresh_machine.py). As root.
.PHONY: fresh-machine-test
fresh-machine-test: install
	$(PY) -m tests.deploy.fresh_machine

## Throughput and latency against a bare Flask app under the same gunicorn settings.
bench: install
	$(PY) -m tests.benchmarks.bench

## Instructions per request (callgrind, in-process WSGI calls) beside floors and budgets; exit 1 on a miss.
bench-cpu: install
	$(PY) -m tests.benchmarks.cpu

## p50/p99 of lists, searches, keys, versions and audit queries at 10,000 and at 1,000,000
## secrets in the same run (data sets built by COPY in a few minutes; about 6 GB, dropped after).
bench-scale: install
	$(PY) -m tests.benchmarks.scale

## Audit events inserted per second without and with the hash chain; the chainer's and verify's rates.
bench-audit-chain: install
	$(PY) -m tests.benchmarks.audit_chain

## A mixed workload (80% reads, 15% writes, 5% checkouts) on both services, 3 workers each, for
## 5 minutes: throughput, p50/p99, errors (must be 0), each worker's memory (flat within 10%).
load: install
	$(PY) -m tests.benchmarks.load

## Schemathesis, every check, against both services under gunicorn (admin and user tokens),
## with many examples per operation (the test suite runs a few). FUZZ_MAX_EXAMPLES=N to change.
fuzz: install
	$(PY) -m tests.fuzz.run

## A PostgreSQL primary and streaming standby (Debian's postgresql-15 binaries) behind both services,
## the primary killed under load and the standby promoted: sync, async, each also with the standby
## cut off first. Reports 503s, recovery time and acknowledged writes lost (sync must lose 0).
failover-test: install
	$(PY) -m tests.failover.run

## Renew deploy/constraints.txt: the newest versions setup.cfg allows, pinned (pip-tools).
lock: install
	$(PY) -m piptools compile --quiet --upgrade --strip-extras --no-emit-index-url --no-emit-find-links \
		--extra dev --extra embedded --extra hsm --output-file $(CONSTRAINTS) setup.cfg

lint: install
	$(PY) -m ruff check --isolated --select E,F,W --line-length 190 common vault_service secrets_manager_service tests

clean:
	rm -rf $(VENV) build *.egg-info
