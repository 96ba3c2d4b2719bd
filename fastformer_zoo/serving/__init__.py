"""The prediction service: micro-batched HTTP serving of an export, its demo page and its metrics (its load test is benchmarks/load_test.py)."""
