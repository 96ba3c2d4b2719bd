"""The prediction service: micro-batched HTTP serving of an export, its demo page, and load testing."""
