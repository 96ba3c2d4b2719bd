"""Throughput of dygraph, Paddle Inference (oneDNN on and off) and onnxruntime on this CPU, side by side,
for the paper-size model (hidden 256, 16 heads, 2 layers, vocabulary 50k; random weights).

    python tools/benchmark_inference.py [--batch_sizes 1 16 64] [--lengths 32 128 512] [--cpu_threads 2] \
        [--repeats 5] [--output output/benchmark_inference.csv]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from paddlenlp_fastformer.inference import benchmark_main  # noqa: E402

if __name__ == "__main__":
    benchmark_main()
