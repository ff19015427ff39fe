#!/usr/bin/env bash
# Issue 12's GPU checks in one run, on a machine with an NVIDIA GPU and a Python that has
# torch with CUDA (no ROS needed: the pipeline's modules import none of it).
#
#   bash tools/gpu_checks.sh prepare     here, with network: the wheels the GPU machine
#                                        lacks (pyzmq for the model worker, pytest for
#                                        the CUDA tests; Python 3.12)
#                                        into .whl/, which must travel with the tree
#                                        (the device tool's carry: [".whl"])
#   bash tools/gpu_checks.sh             there, from the repository root: the checks;
#                                        each figure's output goes to $OUT (or
#                                        /tmp/gpu_checks) as well as to the terminal
#
# The checks:
# 0. the tests that need a CUDA device (they skip elsewhere): the embedded VLA on CUDA as
#    on the CPU, its CUDA graphs as its kernel-by-kernel run;
# 1. the embedded VLA on CUDA in fp16 (and fp32 beside it): the per-stage table of one
#    cycle, 4 new 320x576 frames each, 16 aligned frames (alpamayo-ros benchmark), with
#    its parts as CUDA graphs and (_eager) kernel by kernel;
# 2. an Alpamayo-R1-sized random-initialised double (0.45B vision encoder, 8.2B language
#    model, 2.3B action expert; 40 reasoning tokens for each of 6 samples, 5 flow steps)
#    run by the Alpamayo adapter in a model worker and in-process, alternating
#    (tools/benchmark_worker.py): its stages, the cycle, and what the worker boundary
#    adds; once as the released code runs it (the frames encoded and the prompt prefilled
#    per sample), once with both shared by the samples. Marks: the paper's 99 ms (vision
#    3.4, prefill 16.5, reasoning 70, trajectory 8.8), the ROS 2 wrapper's 600 ms. Eager
#    bf16 cannot reach the paper's reasoning: each token reads the 16.4 GB of language
#    model weights, about 5 ms at an H100's 3.35 TB/s, so 40 tokens take 200 ms or more.
#
# Overrides, for a dry run on a CPU (test/tools/test_gpu_checks.py): WHEELS (the folder of
# wheels to install first: .whl; empty for none), DEVICE (cuda), PRECISIONS (the embedded
# VLA's: fp16 fp32), R1_PRECISION (bf16), PRESET (the double's sizes: r1 or tiny), CYCLES
# (100 for the embedded VLA, a fifth of it for each run of the double).
set -uo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
device=${DEVICE:-cuda}
precisions=${PRECISIONS:-fp16 fp32}
cycles=${CYCLES:-100}

if [[ ${1:-} == prepare ]]; then
    "$python" -m pip download -q --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_26_x86_64 \
        --platform manylinux_2_17_x86_64 -d .whl pyzmq==27.3.0 pytest==9.2.0
    ls .whl
    exit
fi

out=${OUT:-/tmp/gpu_checks}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
wheels=${WHEELS-.whl}
if [[ -n $wheels ]] && compgen -G "$wheels/*.whl" > /dev/null; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/gpu_checks_site "$wheels"/*.whl || exit
    export PYTHONPATH=/tmp/gpu_checks_site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
if ! "$python" -c "import zmq"; then
    echo "pyzmq is missing (the model worker's protocol): run 'bash tools/gpu_checks.sh" \
        "prepare' where there is network, and bring .whl/ along" >&2
    exit 1
fi
status=0

if command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
fi | tee "$out/gpu.txt"
"$python" -c "import torch; print('torch', torch.__version__, torch.cuda.is_available() \
    and torch.cuda.get_device_name())" | tee -a "$out/gpu.txt"

echo "== 0. the tests that need a CUDA device"
"$python" -m pytest -q -p no:cacheprovider -rs test/model/test_cuda_graphs.py \
    test/backends/test_embedded_device.py 2>&1 | tee "$out/cuda_tests.txt" || status=1
if [[ $device == cuda* ]] && grep -Eq "needs a CUDA device|no CUDA device" "$out/cuda_tests.txt"; then
    echo "the CUDA tests skipped: torch sees no CUDA device here" >&2
    status=1
fi

echo "== 1. embedded VLA, one cycle per stage"
for precision in $precisions; do
    for graphs in cuda-graphs no-cuda-graphs; do
        "$python" -m alpamayo_ros.cli benchmark --backend embedded_vla --device "$device" \
            --precision "$precision" --cycles "$cycles" "--$graphs" \
            | tee "$out/embedded_${device}_$precision$([[ $graphs == no-* ]] && echo _eager).txt" \
            || status=1
    done
done

echo "== 2. Alpamayo-R1-sized double through the model worker"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export PYTHONPATH=$PWD/test/backends/official_double:$PYTHONPATH
for prefill in per_sample shared; do
    echo "-- frames encoded and prompt prefilled: $prefill"
    checkpoint=$scratch/Alpamayo-R1-sized-$prefill
    "$python" -m alpamayo_r1.models.sized "$checkpoint" --preset "${PRESET:-r1}" \
        --device "$device" $([[ $prefill == shared ]] && echo --shared-prefill) || exit
    "$python" tools/benchmark_worker.py --backend alpamayo_r1 --weights-file "$checkpoint" \
        --device "$device" --precision "${R1_PRECISION:-bf16}" --cycles $((cycles / 5)) \
        --timeout-s 300 | tee "$out/r1_sized_worker_$prefill.txt" || status=1
done
exit $status
