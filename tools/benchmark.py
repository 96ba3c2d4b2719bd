"""Training and inference tokens/s, peak memory and achieved FLOP/s of Fastformer (official and lucidrains
formulations) and the same-size softmax Transformer, in Paddle and PyTorch, side by side on this CPU.

    python tools/benchmark.py [--lengths 128 512 1024 2048 4096 8192] [--tokens-per-step 2048] [--threads 0]
        [--repeats 2] [--modes train infer] [--models ...] [--no-torch] [--max-seconds-per-case 30]
        [--hidden 256 --heads 16 --layers 2 --intermediate 1024] [--output-dir output/benchmark] [--quick]

Method and FLOP formulas: paddlenlp_fastformer/benchmark.py.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from paddlenlp_fastformer.benchmark import main  # noqa: E402

if __name__ == "__main__":
    main()
