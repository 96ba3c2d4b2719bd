#!/usr/bin/env bash
# TIPC chain of paddlenlp-fastformer: train (one process, then data parallel over CPU processes),
# evaluate, export for Paddle Inference, then run inference with oneDNN on and off x thread counts x
# batch sizes. Every step appends one line to test_tipc/output/<model>/<MODE>/results_python.log:
#   Run successfully with command - CMD!     or     Run failed with command - CMD!
# and the script exits 1 when any step failed.
#
#   bash test_tipc/prepare.sh test_tipc/configs/fastformer/train_infer_python.txt lite_train_lite_infer
#   bash test_tipc/test_train_inference_python.sh test_tipc/configs/fastformer/train_infer_python.txt lite_train_lite_infer
#
# MODE: lite_train_lite_infer | lite_train_whole_infer | whole_infer | whole_train_whole_infer
set -u

if [[ $# -lt 2 ]]; then
    echo "usage: bash test_tipc/test_train_inference_python.sh CONFIG MODE" >&2
    exit 2
fi
FILENAME=$(realpath "$1")
MODE=$2
ROOT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "${ROOT_DIR}/test_tipc/common_func.sh"
cd "${ROOT_DIR}" || exit 2

case " lite_train_lite_infer lite_train_whole_infer whole_infer whole_train_whole_infer " in
    *" ${MODE} "*) ;;
    *) echo "error: unknown MODE '${MODE}'; expected lite_train_lite_infer, lite_train_whole_infer, whole_infer or whole_train_whole_infer" >&2
       exit 2 ;;
esac
if [[ ! -f "${FILENAME}" ]]; then
    echo "error: config ${FILENAME} not found" >&2
    exit 2
fi
func_check_layout "${FILENAME}" 51 \
    "1:===========================train_params 2:model_name: 3:python: 4:gpu_list: 15:trainer: 16:norm_train: \
     23:===========================eval_params 24:eval: 27:===========================infer_params \
     28:Global.save_inference_dir: 30:norm_export: 37:train_model: 38:infer_export: 40:inference: \
     41:--use_gpu: 42:--enable_mkldnn: 43:--cpu_threads: 44:--batch_size: 47:--model_dir: 48:--data_dir: 50:--benchmark:" \
    || exit 2

mapfile -t lines < "${FILENAME}"
# line N of the file is lines[N-1]
# ---- train_params ----
model_name=$(func_parser_value "${lines[1]}")
python=$(func_parser_value "${lines[2]}")
gpu_list=$(func_parser_value "${lines[3]}")
train_use_gpu_key=$(func_parser_key "${lines[4]}")
train_use_gpu_value=$(func_parser_value "${lines[4]}")
autocast_list=$(func_parser_value "${lines[5]}")
autocast_key=$(func_parser_key "${lines[5]}")
epoch_key=$(func_parser_key "${lines[6]}")
epoch_num=$(func_parser_value_by_mode "${lines[6]}" "${MODE}")
save_model_key=$(func_parser_key "${lines[7]}")
train_batch_key=$(func_parser_key "${lines[8]}")
train_batch_value=$(func_parser_value_by_mode "${lines[8]}" "${MODE}")
pretrain_model_key=$(func_parser_key "${lines[9]}")
pretrain_model_value=$(func_parser_value_by_mode "${lines[9]}" "${MODE}")
train_model_name=$(func_parser_value "${lines[10]}")
train_infer_data=$(func_parser_value_by_mode "${lines[11]}" "${MODE}")
train_param_key1=$(func_parser_key "${lines[12]}")
train_param_value1=$(func_parser_value_by_mode "${lines[12]}" "${MODE}")

trainer_list=$(func_parser_value "${lines[14]}")
norm_trainer=$(func_parser_value "${lines[15]}")
pact_trainer=$(func_parser_value "${lines[16]}")
fpgm_trainer=$(func_parser_value "${lines[17]}")
distill_trainer=$(func_parser_value "${lines[18]}")
trainer_key1=$(func_parser_key "${lines[19]}")
trainer_value1=$(func_parser_value_by_mode "${lines[19]}" "${MODE}")
trainer_key2=$(func_parser_key "${lines[20]}")
trainer_value2=$(func_parser_value_by_mode "${lines[20]}" "${MODE}")
# ---- eval_params ----
eval_py=$(func_parser_value "${lines[23]}")
eval_key1=$(func_parser_key "${lines[24]}")
eval_value1=$(func_parser_value_by_mode "${lines[24]}" "${MODE}")
# ---- infer_params ----
save_infer_key=$(func_parser_key "${lines[27]}")
export_weight_key=$(func_parser_key "${lines[28]}")
norm_export=$(func_parser_value "${lines[29]}")
export_key1=$(func_parser_key "${lines[33]}")
export_value1=$(func_parser_value_by_mode "${lines[33]}" "${MODE}")
export_key2=$(func_parser_key "${lines[34]}")
export_value2=$(func_parser_value_by_mode "${lines[34]}" "${MODE}")
infer_model_dir=$(func_parser_value_by_mode "${lines[36]}" "${MODE}")
infer_export=$(func_parser_value "${lines[37]}")
infer_is_quant=$(func_parser_value "${lines[38]}")
inference_py=$(func_parser_value "${lines[39]}")
use_gpu_key=$(func_parser_key "${lines[40]}")
use_gpu_list=$(func_parser_value "${lines[40]}")
use_mkldnn_key=$(func_parser_key "${lines[41]}")
use_mkldnn_list=$(func_parser_value "${lines[41]}")
cpu_threads_key=$(func_parser_key "${lines[42]}")
cpu_threads_list=$(func_parser_value "${lines[42]}")
batch_size_key=$(func_parser_key "${lines[43]}")
batch_size_list=$(func_parser_value "${lines[43]}")
use_trt_key=$(func_parser_key "${lines[44]}")
use_trt_list=$(func_parser_value "${lines[44]}")
precision_key=$(func_parser_key "${lines[45]}")
precision_list=$(func_parser_value "${lines[45]}")
infer_model_key=$(func_parser_key "${lines[46]}")
data_dir_key=$(func_parser_key "${lines[47]}")
save_log_key=$(func_parser_key "${lines[48]}")
save_log_value=$(func_parser_value "${lines[48]}")
benchmark_key=$(func_parser_key "${lines[49]}")
benchmark_value=$(func_parser_value "${lines[49]}")
infer_key1=$(func_parser_key "${lines[50]}")
infer_value1=$(func_parser_value "${lines[50]}")

LOG_PATH="./test_tipc/output/${model_name}/${MODE}"
func_start_chain "${LOG_PATH}" results_python.log

data_source=$(func_data_source "$(dirname "${train_infer_data}")")
echo "TIPC ${model_name} ${MODE}: data ${data_source}" | tee "${LOG_PATH}/data_source.txt"

# func_inference PYTHON INFERENCE_PY MODEL_DIR LOG_DIR DATA_FILE [all|first]
# Runs the inference matrix on an exported model: oneDNN x threads x batch sizes (CPU), and the
# GPU variants only where paddle is compiled with CUDA; `first` runs only the first value of each list.
function func_inference() {
    local _python=$1 _script=$2 _model_dir=$3 _log_path=$4 _data=$5 _which=${6:-all}
    local use_gpu use_mkldnn threads batch_size precision use_trt _save_log cmd set_log_path
    local use_gpu_list=${use_gpu_list} use_mkldnn_list=${use_mkldnn_list} cpu_threads_list=${cpu_threads_list}
    local batch_size_list=${batch_size_list} precision_list=${precision_list} use_trt_list=${use_trt_list}
    if [[ "${_which}" == "first" ]]; then
        use_gpu_list=${use_gpu_list%%|*}; use_mkldnn_list=${use_mkldnn_list%%|*}
        cpu_threads_list=${cpu_threads_list%%|*}; batch_size_list=${batch_size_list%%|*}
        precision_list=${precision_list%%|*}; use_trt_list=${use_trt_list%%|*}
    fi
    mkdir -p "${_log_path}"
    for use_gpu in ${use_gpu_list//|/ }; do
        if [[ "${use_gpu}" == "False" || "${use_gpu}" == "false" ]]; then
            for use_mkldnn in ${use_mkldnn_list//|/ }; do
                for threads in ${cpu_threads_list//|/ }; do
                    for batch_size in ${batch_size_list//|/ }; do
                        for precision in ${precision_list//|/ }; do
                            if [[ "${precision}" != "fp32" ]]; then
                                continue   # the CPU deployment runs fp32 only
                            fi
                            _save_log="${_log_path}/python_infer_cpu_usemkldnn_${use_mkldnn}_threads_${threads}_precision_${precision}_batchsize_${batch_size}.log"
                            set_log_path=$(func_set_params "${save_log_key}" "${save_log_value}")
                            if [[ "${save_log_value}" == "True" ]]; then
                                set_log_path=$(func_set_params "${save_log_key}" "${_save_log%.log}_benchmark.log")
                            fi
                            cmd="${_python} ${_script} $(func_set_params "${use_gpu_key}" "${use_gpu}") \
$(func_set_params "${use_mkldnn_key}" "${use_mkldnn}") $(func_set_params "${cpu_threads_key}" "${threads}") \
$(func_set_params "${batch_size_key}" "${batch_size}") $(func_set_params "${use_trt_key}" "False") \
$(func_set_params "${precision_key}" "${precision}") $(func_set_params "${infer_model_key}" "${_model_dir}") \
$(func_set_params "${data_dir_key}" "${_data}") $(func_set_params "${benchmark_key}" "${benchmark_value}") \
${set_log_path} $(func_set_params "${infer_key1}" "${infer_value1}")"
                            echo "+ ${cmd}"
                            eval ${cmd} > "${_save_log}" 2>&1
                            status_check $? "${cmd}" "${status_log}" "${_save_log}"
                        done
                    done
                done
            done
        elif [[ "${use_gpu}" == "True" || "${use_gpu}" == "true" ]]; then
            if ! "${_python}" -c "import paddle, sys; sys.exit(0 if paddle.is_compiled_with_cuda() else 1)" 2>/dev/null; then
                echo "GPU inference skipped: this paddle build has no CUDA (--use_gpu True is not certified here)"
                continue
            fi
            for use_trt in ${use_trt_list//|/ }; do
                for precision in ${precision_list//|/ }; do
                    for batch_size in ${batch_size_list//|/ }; do
                        _save_log="${_log_path}/python_infer_gpu_usetrt_${use_trt}_precision_${precision}_batchsize_${batch_size}.log"
                        cmd="${_python} ${_script} $(func_set_params "${use_gpu_key}" "${use_gpu}") \
$(func_set_params "${use_trt_key}" "${use_trt}") $(func_set_params "${precision_key}" "${precision}") \
$(func_set_params "${batch_size_key}" "${batch_size}") $(func_set_params "${infer_model_key}" "${_model_dir}") \
$(func_set_params "${data_dir_key}" "${_data}") $(func_set_params "${benchmark_key}" "${benchmark_value}") \
$(func_set_params "${infer_key1}" "${infer_value1}")"
                        echo "+ ${cmd}"
                        eval ${cmd} > "${_save_log}" 2>&1
                        status_check $? "${cmd}" "${status_log}" "${_save_log}"
                    done
                done
            done
        else
            echo "error: ${use_gpu_key} value '${use_gpu}' is neither True nor False" >&2
            TIPC_FAILED=$((TIPC_FAILED + 1))
        fi
    done
}

# func_export PYTHON EXPORT_CMD WEIGHTS_DIR OUT_DIR STEP_LOG
function func_export() {
    local _python=$1 _export=$2 _weights=$3 _out=$4 _log=$5 cmd
    cmd="${_python} ${_export} $(func_set_params "${export_weight_key}" "${_weights}") \
$(func_set_params "${save_infer_key}" "${_out}") $(func_set_params "${export_key1}" "${export_value1}") \
$(func_set_params "${export_key2}" "${export_value2}")"
    echo "+ ${cmd}"
    eval ${cmd} > "${_log}" 2>&1
    status_check $? "${cmd}" "${status_log}" "${_log}"
}

if [[ "${MODE}" == "whole_infer" ]]; then
    # no training: export the checkpoint prepare.sh made (or was given), then run the inference matrix
    if [[ "${infer_is_quant}" == "True" ]]; then
        echo "error: quantised inference is not supported by ${model_name}" >&2
        exit 2
    fi
    model_dir=${infer_model_dir}
    if [[ "${infer_export}" != "null" ]]; then
        model_dir="${LOG_PATH}/whole_infer_export/inference"
        func_export "${python}" "${infer_export}" "${infer_model_dir}" "${model_dir}" "${LOG_PATH}/export_whole_infer.log"
    fi
    func_inference "${python}" "${inference_py}" "${model_dir}" "${LOG_PATH}/infer" "${train_infer_data}"
else
    matrix_done=False
    for gpu in ${gpu_list//|/ }; do
        for autocast in ${autocast_list//|/ }; do
            for trainer in ${trainer_list//|/ }; do
                case "${trainer}" in
                    norm_train) run_train=${norm_trainer} ;;
                    pact_train) run_train=${pact_trainer} ;;
                    fpgm_train) run_train=${fpgm_trainer} ;;
                    distill_train) run_train=${distill_trainer} ;;
                    *) run_train=null ;;
                esac
                if [[ "${run_train}" == "null" ]]; then
                    echo "error: trainer '${trainer}' has no command in ${FILENAME}" >&2
                    TIPC_FAILED=$((TIPC_FAILED + 1))
                    continue
                fi
                run_name="${trainer}_gpus_${gpu}_autocast_${autocast}"
                save_log="${LOG_PATH}/${run_name}"
                set_epoch=$(func_set_params "${epoch_key}" "${epoch_num}")
                set_batch=$(func_set_params "${train_batch_key}" "${train_batch_value}")
                set_pretrain=$(func_set_params "${pretrain_model_key}" "${pretrain_model_value}")
                set_autocast=$(func_set_params "${autocast_key}" "${autocast}")
                set_use_gpu=$(func_set_params "${train_use_gpu_key}" "${train_use_gpu_value}")
                set_save_model=$(func_set_params "${save_model_key}" "${save_log}")
                set_train_params1=$(func_set_params "${train_param_key1}" "${train_param_value1}")
                set_key1=$(func_set_params "${trainer_key1}" "${trainer_value1}")
                set_key2=$(func_set_params "${trainer_key2}" "${trainer_value2}")
                train_args="${set_use_gpu} ${set_save_model} ${set_epoch} ${set_pretrain} ${set_autocast} ${set_batch} ${set_train_params1} ${set_key1} ${set_key2}"
                if [[ "${gpu}" == "-1" ]]; then
                    # one process on the CPU
                    cmd="${python} ${run_train} ${train_args}"
                elif [[ "${gpu}" =~ ^cpu([0-9]+)$ ]]; then
                    # data parallel over N CPU processes (gloo), as in the project README
                    nproc=${BASH_REMATCH[1]}
                    rm -rf "${save_log}_dist_log"   # the launcher appends to old worker logs otherwise
                    cmd="${python} -m paddle.distributed.launch --nproc_per_node ${nproc} --log_dir ${save_log}_dist_log ${run_train} ${train_args}"
                else
                    echo "error: gpu_list entry '${gpu}' is not supported: use -1 (one CPU process) or cpuN (N CPU processes)" >&2
                    TIPC_FAILED=$((TIPC_FAILED + 1))
                    continue
                fi
                train_log="${LOG_PATH}/${run_name}_train.log"
                echo "+ ${cmd}"
                eval ${cmd} > "${train_log}" 2>&1
                status_check $? "${cmd}" "${status_log}" "${train_log}"

                weights="${save_log}/${train_model_name}"
                # evaluation of the trained checkpoint on the test split
                if [[ "${eval_py}" != "null" ]]; then
                    set_eval_pretrain=$(func_set_params "${pretrain_model_key}" "${weights}")
                    set_eval_params1=$(func_set_params "${eval_key1}" "${eval_value1}")
                    cmd="${python} ${eval_py} ${set_eval_pretrain} ${set_train_params1} ${set_key1} ${set_eval_params1}"
                    eval_log="${LOG_PATH}/${run_name}_eval.log"
                    echo "+ ${cmd}"
                    eval ${cmd} > "${eval_log}" 2>&1
                    status_check $? "${cmd}" "${status_log}" "${eval_log}"
                fi
                # export for Paddle Inference, then the inference matrix on the exported model
                if [[ "${norm_export}" != "null" ]]; then
                    save_infer_path="${save_log}/inference"
                    func_export "${python}" "${norm_export}" "${weights}" "${save_infer_path}" "${LOG_PATH}/${run_name}_export.log"
                    if [[ "${inference_py}" != "null" ]]; then
                        if [[ "${matrix_done}" == "False" ]]; then
                            func_inference "${python}" "${inference_py}" "${save_infer_path}" "${LOG_PATH}/${run_name}_infer" "${train_infer_data}"
                            matrix_done=True
                        else
                            # The exported format does not depend on how training was parallelised: the
                            # full matrix ran on the first run's export; this one gets one variant (the
                            # first value of every list), which keeps the lite chain within minutes.
                            func_inference "${python}" "${inference_py}" "${save_infer_path}" "${LOG_PATH}/${run_name}_infer" "${train_infer_data}" first
                        fi
                    fi
                fi
            done
        done
    done
fi

func_finish_chain "${model_name}" "${MODE}"
