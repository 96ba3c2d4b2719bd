"""What an export directory holds: the one place that names its files and the graph's inputs."""

__all__ = ["MODEL_PREFIX", "MODEL_FILES", "FUSED_MODEL_PREFIX", "FUSED_MODEL_FILES", "PACKED_MODEL_PREFIX", "PACKED_MODEL_FILES", "PACKED_ONNX_FILE", "PACKED_ONNX_INT8_FILE", "PACKED_INPUT_NAMES", "ONNX_FILE", "ONNX_INT8_FILE", "INFERENCE_CONFIG_FILE", "INPUT_NAMES", "TOKENIZER_FILES"]

MODEL_PREFIX = "inference"
MODEL_FILES = (f"{MODEL_PREFIX}.json", f"{MODEL_PREFIX}.pdiparams")  # the static graph (PIR) and its weights
# The same graph with the fused CPU kernels as custom operators: faster on Paddle Inference, where the
# kernels' library is built and loaded; the portable graph above holds standard operators only.
FUSED_MODEL_PREFIX = f"{MODEL_PREFIX}_fused"
FUSED_MODEL_FILES = (f"{FUSED_MODEL_PREFIX}.json", f"{FUSED_MODEL_PREFIX}.pdiparams")
# The same model taking texts packed back to back in one row, without padding (standard operators only):
# inputs input_ids and segment_ids [1, T], output [texts, num_labels].
PACKED_MODEL_PREFIX = f"{MODEL_PREFIX}_packed"
PACKED_MODEL_FILES = (f"{PACKED_MODEL_PREFIX}.json", f"{PACKED_MODEL_PREFIX}.pdiparams")
PACKED_ONNX_FILE = f"{PACKED_MODEL_PREFIX}.onnx"
PACKED_ONNX_INT8_FILE = f"{PACKED_MODEL_PREFIX}_int8.onnx"
PACKED_INPUT_NAMES = ("input_ids", "segment_ids")
ONNX_FILE = f"{MODEL_PREFIX}.onnx"
ONNX_INT8_FILE = f"{MODEL_PREFIX}_int8.onnx"  # the ONNX graph with int8 weights and dynamically quantized matmuls
INFERENCE_CONFIG_FILE = "inference_config.json"
INPUT_NAMES = ("input_ids", "attention_mask")
TOKENIZER_FILES = ("vocab.txt", "tokenizer_config.json")
