"""The runtime: classify with a model package (numpy, Pillow, onnxruntime only; never torch).

The server, the agent and the CLI's ``predict``/``evaluate`` all go through
:class:`Classifier`, so preprocessing, thresholds and ordering are the same in every view.
"""

# The agent unpacks downloaded packages through the runtime, its one door to the package format.
from tagtrain.package import extract_package
from tagtrain.runtime.classifier import (
    Classification,
    Classifier,
    available_cpus,
    session_options,
)
from tagtrain.runtime.decode import decode_for_model

__all__ = [
    "Classification",
    "Classifier",
    "available_cpus",
    "decode_for_model",
    "extract_package",
    "session_options",
]
