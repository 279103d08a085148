# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build on machines without a GPU; on a GPU cluster set TORCH_SPEC to the CUDA build of the
# same version (e.g. TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126").
TORCH_SPEC ?= torch==2.13.0
PYTEST := $(BIN)/python -m pytest
# `make demo SCENARIOS=all` runs the demo on all four clustering scenarios (II, TT, IT, XM);
# `make demo CLIENTS=20 PER_ROUND_CLIENTS=5` on 20 clients, 5 sampled per round (into results/demo-k20)
SCENARIOS ?= ii
export OMP_NUM_THREADS ?= 1
# The tests' own cache (pool, embeddings, benchmark sets, DeepSpeed's compiled ops): never the user's
# ~/.cache/fedma, which `make demo` uses. Point two clones at one directory to share it.
export FEDMA_TEST_CACHE ?= $(CURDIR)/.test-cache

.PHONY: venv demo study test test-unit test-dist test-eval test-slurm test-install test-browser test-gpu test-build \
	docs bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q -c requirements/constraints.txt -e ".[train,eval,instruct,privacy,observe,results,launch,tune,flower,docs,dev]"
	@# PyPI's torchvision wheel is CUDA-linked and fails to import beside a CPU torch: drop it then.
	@$(BIN)/python -c "import torchvision" 2>/dev/null || $(BIN)/pip uninstall -y -q torchvision
	touch $@

demo: venv
	$(BIN)/fedma demo --scenarios $(SCENARIOS)

# The powered Fed-MA-mini study of the paper's claims into results/study (hours on 2 cores; rerun to continue;
# `make study STUDY=paper STUDY_OUT=results/study-v1` is the first, 3-seed study)
STUDY ?= powered
STUDY_OUT ?= results/study
study: venv
	$(BIN)/fedma study $(STUDY) --out $(STUDY_OUT)

# every test but the GPU ones and the checkpoint rebuild, then the 25 slowest (where the time goes); on
# TEST_WORKERS pytest-xdist workers, each taking a test file (or all of tests/slurm) at a time (tests/conftest.py)
TEST_WORKERS ?= 2
test: venv
	$(PYTEST) -n $(TEST_WORKERS) -m "not gpu and not build" --durations=25

# one target per folder of tests/ (its marker: tests/markers.py)
test-unit test-dist test-eval test-slurm test-install test-browser test-gpu: test-%: venv
	$(PYTEST) -m $*

# Rebuilds the shipped mini checkpoints from their recipes (about 10 min on one core) and checks that
# they work like the shipped ones, within the tolerances measured across CPU kernels
test-build: venv
	$(PYTEST) -m build

# the documentation site (MkDocs Material) into site/; --strict fails on a broken link or nav entry, and
# the code the pages name must exist (tests/unit/test_docs.py runs both in `make test`)
docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict
	$(BIN)/python -m tests.unit.doc_refs

bench: venv
	$(BIN)/python -m perf.run

clean:
	rm -rf $(VENV) .pytest_cache .test-cache site
