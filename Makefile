# Two commands for a fresh Debian 12 machine (as root): `make lab` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: deps protos lint typecheck layers unit integration e2e test lab lab-down bench clean vagrant-prep vagrant-box vagrant-up

deps: $(VENV)/.deps
$(VENV)/.deps: pyproject.toml deploy/install-deps.sh
	./deploy/install-deps.sh
	touch $@

protos: deps
	PYTHON=$(PY) ./scripts/genprotos.sh

lint: deps
	$(VENV)/bin/ruff check .

typecheck: deps
	$(VENV)/bin/mypy

layers: deps
	$(VENV)/bin/lint-imports

unit: deps
	$(PY) -m pytest tests/unit -q $(PYTEST_ARGS)

integration: deps
	$(PY) -m pytest tests/integration -q $(PYTEST_ARGS)

# The README's test command: static checks, then every test against the real parts.
test: deps lint layers typecheck
	$(PY) -m pytest tests -q -p no:cacheprovider $(PYTEST_ARGS)

# Brings up the three-node lab (idempotent) and runs the demo: a Deployment and Services, balanced across nodes.
lab: deps
	$(VENV)/bin/pbctl lab up
	$(PY) -m lab.demo

lab-down: deps
	$(VENV)/bin/pbctl lab down

e2e: deps
	$(PY) -m pytest tests/e2e -q $(PYTEST_ARGS)

# The same topology as VMs (docs/vagrant.md): prep builds the wheel and images so provisioning downloads nothing.
vagrant-prep: deps
	./deploy/vagrant/prep.sh

vagrant-box:
	./deploy/vagrant/build-box.sh

vagrant-up: vagrant-prep
	vagrant up

# The benchmark scripts (bench/ also holds their shared modules); bench/lab.py needs the lab and runs apart.
BENCHES = etcd_raw apiserver api_http security metrics scheduler deployment density kubelet netproxy cluster_dns

bench: deps
	for b in $(BENCHES); do echo "== bench/$$b.py"; $(PY) bench/$$b.py --quick || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
