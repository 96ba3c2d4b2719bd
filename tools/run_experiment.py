"""Train one config for several seeds; keep each run's log and metrics (test split + extra eval files).

    python tools/run_experiment.py -c configs/marc_en.yaml --seeds 42 43 44 \\
        --eval-files data/electronics_sample_eval/test.jsonl --results-dir results/marc_en

Checkpoints go to output/experiments/<config name>_seed<seed>/; the kept files to
RESULTS_DIR/<config name>_seed<seed>/. Re-running the same command skips finished seeds and
resumes an interrupted one.
"""
import program


def main(argv=None):
    parser = program.config_parser(__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", required=True, help="one run per seed")
    parser.add_argument("--eval-files", nargs="*", default=[], help="prepared JSON-lines files to evaluate besides the test split")
    parser.add_argument("--results-dir", required=True, help="where each run's small text outputs are kept")
    parser.add_argument("--output-root", default="output/experiments", help="where checkpoints go")
    args = parser.parse_args(argv)
    with program.user_errors_exit():
        from fastformer_zoo.engine.experiments import run_seeds

        run_seeds(args.config, args.seeds, args.overrides, args.eval_files, args.results_dir, args.output_root)


if __name__ == "__main__":
    main()
