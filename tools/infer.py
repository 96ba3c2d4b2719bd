"""Predict review ratings with an exported model (Paddle Inference or onnxruntime); TIPC inference flags.

    python tools/infer.py --model_dir output/amazon/inference --text "Great sound." --text "Died in a week."
    python tools/infer.py --model_dir output/amazon/inference --data_dir data/amazon/test.jsonl \
        --batch_size 64 --cpu_threads 2 --enable_mkldnn True --benchmark True --save_log_path infer.log
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from paddlenlp_fastformer.inference import main  # noqa: E402

if __name__ == "__main__":
    main()
