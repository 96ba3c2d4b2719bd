"""Export a trained classifier for deployment: a static graph with dynamic batch and length, the tokenizer
and the label names, so that the output directory alone is enough to predict.

    python tools/export_model.py -c configs/amazon.yaml -o Global.pretrained_model=output/amazon/best \
        Global.save_inference_dir=output/amazon/inference [--onnx]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from paddlenlp_fastformer.export import main  # noqa: E402

if __name__ == "__main__":
    main()
