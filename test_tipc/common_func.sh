#!/usr/bin/env bash
# Helpers shared by the TIPC scripts of paddlenlp-fastformer. Source this file; do not run it.
#
# A TIPC config is a positional text file: one `key:value` per line, read by line number, so a
# blank or extra line shifts every key after it. A value may pick one entry per mode,
# `key:lite_train_lite_infer=1|whole_train_whole_infer=3`, or list alternatives to loop over,
# `--cpu_threads:1|2`. `null:null` fills a line that does not apply. A value never contains ':'.

TIPC_MODES="lite_train_lite_infer lite_train_whole_infer whole_infer whole_train_whole_infer paddle2onnx_infer"

# The part of a `key:value` line before the first ':'.
function func_parser_key() {
    local line=$1
    echo "${line%%:*}"
}

# The part of a `key:value` line after the first ':' (TIPC values contain no further ':').
function func_parser_value() {
    local line=$1
    if [[ "${line}" != *:* ]]; then
        echo ""
        return
    fi
    echo "${line#*:}"
}

# True when every '|'-separated entry of VALUE is `<mode>=<something>` for a known mode.
function func_is_per_mode() {
    local value=$1 entry mode
    [[ "${value}" == *=* ]] || return 1
    local IFS='|'
    for entry in ${value}; do
        mode=${entry%%=*}
        [[ " ${TIPC_MODES} " == *" ${mode} "* ]] || return 1
    done
    return 0
}

# The value of a `key:value` line for MODE: the entry `MODE=v` of a per-mode value (empty when MODE
# has none), or the whole value when it is not per-mode.
function func_parser_value_by_mode() {
    local line=$1 run_mode=$2 value entry
    value=$(func_parser_value "${line}")
    if ! func_is_per_mode "${value}"; then
        echo "${value}"
        return
    fi
    local IFS='|'
    for entry in ${value}; do
        if [[ "${entry%%=*}" == "${run_mode}" ]]; then
            echo "${entry#*=}"
            return
        fi
    done
    echo ""
}

# `KEY=VALUE` for a command line, or nothing when the key or the value is null or empty.
function func_set_params() {
    local key=$1 value=$2
    if [[ -z "${key}" || "${key}" == "null" || -z "${value}" || "${value}" == "null" ]]; then
        echo ""
    else
        echo "${key}=${value}"
    fi
}

# status_check STATUS COMMAND RESULTS_LOG [STEP_LOG]
# Appends `Run successfully with command - COMMAND!` or `Run failed with command - COMMAND!` to
# RESULTS_LOG and counts failures in TIPC_FAILED (the calling script exits non-zero if it is > 0).
function status_check() {
    local last_status=$1 run_command=$2 run_log=$3 step_log=${4:-}
    # one line per step: squeeze the command's whitespace
    run_command=$(echo "${run_command}" | tr -s ' ' | sed -e 's/^ *//' -e 's/ *$//')
    if [[ "${last_status}" -eq 0 ]]; then
        echo "Run successfully with command - ${run_command}!" >> "${run_log}"
        echo -e "\033[32m Run successfully with command - ${run_command}! \033[0m"
    else
        TIPC_FAILED=$((${TIPC_FAILED:-0} + 1))
        echo "Run failed with command - ${run_command}!" >> "${run_log}"
        echo -e "\033[31m Run failed with command - ${run_command}! \033[0m"
        if [[ -n "${step_log}" && -f "${step_log}" ]]; then
            echo "---- last lines of ${step_log} ----"
            tail -n 15 "${step_log}"
            echo "----"
        fi
    fi
}

# func_check_layout CONFIG EXPECTED_LINES "LINE_NO:KEY ..."
# Fails when the positional config has the wrong number of lines or a key is not where the scripts
# read it (a blank or missing line would otherwise shift every key silently).
function func_check_layout() {
    local config=$1 expected=$2 checks=$3 n check line_no key actual
    n=$(wc -l < "${config}")
    # a file without a final newline has one line more than wc counts
    [[ -n "$(tail -c 1 "${config}")" ]] && n=$((n + 1))
    if [[ "${n}" -ne "${expected}" ]]; then
        echo "error: ${config} has ${n} lines; the TIPC layout needs exactly ${expected}" >&2
        return 1
    fi
    for check in ${checks}; do
        line_no=${check%%:*}
        key=${check#*:}
        actual=$(sed -n "${line_no}p" "${config}")
        if [[ "${actual}" != "${key}"* ]]; then
            echo "error: ${config} line ${line_no} is '${actual}'; expected it to start with '${key}'" >&2
            return 1
        fi
    done
    return 0
}

# The data set the TIPC data folder was prepared from (written by prepare.sh).
function func_data_source() {
    local data_dir=$1
    if [[ -f "${data_dir}/DATA_SOURCE" ]]; then
        cat "${data_dir}/DATA_SOURCE"
    else
        echo "unknown (no ${data_dir}/DATA_SOURCE: run test_tipc/prepare.sh first)"
    fi
}

# func_start_chain LOG_PATH LOG_NAME: an empty results log (one run, one verdict) and a zero failure count.
# Sets status_log, TIPC_FAILED and start_time for the calling script.
function func_start_chain() {
    mkdir -p "$1"
    status_log="$1/$2"
    : > "${status_log}"
    TIPC_FAILED=0
    start_time=$(date +%s)
}

# func_finish_chain MODEL MODE: print the verdict line and exit 1 if any step failed, 0 otherwise.
function func_finish_chain() {
    local steps elapsed
    steps=$(wc -l < "${status_log}")
    elapsed=$(( $(date +%s) - start_time ))
    echo "TIPC $1 $2: ${steps} step(s), ${TIPC_FAILED} failed, ${elapsed}s; log ${status_log}"
    if [[ "${TIPC_FAILED}" -gt 0 ]]; then
        exit 1
    fi
    exit 0
}
