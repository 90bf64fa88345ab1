# Quickstart: `make demo` then `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# Machines of this project keep a verified MNIST copy beside the checkout; elsewhere the data
# layer finds the user cache or downloads into it.
ifneq ($(wildcard ../shared/data/mnist/train-images-idx3-ubyte.gz),)
export MNISTEXP_DATA_DIR ?= $(abspath ../shared/data/mnist)
endif

.PHONY: install demo test test-fast lint bench clean studies study-tutorial study-losses \
	study-label-smoothing study-scaling study-published study-seed000 study-seed001 \
	study-seed002 study-overconfident study-shift

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The documentation site, mkdocs.yml, into site/. Strict: a warning (a broken link, a missing
# page or study table, a config-reference example that no longer validates) fails the build.
# The config reference and the figures come from the code and docs/ (docs/tools/hooks.py).
DOCS_STAMP := $(VENV)/.docs-installed-stamp

$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,docs]'
	touch $(DOCS_STAMP)

.PHONY: docs
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

demo: install
	$(BIN)/mnistexp data info
	$(BIN)/mnistexp train --config configs/baseline.yaml

lint: install
	$(BIN)/ruff check mnistexp tests benchmarks configs docs/tools
	$(BIN)/ruff format --check mnistexp tests benchmarks configs docs/tools
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

test: install lint
	$(BIN)/python -m pytest

# The contributor's loop, under two minutes: every test but those marked slow (real
# processes, long runs) or mnist (the real data). CI runs `make test`, the whole suite.
test-fast: install
	$(BIN)/python -m pytest -q -m "not slow and not mnist"

bench: install
	$(BIN)/python benchmarks/speed.py --json benchmarks/speed.json

# The nine studies of the README's Findings section. Each target trains the runs that are
# missing (finished runs are reused), prints the markdown table pasted in the README (also
# written to docs/studies/), and refreshes the figures in docs/. A sweep exits 1 when a run
# diverged, which is a result here (compare counts it), so only other exit codes stop make.
JOBS ?= 2
STUDY_RUNS ?= runs/studies
SWEEP = $(BIN)/mnistexp sweep -j $(JOBS)
COMPARE = $(BIN)/mnistexp compare --format markdown
DIVERGED_OK = || [ $$? -eq 1 ]

studies: study-tutorial study-losses study-label-smoothing study-scaling study-published \
	study-seed000 study-seed001 study-seed002 study-overconfident study-shift

study-tutorial: install
	$(SWEEP) configs/studies/tutorial/sweep.yaml --runs-dir $(STUDY_RUNS)/tutorial
	@mkdir -p docs/studies
	$(COMPARE) --runs-dir $(STUDY_RUNS)/tutorial --baseline plain \
	    --filter train.backprop=exact --filter train.shuffle=true \
	    --metrics accuracy,nll,brier,ece,confidence --plot $(STUDY_RUNS)/tutorial/plots \
	    > docs/studies/tutorial.md
	@cat docs/studies/tutorial.md
	cp $(STUDY_RUNS)/tutorial/plots/reliability.png docs/tutorial_reliability.png

LOSSES = mse_sigmoid mse_softmax mse_linear bce_sigmoid ce_softmax

study-losses: install
	$(SWEEP) configs/studies/losses/lr_grid.yaml --runs-dir $(STUDY_RUNS)/losses_grid $(DIVERGED_OK)
	@mkdir -p docs/studies
	rm -f docs/studies/losses_lr_grid.md
	for loss in $(LOSSES); do \
	    $(COMPARE) --runs-dir $(STUDY_RUNS)/losses_grid --filter name=$$loss --sort val_accuracy \
	        --metrics val_accuracy,accuracy,nll,ece >> docs/studies/losses_lr_grid.md \
	        && echo >> docs/studies/losses_lr_grid.md || exit 1; \
	done
	$(BIN)/mnistexp compare --runs-dir $(STUDY_RUNS)/losses_grid --metrics val_accuracy \
	    --format json 2>/dev/null \
	    | $(BIN)/python configs/studies/losses/pick_rates.py configs/studies/losses/final.yaml
	$(SWEEP) configs/studies/losses/final.yaml --runs-dir $(STUDY_RUNS)/losses $(DIVERGED_OK)
	$(SWEEP) configs/studies/losses/large_init.yaml --runs-dir $(STUDY_RUNS)/losses $(DIVERGED_OK)
	$(COMPARE) --runs-dir $(STUDY_RUNS)/losses --baseline ce_softmax \
	    --metrics accuracy,nll,ece,ts_ece,confidence > docs/studies/losses.md
	@cat docs/studies/losses.md
	$(COMPARE) --runs-dir $(STUDY_RUNS)/losses --filter model.init=he \
	    --plot $(STUDY_RUNS)/losses/plots_he \
	    --curves grad_true,saturated,train_accuracy,val_accuracy > /dev/null
	$(COMPARE) --runs-dir $(STUDY_RUNS)/losses --filter model.init=normal \
	    --plot $(STUDY_RUNS)/losses/plots_normal \
	    --curves grad_true,saturated,train_accuracy,val_accuracy > /dev/null
	cp $(STUDY_RUNS)/losses/plots_he/curves.png docs/losses_curves.png
	cp $(STUDY_RUNS)/losses/plots_normal/curves.png docs/losses_curves_normal_init.png
	cp $(STUDY_RUNS)/losses/plots_he/reliability.png docs/losses_reliability.png

study-label-smoothing: install
	$(SWEEP) configs/studies/label_smoothing/sweep.yaml --runs-dir $(STUDY_RUNS)/label_smoothing
	@mkdir -p docs/studies
	$(COMPARE) --runs-dir $(STUDY_RUNS)/label_smoothing --baseline eps0 \
	    --metrics accuracy,ece,ts_ece,nll,ts_nll,temperature \
	    --plot $(STUDY_RUNS)/label_smoothing/plots > docs/studies/label_smoothing.md
	@cat docs/studies/label_smoothing.md
	cp $(STUDY_RUNS)/label_smoothing/plots/reliability.png docs/label_smoothing_reliability.png
	cp $(STUDY_RUNS)/label_smoothing/plots/reliability_ts.png \
	    docs/label_smoothing_reliability_ts.png

# The learning-curve figure leaves out raw inputs: their flat 11% would squash the other curves.
study-scaling: install
	$(SWEEP) configs/studies/scaling/sweep.yaml --runs-dir $(STUDY_RUNS)/scaling $(DIVERGED_OK)
	@mkdir -p docs/studies
	$(COMPARE) --runs-dir $(STUDY_RUNS)/scaling --baseline unit \
	    --metrics accuracy,nll,ece,ts_ece --plot $(STUDY_RUNS)/scaling/plots \
	    > docs/studies/scaling.md
	@cat docs/studies/scaling.md
	$(COMPARE) $(foreach s,unit tutorial standardize symmetric,'$(STUDY_RUNS)/scaling/$(s)-*') \
	    --plot $(STUDY_RUNS)/scaling/plots_trainable > /dev/null
	cp $(STUDY_RUNS)/scaling/plots_trainable/learning_curves.png docs/scaling_learning_curves.png

study-published: install
	$(SWEEP) configs/studies/published/sweep.yaml --runs-dir $(STUDY_RUNS)/published
	@mkdir -p docs/studies
	$(COMPARE) --runs-dir $(STUDY_RUNS)/published --metrics accuracy,nll,ece,confidence \
	    --plot $(STUDY_RUNS)/published/plots --curves train_accuracy \
	    > docs/studies/published.md
	@cat docs/studies/published.md
	cp $(STUDY_RUNS)/published/plots/curves.png docs/published_training_curves.png

# Seed 000: raw outputs or outputs clamped to one-hot, as the output rule and as targets. The
# students read the teacher trained first (its folder is found by name and seed).
TEACHER = $$(ls -d $(1)/teacher-*-s100 | head -n 1)

study-seed000: install
	$(SWEEP) configs/studies/seed000/teacher.yaml --runs-dir $(STUDY_RUNS)/seed000_teacher
	$(SWEEP) configs/studies/seed000/sweep.yaml --runs-dir $(STUDY_RUNS)/seed000 \
	    --set targets.teacher=$(call TEACHER,$(STUDY_RUNS)/seed000_teacher) $(DIVERGED_OK)
	@mkdir -p docs/studies
	$(COMPARE) --runs-dir $(STUDY_RUNS)/seed000 --baseline onehot_exact \
	    --metrics accuracy,nll,ece,ts_ece,confidence --plot $(STUDY_RUNS)/seed000/plots \
	    > docs/studies/seed000.md
	@cat docs/studies/seed000.md
	cp $(STUDY_RUNS)/seed000/plots/reliability.png docs/seed000_reliability.png

# Seed 001: the exact gradient against a delta at the true class only; per-epoch weight norms,
# logit magnitudes and gradients show what happens (true_class diverges: exit 1 is a result).
study-seed001: install
	$(SWEEP) configs/studies/seed001/sweep.yaml --runs-dir $(STUDY_RUNS)/seed001 $(DIVERGED_OK)
	@mkdir -p docs/studies
	$(COMPARE) --runs-dir $(STUDY_RUNS)/seed001 --metrics accuracy,nll,ece,confidence \
	    > docs/studies/seed001.md
	@cat docs/studies/seed001.md
	$(COMPARE) --runs-dir $(STUDY_RUNS)/seed001 --filter train.lr=0.001 \
	    --plot $(STUDY_RUNS)/seed001/plots \
	    --curves weight_norm_0,weight_norm_1,logit_max_abs,grad_true,grad_other,val_accuracy \
	    > /dev/null
	cp $(STUDY_RUNS)/seed001/plots/curves.png docs/seed001_curves.png

# Seed 002 under the tutorial's own update rule and protocol; the exact, shuffled cells are
# study-tutorial's runs, found in the same folder (whose own table filters to its four arms).
# Seeds 0-19 of every arm, as study-tutorial's; the tutorial-protocol block (the tutorial's rule
# and file order) on seeds 0-59, the power its 0.1 pp effects need (README section 8).
SEED002_RUNS = '$(STUDY_RUNS)/tutorial/*-s[0-9]' '$(STUDY_RUNS)/tutorial/*-s1[0-9]'
SEED002_BLOCKS = exact_file_order tutorial_shuffled tutorial_file_order rashid_shuffled \
	rashid_file_order

study-seed002: install
	$(SWEEP) configs/studies/seed002/sweep.yaml --runs-dir $(STUDY_RUNS)/tutorial
	$(SWEEP) configs/studies/seed002/tutorial_protocol.yaml --runs-dir $(STUDY_RUNS)/tutorial
	@mkdir -p docs/studies
	$(COMPARE) $(SEED002_RUNS) --baseline plain \
	    --metrics accuracy,nll,ece,confidence > docs/studies/seed002.md
	for b in $(SEED002_BLOCKS); do \
	    $(COMPARE) '$(STUDY_RUNS)/tutorial/'$$b'_*-s[0-9]*' --baseline $${b}_plain \
	        --metrics accuracy,ece >> docs/studies/seed002.md || exit 1; \
	done
	@cat docs/studies/seed002.md

# The overconfident regime: the search, then every method there before and after each map.
OVERCONFIDENT_METRICS := accuracy,ece,ts_ece,vector_ece,matrix_odir_ece,histogram_ece
OVERCONFIDENT_METRICS := $(OVERCONFIDENT_METRICS),isotonic_ece,nll,ts_nll,debiased_ce,smooth_ece

study-overconfident: install
	$(SWEEP) configs/studies/overconfident/search.yaml --runs-dir $(STUDY_RUNS)/overconfident_search
	@mkdir -p docs/studies
	$(COMPARE) --runs-dir $(STUDY_RUNS)/overconfident_search \
	    --metrics accuracy,ece,ts_ece,temperature,confidence \
	    --plot $(STUDY_RUNS)/overconfident_search/plots > docs/studies/overconfident_search.md
	@cat docs/studies/overconfident_search.md
	$(SWEEP) configs/studies/overconfident/teacher.yaml --runs-dir $(STUDY_RUNS)/overconfident_teacher
	$(SWEEP) configs/studies/overconfident/sweep.yaml --runs-dir $(STUDY_RUNS)/overconfident \
	    --set targets.teacher=$(call TEACHER,$(STUDY_RUNS)/overconfident_teacher) $(DIVERGED_OK)
	$(COMPARE) --runs-dir $(STUDY_RUNS)/overconfident --baseline onehot \
	    --metrics $(OVERCONFIDENT_METRICS) --plot $(STUDY_RUNS)/overconfident/plots \
	    > docs/studies/overconfident.md
	@cat docs/studies/overconfident.md
	cp $(STUDY_RUNS)/overconfident_search/plots/learning_curves.png \
	    docs/overconfident_learning_curves.png
	cp $(STUDY_RUNS)/overconfident_search/plots/reliability.png docs/overconfident_search_reliability.png
	cp $(STUDY_RUNS)/overconfident/plots/reliability.png docs/overconfident_reliability.png
	cp $(STUDY_RUNS)/overconfident/plots/reliability_ts.png docs/overconfident_reliability_ts.png

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info

# Study 10: every encoding under rotation, translation, other writers' digits and OOD inputs,
# scored at training (the sweep's shift section); the teacher is the baseline at seed 100.
study-shift: install
	$(SWEEP) configs/studies/shift/teacher.yaml --runs-dir $(STUDY_RUNS)/shift_teacher
	$(SWEEP) configs/studies/shift/sweep.yaml --runs-dir $(STUDY_RUNS)/shift \
	    --set targets.teacher=$(call TEACHER,$(STUDY_RUNS)/shift_teacher) $(DIVERGED_OK)
	@mkdir -p docs/studies
	$(BIN)/python configs/studies/shift/analyse.py $(STUDY_RUNS)/shift docs/studies/shift.md \
	    docs/shift_rotation.png
