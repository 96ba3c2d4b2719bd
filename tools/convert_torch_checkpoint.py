"""Convert a PyTorch Fastformer checkpoint into a PaddleNLP ``from_pretrained`` directory.

    python tools/convert_torch_checkpoint.py --source lucidrains --checkpoint M.pt --output-dir DIR [--max-seq-len N]
    python tools/convert_torch_checkpoint.py --source official --checkpoint M.pt --config fastformer.json --output-dir DIR
"""
import sys

import program


def main(argv=None) -> int:
    program.start()
    from fastformer_zoo.directories import write_directory_atomically
    from paddlenlp_fastformer.configuration import FastformerConfigError
    from paddlenlp_fastformer.conversion import SOURCES, ConversionError, load_torch_state_dict, read_official_config_json
    from paddlenlp_fastformer.modeling import FastformerPretrainedModel

    parser = program.ArgumentParser(__doc__)
    parser.add_argument("--source", required=True, choices=SOURCES)
    parser.add_argument("--checkpoint", required=True, help="PyTorch state_dict file (.pt/.pth/.bin)")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--config", help="official only: the authors' fastformer.json")
    parser.add_argument("--max-seq-len", type=int, help="lucidrains rotary models: the model's max_seq_len")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output directory")
    args = parser.parse_args(argv)
    with program.user_errors_exit(ConversionError, FastformerConfigError):
        official_json = read_official_config_json(args.config) if args.config else None
        state_dict = load_torch_state_dict(args.checkpoint)
        try:
            model = FastformerPretrainedModel.from_torch_state_dict(args.source, state_dict, official_json, args.max_seq_len)
        except (ConversionError, FastformerConfigError) as error:
            # The model package knows arrays, not files: name the one the user can fix. An official model's
            # sizes come from the authors' json, a lucidrains model's from the checkpoint's shapes.
            faulty = args.config if isinstance(error, FastformerConfigError) and args.config else args.checkpoint
            raise ConversionError(f"{faulty}: {error}") from None
        write_directory_atomically(model.save_pretrained, args.output_dir, overwrite=args.overwrite)  # model.safetensors: arrays only
    print(f"wrote {type(model).__name__} ({model.config.formulation}, "
          f"{model.config.position_embedding_type} positions) to {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
