"""The model package: the deployable files of one model version (DESIGN.md, "Model package").

Read side, imported by the runtime, the server and the agent: no torch here, ever. The write side
(:mod:`tagtrain.package.write`: ONNX export, int8 quantisation, parity checks) imports torch and is
imported only by training code, by its full module path.
"""

from tagtrain.package.archive import extract_package, zip_package
from tagtrain.package.manifest import (
    FORMAT_VERSION,
    GOLDEN,
    INPUT_NAME,
    LABELS,
    MANIFEST,
    MODEL_FP32,
    MODEL_INT8,
    OUTPUT_NAME,
    PACKAGE_FILES,
    Activation,
    DatasetInfo,
    InputSpec,
    Manifest,
    OutputSpec,
    Task,
    Thresholds,
)
from tagtrain.package.read import Golden, Package, check_io, read_package

__all__ = [
    "FORMAT_VERSION",
    "GOLDEN",
    "INPUT_NAME",
    "LABELS",
    "MANIFEST",
    "MODEL_FP32",
    "MODEL_INT8",
    "OUTPUT_NAME",
    "PACKAGE_FILES",
    "Activation",
    "DatasetInfo",
    "Golden",
    "InputSpec",
    "Manifest",
    "OutputSpec",
    "Package",
    "Task",
    "Thresholds",
    "check_io",
    "extract_package",
    "read_package",
    "zip_package",
]
