# LabelTune: `make run` starts the app, `make test` runs the whole suite. Both create .venv if missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run demo test lint typecheck pytest bench screenshots xrd-model installer clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

DEMO_DATA ?= ../shared/data/corn_leaf/images

# The desktop app: the start page offers new/open/recent projects and the offline demos.
run: $(STAMP)
	$(BIN)/labeltune

# The command-line demo: train a features model on the corn-leaf photos and predict with it
# (EfficientNet-Lite0, whose ImageNet weights ship with LabelTune: works offline).
demo: $(STAMP)
	$(BIN)/labeltune backbones
	@if [ -d "$(DEMO_DATA)" ]; then \
		$(BIN)/labeltune scan "$(DEMO_DATA)" && \
		$(BIN)/labeltune train "$(DEMO_DATA)" --strategy features --out runs/demo && \
		$(BIN)/labeltune predict runs/demo "$(DEMO_DATA)" --out runs/demo/predictions.csv > /dev/null && \
		echo "predictions written to runs/demo/predictions.csv"; \
	else $(BIN)/labeltune demo corn --out runs/demo-project && \
		$(BIN)/labeltune train runs/demo-project; fi

lint: $(STAMP)
	$(BIN)/ruff check desktop tests bench scripts
	$(BIN)/ruff format --check desktop tests bench scripts
	$(BIN)/lint-imports  # the layers: ui > workers > core, and a Qt-free core (pyproject.toml)

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q --durations=15

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

# The README's screenshots, made by driving the real window offscreen (a short training run on the CPU).
screenshots: $(STAMP)
	$(BIN)/python scripts/make_screenshots.py --out docs/screenshots

# The shipped XRD model (models/xrd-li-mn-ti-o-f): library from the 56 Li-Mn-Ti-O-F CIFs, then training on
# patterns simulated on the fly. Seeded; about 17 minutes on a quiet 2-core CPU (models/README.md).
XRD_REFERENCES ?= ../shared/data/xrd/li_mn_ti_o_f/references
XRD_EPOCHS ?= 40
xrd-model: $(STAMP)
	$(BIN)/labeltune xrd library $(XRD_REFERENCES) --out build/xrd-li-mn-ti-o-f-library
	$(BIN)/labeltune train build/xrd-li-mn-ti-o-f-library --domain xrd --epochs $(XRD_EPOCHS) --seed 0 \
		--threads 2 --out models/xrd-li-mn-ti-o-f

# The installer of this OS (not part of `make test` or CI): on Linux a PyInstaller one-folder bundle in
# dist/labeltune and dist/labeltune_<version>_<arch>.deb (installer/build.py; README "Installers").
# WEIGHTS=DIR also bundles the ImageNet weights in DIR; INSTALLER_PYTHON=... builds from another environment
# (e.g. one with PyTorch's CPU-only wheels).
INSTALLER_PYTHON ?= $(BIN)/python
WEIGHTS ?=
installer:
	@if [ "$(INSTALLER_PYTHON)" = "$(BIN)/python" ]; then $(MAKE) --no-print-directory $(STAMP); fi
	$(INSTALLER_PYTHON) -m PyInstaller --version > /dev/null 2>&1 || $(INSTALLER_PYTHON) -m pip install --quiet "pyinstaller>=6.10"
	$(INSTALLER_PYTHON) installer/build.py --self-test $(if $(WEIGHTS),--weights $(WEIGHTS))

clean-venv:
	rm -rf $(VENV)
