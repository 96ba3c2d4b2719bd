"""Export a trained classifier for deployment: a static graph with dynamic batch and length, the tokenizer
and the label names, so that the output directory alone is enough to predict.

    python tools/export_model.py -c configs/amazon.yaml -o Global.pretrained_model=output/amazon/best \
        Global.save_inference_dir=output/amazon/inference [--onnx]
"""
import logging

import program

from paddlenlp_fastformer.app.deploy.export import export_from_config
from paddlenlp_fastformer.app.deploy.export_format import ONNX_FILE


def export(config, args):
    files = export_from_config(config, onnx=args.onnx)
    logging.getLogger("paddlenlp_fastformer").info("exported %s: %s", config.global_.save_inference_dir, ", ".join(files))


def main(argv=None):
    parser = program.config_parser(__doc__)
    parser.add_argument("--onnx", action="store_true", help=f"also write {ONNX_FILE} with paddle2onnx")
    program.run_config_tool(__doc__, export, parser, argv)


if __name__ == "__main__":
    main()
