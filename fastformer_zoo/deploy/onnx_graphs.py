"""The ONNX graphs of an export: converted from the static graph by paddle2onnx, cleaned for onnxruntime, and
quantized to int8.

The model expands a small tensor to its partner's shape before an element-wise product
(``fused_ops.broadcast_as``): Paddle's CPU kernels multiply same-shaped tensors several times faster than they
broadcast. onnxruntime broadcasts as fast as it multiplies, so there each expansion only writes a full-sized
copy: :func:`drop_broadcast_expands` removes those, leaving the broadcast to the product itself (the same
numbers, docs/deployment.md has the speed it gives, the int8 graphs gaining most).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Optional

from paddlenlp_fastformer.file_utils import output_redirected_to

from ..errors import UserError
from .export_format import MODEL_FILES, ONNX_FILE, ONNX_INT8_FILE

__all__ = ["ONNX_OPSET", "drop_broadcast_expands", "quantize_onnx_int8", "save_onnx"]

# Opset 17 has LayerNormalization as one operator; onnxruntime 1.16+ runs it.
ONNX_OPSET = 17
# Element-wise operators that broadcast their two inputs numpy-style.
BROADCASTING_OPERATORS = ("Add", "Sub", "Mul", "Div")


def save_onnx(directory: str, graph_files: tuple = MODEL_FILES, onnx_file: str = ONNX_FILE) -> None:
    """Convert a saved static graph (by default the portable one) with paddle2onnx, writing ``onnx_file`` next to it."""
    import onnx
    import paddle2onnx  # only --onnx needs it

    model_file, params_file = (os.path.join(directory, name) for name in graph_files)
    with tempfile.NamedTemporaryFile(prefix="paddle2onnx-", suffix=".log") as log:
        try:
            # paddle2onnx prints its progress from C++; only a failure's cause is worth showing.
            with output_redirected_to(log.name):
                # save_file=None returns the bytes: that skips paddle2onnx's optional polygraphy constant folding,
                # which would try to pip-install its own dependencies (onnxruntime optimises the graph at load anyway).
                converted = paddle2onnx.export(model_file, params_file, save_file=None, opset_version=ONNX_OPSET)
        except Exception as error:  # paddle2onnx logs the real cause, then fails on its own missing result
            cause = " | ".join(Path(log.name).read_text(errors="replace").strip().splitlines()[-3:])
            raise UserError(f"paddle2onnx could not convert the exported graph ({error}): {cause}") from None
    model = onnx.load_from_string(converted)
    drop_broadcast_expands(model)
    onnx.save(model, os.path.join(directory, onnx_file))


def drop_broadcast_expands(model) -> int:
    """Remove each ``Expand`` that only broadcasts a tensor to the shape of the other input of the element-wise
    products it feeds; returns how many it removed.

    paddle2onnx writes ``expand(small, shape(like))`` as ``Expand(small, Max(Shape(small), Shape(like)))``. When
    every consumer is a broadcasting operator whose other input is ``like``, numpy broadcasting of ``small``
    against ``like`` gives exactly that shape, so the consumers can take ``small`` itself.
    """
    graph = model.graph
    producers = {output: node for node in graph.node for output in node.output}
    consumers: dict = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    graph_outputs = {output.name for output in graph.output}

    def source(name: str) -> str:  # through paddle2onnx's Identity nodes
        while name in producers and producers[name].op_type == "Identity":
            name = producers[name].input[0]
        return name

    def broadcast_partner(expand) -> Optional[str]:
        """``like`` of ``Expand(small, Max(Shape(small), Shape(like)))`` (None if the node is not that pattern)."""
        maximum = producers.get(expand.input[1])
        if maximum is None or maximum.op_type != "Max" or len(maximum.input) != 2:
            return None
        shapes = [producers.get(source(name)) for name in maximum.input]
        if any(shape is None or shape.op_type != "Shape" for shape in shapes):
            return None
        shaped = [source(shape.input[0]) for shape in shapes]
        small = source(expand.input[0])
        if small not in shaped or shaped[0] == shaped[1]:
            return None
        return shaped[1] if shaped[0] == small else shaped[0]

    removed = []
    for expand in graph.node:
        if expand.op_type != "Expand" or expand.output[0] in graph_outputs:
            continue
        small, expanded, like = expand.input[0], expand.output[0], broadcast_partner(expand)
        users = consumers.get(expanded, [])
        if like is None or not users:
            continue
        partners = [[name for name in user.input if name != expanded] for user in users]
        if all(user.op_type in BROADCASTING_OPERATORS and len(user.input) == 2 and len(other) == 1 and source(other[0]) == like
               for user, other in zip(users, partners)):  # fmt: skip
            for user in users:
                user.input[list(user.input).index(expanded)] = small
            removed.append(expand)
    for expand in removed:
        graph.node.remove(expand)
    return len(removed)


def quantize_onnx_int8(directory: str, source: str = ONNX_FILE, target: str = ONNX_INT8_FILE) -> None:
    """``target`` (by default ``inference_int8.onnx``): onnxruntime's dynamic int8 quantization of the weight
    matmuls of ``source`` (by default ``inference.onnx``).

    Only products with a constant (weight) operand are quantized: those of two activations, as in the
    softmax baseline's attention, keep float32, where int8 would cost accuracy for little speed.
    """
    import onnx
    import onnxoptimizer  # installed with paddle2onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # paddle2onnx emits the weights as Constant nodes behind Identity nodes; the quantizer recognises a
    # weight only as an initializer, so those are turned into initializers first.
    graph = onnxoptimizer.optimize(onnx.load(os.path.join(directory, source)), ["extract_constant_to_initializer", "eliminate_identity"])
    with tempfile.TemporaryDirectory(prefix="quantize-") as scratch, output_redirected_to(os.path.join(scratch, "log")):
        onnx.save(graph, os.path.join(scratch, "float.onnx"))
        quantize_dynamic(
            os.path.join(scratch, "float.onnx"),
            os.path.join(directory, target),
            op_types_to_quantize=["MatMul"],
            per_channel=True,
            weight_type=QuantType.QInt8,
            extra_options={"MatMulConstBOnly": True},
        )
