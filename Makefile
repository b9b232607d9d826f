# One entry point for people and CI. `make test` is the whole suite (.ci/run calls exactly it).
VENV := venv
PY := $(VENV)/bin/python

.PHONY: test deps lint unit tools integration e2e bench bench-stack bench-swarm up clean

# Every test once: the unit layer on all cores (as `make unit`), then the rest in two streams
# that share one Docker engine, started here (tests/conftest.py says which tests go where; the
# engine tests mostly wait on containers, so two streams use the cores that one leaves idle).
test: deps lint
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -m "$(UNIT)" -n auto --dist loadgroup --no-loadscope-reorder
	bash scripts/ci-docker.sh run $(PY) -m pytest -m "not ($(UNIT))" -n 2 --dist loadgroup --durations=15

deps: $(VENV)/.installed
	bash scripts/install-system-deps.sh

$(VENV)/.installed: requirements.txt requirements-dev.txt services/hub/requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

# The program under mocks, the renderers, the config and the hub's settings: nothing but the
# venv, no root (tests that run a system tool are marked `needs` and left to `make tools`).
# Bytecode cache on even where the shell turns it off (PYTHONDONTWRITEBYTECODE): every xdist
# worker otherwise re-parses and assertion-rewrites every test module (about 2 s each).
# --no-loadscope-reorder: groups go out longest first by the last run's times
# (tests/group_order.py), not by their number of tests.
UNIT := not integration and not e2e and not needs
unit: $(VENV)/.installed
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -m "$(UNIT)" -n auto --dist loadgroup --no-loadscope-reorder

# The tests that run real system tools (slapd, caddy, sshd, cloud-init, PostgreSQL, the
# bootstrap's scripts on loop devices and network namespaces): root, installs them first.
tools: $(VENV)/.installed
	bash scripts/install-system-deps.sh tools
	$(PY) -m pytest -m "needs and not integration and not e2e"

integration: deps
	$(PY) -m pytest -m integration

# The local stack's declared Docker layer applied to the engine, used through a real browser.
e2e: deps
	$(PY) -m pytest -m e2e

bench: $(VENV)/.installed
	$(PY) bench/program_under_mocks.py

# Login -> JupyterLab through the deployed local stack (Caddy, proxy, hub) next to a bare hub:
# 20 sequential, 20 concurrent (root, the Docker engine; minutes).
bench-stack: deps
	$(PY) bench/deployed_latency.py --sequential 20 --concurrent 20

# 20 concurrent spawns on one host (DockerSpawner) and over two Swarm workers (SwarmSpawner),
# nested Docker engines on this machine (root; minutes; a functional figure, not capacity).
bench-swarm: deps
	$(PY) bench/swarm_spawns.py --concurrent 20

# The main job: the whole platform on this machine's Docker engine.
up: $(VENV)/.installed
	pulumi stack select --create local
	pulumi up --stack local

clean:
	rm -rf $(VENV) .pytest_cache
