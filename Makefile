# Two commands for a newcomer (see README):
#   make demo   set up the project-local environment and run the graph on generated frames
#   make test   set up the same environment and run the whole test suite
# Every step is idempotent and keyed on the files it depends on.

VENV      := .venv
PYTHON    := $(VENV)/bin/python
STAMPS    := $(VENV)/.stamps
BUILD     := build
PIP       := $(PYTHON) -m pip --disable-pip-version-check --quiet
# Interface packages built into the environment: the project's own (msg/) and those the
# ROS wheels lack (interfaces/, see its README).
INTERFACES := interfaces/tf2_msgs msg
MSG_FILES := $(foreach dir,$(INTERFACES),$(wildcard $(dir)/*.msg $(dir)/msg/*.msg) \
               $(dir)/CMakeLists.txt $(dir)/package.xml)

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

# The interface packages are built with CMake into the environment's prefix, where the
# ROS wheels keep their own libraries, Python modules and ament index.
$(STAMPS)/msgs: $(STAMPS)/requirements $(MSG_FILES)
	@for dir in $(INTERFACES); do \
	  cmake -S $$dir -B $(BUILD)/$$dir -DCMAKE_INSTALL_PREFIX=$(abspath $(VENV)) \
	    -DCMAKE_PREFIX_PATH=$(abspath $(VENV)) -DPython3_EXECUTABLE=$(abspath $(PYTHON)) \
	    -DBUILD_TESTING=OFF --log-level=WARNING > /dev/null \
	  && cmake --build $(BUILD)/$$dir -j 2 > /dev/null \
	  && cmake --install $(BUILD)/$$dir > /dev/null || exit 1; \
	done
	@touch $@

# graph.py lists the nodes, whose console scripts the install writes.
$(STAMPS)/package: $(STAMPS)/msgs setup.py setup.cfg package.xml alpamayo_ros/graph.py
	$(PIP) install --use-pep517 --no-deps --no-build-isolation -e .
	@touch $@

clean:
	rm -rf $(VENV) $(BUILD) *.egg-info
