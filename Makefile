# toynic — the two commands are `make demo` and `make test`; `make bench` measures.
PYTHON ?= python3
# The real directory of this Makefile: run through a symlinked copy of the tree (as the
# docs runner runs `make demo`), the venv and its editable install still go to the repo.
ROOT := $(patsubst %/,%,$(dir $(realpath $(firstword $(MAKEFILE_LIST)))))
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: test demo bench sysdeps lint guests clean

$(STAMP): pyproject.toml
	@echo "setting up $(VENV) (first run only; log in $(VENV)/install.log)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip > $(VENV)/install.log 2>&1 \
	  && $(PY) -m pip install -q -e '$(ROOT)[test]' >> $(VENV)/install.log 2>&1 \
	  || { cat $(VENV)/install.log; echo "make: installing Python packages failed"; exit 1; }
	@touch $@

sysdeps:
	@$(ROOT)/scripts/install-sysdeps

test: $(STAMP) sysdeps
	$(PY) -m pytest -q -p no:cacheprovider

demo: $(STAMP)
	@$(PY) -m emu.demo

bench: $(STAMP) sysdeps
	$(PY) bench/run.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .

guests:
	$(MAKE) -C guests

clean:
	rm -rf $(VENV) build *.egg-info
