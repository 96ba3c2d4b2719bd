"""What every config-driven tool shares: argument parsing, logging, and one-line errors with exit code 2."""
from __future__ import annotations

import logging
import sys
from typing import Callable

from .config import Config, ConfigError, build_arg_parser, load_config
from .data import DataError

__all__ = ["run_tool"]

# Errors a user can fix from the command line; anything else is a bug and keeps its traceback.
USER_ERRORS = (ConfigError, DataError, FileNotFoundError)


def run_tool(description: str, main: Callable[[Config], object]) -> None:
    """Parse ``-c``/``-o``, load the config, run ``main(config)``; user errors end as one stderr line, exit 2."""
    from .training import TrainingError  # training imports paddle models: only tools that run need it

    from paddlenlp.utils.log import logger as paddlenlp_logger

    args = build_arg_parser(description).parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    paddlenlp_logger.set_level("WARNING")  # its per-file "saved in ..." lines would drown the training log
    try:
        main(load_config(args.config, args.overrides))
    except USER_ERRORS + (TrainingError,) as error:
        sys.stderr.write(f"error: {' '.join(str(error).split())}\n")
        sys.exit(2)
