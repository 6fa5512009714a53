# tinygan: two commands for a fresh machine.
#   make demo   creates .venv, installs tinygan, trains the DCGAN 20,160 steps (2 CPU cores: 10-22 min, benchmarks/RESULTS.md)
#   make test   creates .venv, installs the test extras and PyTorch (the oracle), runs pytest
#               (five passes: the suite, without the compiled loops, in reference mode, on the
#               CuPy stand-in, and the notebooks)
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
# PyTorch is only the tests' oracle. 2.13.0 is a CPU build on the CI machines; elsewhere
# pass e.g. TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cpu".
TORCH_SPEC ?= torch==2.13.0
# Training data: a folder or .zip of images. Empty: d2l's Pokémon zip is downloaded once.
DATA ?= $(wildcard ../shared/data/pokesprite-gen8)
OUT  ?= runs/demo
# The demo's recipe and length (README, "Which recipe"): the paper's recipe + DiffAugment, its
# pictures drawn by the moving average of G; 20,160 steps, where its samples turn into creatures,
# whatever DATA holds (480 epochs of the 1,332 sprites; fewer of a larger set, the last one cut short).
DEMO_RECIPE ?= --recipe sprites --steps 20160
DEMO_ARGS ?=

.PHONY: demo test venv clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[fast]'
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e '.[fast,test,crosscheck,explore,safetensors]'
	touch $@

venv: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) examples/pokemon.py --backend numpy $(DEMO_RECIPE) $(if $(DATA),--data $(DATA)) --out $(OUT) $(DEMO_ARGS)

# The suite runs the layers' speed paths (with Numba's compiled loops); then the layer tests run
# once more through the NumPy versions (TINYGAN_JIT=0), as on a machine without Numba, and the
# gradient-check and PyTorch-oracle suite once more in reference mode (TINYGAN_REFERENCE=1): the
# plain textbook code of every layer, the loss and Adam.
# Then tests/test_gpu.py runs once on the strict stand-in for CuPy (tests/strict_cupy.py; its
# CUDA-kernel and graph tests skip): a misuse of CuPy in the GPU tests shows here, not in a GPU session.
NUMPY_ONLY_TESTS = tests/test_layers_gradcheck.py tests/test_torch_crosscheck.py tests/test_conv.py \
                   tests/test_float32.py tests/test_dcgan.py
REFERENCE_TESTS  = $(NUMPY_ONLY_TESTS) tests/test_optim.py tests/test_im2col.py tests/test_augment.py \
                   tests/test_instance_noise.py tests/test_minibatch_std.py tests/test_spectral_norm.py \
                   tests/test_upsample.py tests/test_torch_weights.py tests/test_ema.py docs/tour.md

test: $(VENV)/.installed-test
	$(PY) -m pytest -q
	TINYGAN_JIT=0 $(PY) -m pytest -q $(NUMPY_ONLY_TESTS)
	TINYGAN_REFERENCE=1 $(PY) -m pytest -q $(REFERENCE_TESTS)
	TINYGAN_GPU_TEST_BACKEND=strict $(PY) -m pytest -q -m gpu tests/test_gpu.py
	$(PY) -m tinygan.exercises notebooks --out $(NOTEBOOKS)
	$(PY) -m pytest -q --nbmake $(NOTEBOOKS)

# docs/tour.md and docs/exercises.md as Jupyter notebooks, generated from the markdown into an
# ignored folder (the markdown is the one source); make test executes them with nbmake.
NOTEBOOKS = build/notebooks
.PHONY: notebooks
notebooks: $(VENV)/.installed
	$(PY) -m tinygan.exercises notebooks --out $(NOTEBOOKS)

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
