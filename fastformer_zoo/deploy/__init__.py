"""Export to Paddle Inference / ONNX, and prediction from an export (no training code)."""
