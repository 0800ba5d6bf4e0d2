# make demo · make test · make lint · make bench · make fuzz · make completions — each builds .venv from nothing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PEERS  := .peers
COMPLETIONS := completions

.PHONY: demo test lint fuzz bench completions peers tools lock clean

$(VENV)/.installed: pyproject.toml setup.py constraints.txt examples/plugin/pyproject.toml examples/mqtt/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt -e '.[test,lint]' -e examples/plugin -e examples/mqtt  # the plugins: for tests/contract
	touch $@

# Re-pins constraints.txt to what the bounds in pyproject.toml resolve to today.
lock:
	rm -rf $(VENV).lock && $(PYTHON) -m venv $(VENV).lock
	$(VENV).lock/bin/pip install -q '.[test,lint]' ./examples/mqtt  # the MQTT plugin's own dependencies too
	{ sed -n '1,2p' constraints.txt; $(VENV).lock/bin/pip freeze --exclude fieldctl --exclude fieldctl-mqtt; } > constraints.new
	mv constraints.new constraints.txt && rm -rf $(VENV).lock

# Real peer implementations for the interop tests, each in its own venv (they pin their own deps).
$(PEERS)/%/.installed: tests/peers/%.requirements.txt
	$(PYTHON) -m venv $(PEERS)/$*
	$(PEERS)/$*/bin/python -m pip install -q -r $<
	touch $@

peers: $(patsubst tests/peers/%.requirements.txt,$(PEERS)/%/.installed,$(wildcard tests/peers/*.requirements.txt))

demo: $(VENV)/.installed
	$(VENV)/bin/fieldctl demo

# Debian packages the tests drive: tmux (the console test runs the real REPL in it), prometheus
# (/usr/bin/prometheus and promtool: the monitoring round trip runs its own server on loopback; the
# package's service is not started) and mosquitto (/usr/sbin/mosquitto: the MQTT plugin's tests
# start their own broker on loopback, never the service). Where apt-get cannot run (not root, no
# archive) the round trip and the MQTT tests skip and say why; under CI the round trip fails instead.
APT_GET := DEBIAN_FRONTEND=noninteractive apt-get
tools:
	@command -v tmux >/dev/null || ($(APT_GET) update -qq && $(APT_GET) install -y -qq tmux >/dev/null)
	@command -v prometheus >/dev/null && command -v promtool >/dev/null \
	  || ($(APT_GET) update -qq && $(APT_GET) install -y -qq --no-install-recommends prometheus >/dev/null) \
	  || echo "make: could not install the Debian package prometheus: the Prometheus tests will skip" >&2
	@test -x /usr/sbin/mosquitto \
	  || ($(APT_GET) update -qq && $(APT_GET) install -y -qq --no-install-recommends mosquitto >/dev/null) \
	  || echo "make: could not install the Debian package mosquitto: the MQTT plugin's tests will skip" >&2

test: $(VENV)/.installed peers tools
	$(PY) -m pytest

# The gates CI runs before the tests: ruff (lint, format), mypy (the package, the example plugins and
# the benchmarks), and the import layers of docs/architecture.md (import-linter). mypy sees the
# package as it imports: `fieldctl` is this folder (setup.py), so it reads it through a link of that name.
LINT_ROOT := $(VENV)/lint
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	mkdir -p $(LINT_ROOT) && ln -sfn $(CURDIR) $(LINT_ROOT)/fieldctl
	MYPYPATH=$(LINT_ROOT):examples/plugin:examples/mqtt:bench $(VENV)/bin/mypy --python-executable $(PY) \
	  -p fieldctl.protocols -p fieldctl.profiles -p fieldctl.cli -m fieldctl.sdk -m fieldctl.testing \
	  -p fieldctl_linejson -p fieldctl_mqtt \
	  $(patsubst bench/%.py,-m %,$(wildcard bench/*.py))
	$(VENV)/bin/lint-imports

# Every decoder against at least 10,000 generated inputs each (make test runs a few hundred).
fuzz: $(VENV)/.installed
	FIELDCTL_FUZZ=thorough $(PY) -m pytest -m fuzz

# Every fast path against its baseline in the same run; BENCH=--quick (about 3 minutes), BENCH=--json.
BENCH ?=
bench: $(VENV)/.installed
	$(PY) bench/run.py $(BENCH)

completions: $(VENV)/.installed
	$(PY) -m fieldctl completion show bash > $(COMPLETIONS)/fieldctl.bash
	$(PY) -m fieldctl completion show zsh > $(COMPLETIONS)/_fieldctl
	$(PY) -m fieldctl completion show fish > $(COMPLETIONS)/fieldctl.fish

clean:
	rm -rf $(VENV) $(PEERS) *.egg-info
