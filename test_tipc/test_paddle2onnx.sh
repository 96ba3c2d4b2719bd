#!/usr/bin/env bash
# TIPC paddle2onnx chain of paddlenlp-fastformer: export a checkpoint to Paddle Inference + ONNX
# (tools/export_model.py --onnx, which runs paddle2onnx), run the ONNX model with onnxruntime over
# thread counts x batch sizes, and check that onnxruntime predicts what Paddle Inference predicts on
# the same texts. Steps are logged to test_tipc/output/<model>/paddle2onnx_infer/results_paddle2onnx.log;
# the script exits 1 when any step failed.
#
#   bash test_tipc/prepare.sh test_tipc/configs/fastformer/train_infer_python_paddle2onnx.txt paddle2onnx_infer
#   bash test_tipc/test_paddle2onnx.sh test_tipc/configs/fastformer/train_infer_python_paddle2onnx.txt paddle2onnx_infer
set -u

if [[ $# -lt 1 ]]; then
    echo "usage: bash test_tipc/test_paddle2onnx.sh CONFIG [paddle2onnx_infer]" >&2
    exit 2
fi
FILENAME=$(realpath "$1")
MODE=${2:-paddle2onnx_infer}
ROOT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "${ROOT_DIR}/test_tipc/common_func.sh"
cd "${ROOT_DIR}" || exit 2

if [[ "${MODE}" != "paddle2onnx_infer" ]]; then
    echo "error: unknown MODE '${MODE}'; this chain runs paddle2onnx_infer" >&2
    exit 2
fi
if [[ ! -f "${FILENAME}" ]]; then
    echo "error: config ${FILENAME} not found" >&2
    exit 2
fi
func_check_layout "${FILENAME}" 18 \
    "1:===========================paddle2onnx_params 2:model_name: 3:python: 4:2onnx: 9:inference: \
     10:--use_gpu: 11:--model_dir: 12:--data_dir: 13:--cpu_threads: 14:--batch_size: 15:--precision: \
     16:--benchmark: 17:--save_log_path: 18:compare_backend:" || exit 2

mapfile -t lines < "${FILENAME}"
model_name=$(func_parser_value "${lines[1]}")
python=$(func_parser_value "${lines[2]}")
export_py=$(func_parser_value "${lines[3]}")
weights_key=$(func_parser_key "${lines[4]}")
weights_value=$(func_parser_value "${lines[4]}")
save_dir_key=$(func_parser_key "${lines[5]}")
save_dir_value=$(func_parser_value "${lines[5]}")
export_key1=$(func_parser_key "${lines[6]}")
export_value1=$(func_parser_value "${lines[6]}")
export_key2=$(func_parser_key "${lines[7]}")
export_value2=$(func_parser_value "${lines[7]}")
inference_py=$(func_parser_value "${lines[8]}")
use_gpu_key=$(func_parser_key "${lines[9]}")
use_gpu_value=$(func_parser_value "${lines[9]}")
model_dir_key=$(func_parser_key "${lines[10]}")
data_dir_key=$(func_parser_key "${lines[11]}")
data_dir_value=$(func_parser_value "${lines[11]}")
cpu_threads_key=$(func_parser_key "${lines[12]}")
cpu_threads_list=$(func_parser_value "${lines[12]}")
batch_size_key=$(func_parser_key "${lines[13]}")
batch_size_list=$(func_parser_value "${lines[13]}")
precision_key=$(func_parser_key "${lines[14]}")
precision_value=$(func_parser_value "${lines[14]}")
benchmark_key=$(func_parser_key "${lines[15]}")
benchmark_value=$(func_parser_value "${lines[15]}")
save_log_key=$(func_parser_key "${lines[16]}")
save_log_value=$(func_parser_value "${lines[16]}")
compare_backend=$(func_parser_value "${lines[17]}")

LOG_PATH="./test_tipc/output/${model_name}/${MODE}"
func_start_chain "${LOG_PATH}" results_paddle2onnx.log
echo "TIPC ${model_name} ${MODE}: data $(func_data_source "$(dirname "${data_dir_value}")")" | tee "${LOG_PATH}/data_source.txt"
if [[ -f test_tipc/data/checkpoint/SOURCE ]]; then
    echo "TIPC ${model_name} ${MODE}: checkpoint $(cat test_tipc/data/checkpoint/SOURCE)" | tee -a "${LOG_PATH}/data_source.txt"
fi

# 1. export: static graph + inference.onnx (paddle2onnx)
cmd="${python} ${export_py} $(func_set_params "${weights_key}" "${weights_value}") \
$(func_set_params "${save_dir_key}" "${save_dir_value}") $(func_set_params "${export_key1}" "${export_value1}") \
$(func_set_params "${export_key2}" "${export_value2}")"
export_log="${LOG_PATH}/paddle2onnx_export.log"
echo "+ ${cmd}"
eval ${cmd} > "${export_log}" 2>&1
status=$?
if [[ ${status} -eq 0 && ! -f "${save_dir_value}/inference.onnx" ]]; then
    echo "export reported success but wrote no ${save_dir_value}/inference.onnx" >> "${export_log}"
    status=1
fi
status_check ${status} "${cmd}" "${status_log}" "${export_log}"

# 2. onnxruntime inference: threads x batch sizes
first_log=""
for threads in ${cpu_threads_list//|/ }; do
    for batch_size in ${batch_size_list//|/ }; do
        _save_log="${LOG_PATH}/python_infer_onnxruntime_threads_${threads}_precision_${precision_value}_batchsize_${batch_size}.log"
        set_log_path=$(func_set_params "${save_log_key}" "${save_log_value}")
        if [[ "${save_log_value}" == "True" ]]; then
            set_log_path=$(func_set_params "${save_log_key}" "${_save_log%.log}_benchmark.log")
        fi
        cmd="${python} ${inference_py} $(func_set_params "${use_gpu_key}" "${use_gpu_value}") \
$(func_set_params "${cpu_threads_key}" "${threads}") $(func_set_params "${batch_size_key}" "${batch_size}") \
$(func_set_params "${precision_key}" "${precision_value}") $(func_set_params "${model_dir_key}" "${save_dir_value}") \
$(func_set_params "${data_dir_key}" "${data_dir_value}") $(func_set_params "${benchmark_key}" "${benchmark_value}") ${set_log_path}"
        echo "+ ${cmd}"
        eval ${cmd} > "${_save_log}" 2>&1
        status_check $? "${cmd}" "${status_log}" "${_save_log}"
        first_log=${first_log:-${_save_log}}
    done
done

# 3. consistency: the same exported model on another backend predicts the same probabilities
if [[ "${compare_backend}" != "null" && -n "${compare_backend}" ]]; then
    ref_log="${LOG_PATH}/python_infer_${compare_backend}_reference.log"
    first_threads=${cpu_threads_list%%|*}
    first_batch=${batch_size_list%%|*}
    # the same script and arguments as the first onnxruntime run, on the reference backend
    ref_inference=${inference_py/--backend onnxruntime/}
    cmd="${python} ${ref_inference} --backend ${compare_backend} $(func_set_params "${use_gpu_key}" "${use_gpu_value}") \
$(func_set_params "${cpu_threads_key}" "${first_threads}") $(func_set_params "${batch_size_key}" "${first_batch}") \
$(func_set_params "${precision_key}" "${precision_value}") $(func_set_params "${model_dir_key}" "${save_dir_value}") \
$(func_set_params "${data_dir_key}" "${data_dir_value}")"
    echo "+ ${cmd}"
    eval ${cmd} > "${ref_log}" 2>&1
    status_check $? "${cmd}" "${status_log}" "${ref_log}"
    compare_log="${LOG_PATH}/compare_onnxruntime_${compare_backend}.log"
    cmd="${python} test_tipc/compare_predictions.py ${ref_log} ${first_log}"
    echo "+ ${cmd}"
    eval ${cmd} > "${compare_log}" 2>&1
    status_check $? "${cmd}" "${status_log}" "${compare_log}"
    cat "${compare_log}"
fi

func_finish_chain "${model_name}" "${MODE}"
