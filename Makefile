# prosody-stack: the two commands are `make dev` and `make test` (README.md).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
export CONTAINERS_CONF := $(CURDIR)/molecule/containers.conf
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# Debian packages the controller needs: podman and runc for the test hosts,
# debootstrap to build their images, lua for the serializer's round trips,
# testssl.sh for the TLS checks, graphviz for `prosody-stack deps --format png`.
APT_PACKAGES := podman runc debootstrap lua5.4 testssl.sh openssh-client python3-venv graphviz

.PHONY: dev setup packages venv images test lint unit integration bench clean

## make dev: set everything up, deploy the development inventory into a
## local container, print how to log in.
dev: setup
	$(BIN)/ansible-playbook playbooks/dev-container.yml
	$(BIN)/ansible-playbook site.yml -i inventories/development
	$(BIN)/ansible-playbook playbooks/dev-login.yml -i inventories/development

## make setup: Debian packages, the Python environment, the container images.
setup: packages venv images

packages:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "[setup] installing Debian packages:" $$missing; \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "[setup] Debian packages present"; fi

# The venv also gets the operator tool `prosody-stack` (pyproject.toml).
venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q -e .
	touch $@

images: packages
	molecule/images/build.sh

## make test: lint and unit tests, then the real-Prosody tests and every
## Molecule scenario in three lanes side by side (tests/lanes.sh).  A lane
## holds the scenarios of one inventory environment: they share its test CA,
## and the development ones the container name prosody-dev.
test: setup lint unit
	tests/lanes.sh \
	  "integration molecule-development-0.12 molecule-development-13.0 molecule-broken-config" \
	  "molecule-staging molecule-migration molecule-integrations" \
	  "molecule-production molecule-fleet molecule-policies"

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint --profile production

unit:
	$(BIN)/pytest -q tests/unit

integration:
	$(BIN)/pytest -q tests/integration

# One scenario: make molecule-<scenario>.  The one-host development scenario
# runs once per Prosody series.  Note: it replaces the container `make dev`
# started.
molecule-development-0.12:
	PROSODY_SUITE=bookworm PROSODY_SERIES=0.12 $(BIN)/molecule test -s development
molecule-development-13.0:
	PROSODY_SUITE=trixie PROSODY_SERIES=13.0 $(BIN)/molecule test -s development
molecule-%:
	$(BIN)/molecule test -s $*

## make bench: the benchmark suite (benchmarks/README.md), about 25 minutes,
## results in benchmarks/results/.  Not part of `make test`.  Quicker, for
## work on the suite itself: make bench BENCH_ARGS=--quick
bench: setup
	$(BIN)/pip install -q -r benchmarks/requirements.txt
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

clean:
	-podman rm -f prosody-dev
	rm -rf $(VENV)
