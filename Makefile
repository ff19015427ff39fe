# Two commands for a newcomer (see README):
#   make demo   set up the project-local environment and run the graph on generated frames
#   make test   set up the same environment and run the whole test suite
# Every step is idempotent and keyed on the files it depends on.

VENV      := .venv
PYTHON    := $(VENV)/bin/python
STAMPS    := $(VENV)/.stamps
BUILD     := build
PIP       := $(PYTHON) -m pip --disable-pip-version-check --quiet
MSG_FILES := $(wildcard msg/*.msg) msg/CMakeLists.txt msg/package.xml

.PHONY: setup demo test clean

setup: $(STAMPS)/package

demo: setup
	$(VENV)/bin/alpamayo-ros demo

test: setup
	$(PYTHON) -m pytest -q

# System tools: a C/C++ toolchain and CMake build the message package; venv makes the env.
$(STAMPS)/system:
	@bash tools/install_system_deps.sh
	@mkdir -p $(STAMPS) && touch $@

$(PYTHON): | $(STAMPS)/system
	python3 -m venv $(VENV)

$(STAMPS)/requirements: requirements.txt | $(PYTHON)
	$(PIP) install -r requirements.txt
	$(PYTHON) tools/relocate_ros_wheels.py
	@mkdir -p $(STAMPS) && touch $@

# The interface package is built with CMake into the environment's prefix, where the
# ROS wheels keep their own libraries, Python modules and ament index.
$(STAMPS)/msgs: $(STAMPS)/requirements $(MSG_FILES)
	cmake -S msg -B $(BUILD)/msg -DCMAKE_INSTALL_PREFIX=$(abspath $(VENV)) \
	  -DCMAKE_PREFIX_PATH=$(abspath $(VENV)) -DPython3_EXECUTABLE=$(abspath $(PYTHON)) \
	  -DBUILD_TESTING=OFF --log-level=WARNING > /dev/null
	cmake --build $(BUILD)/msg -j 2 > /dev/null
	cmake --install $(BUILD)/msg > /dev/null
	@touch $@

# graph.py lists the nodes, whose console scripts the install writes.
$(STAMPS)/package: $(STAMPS)/msgs setup.py setup.cfg package.xml alpamayo_ros/graph.py
	$(PIP) install --use-pep517 --no-deps --no-build-isolation -e .
	@touch $@

clean:
	rm -rf $(VENV) $(BUILD) *.egg-info
