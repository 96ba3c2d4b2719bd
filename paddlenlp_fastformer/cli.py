"""What every command-line tool shares: logging set-up and one-line user errors with exit code 2."""
from __future__ import annotations

import contextlib
import logging
import sys
from typing import Callable, Iterator

from .config import Config, ConfigError, build_arg_parser, load_config
from .data import DataError

__all__ = ["USER_ERRORS", "exit_on_user_errors", "quiet_paddlenlp_logging", "run_tool"]

# Errors a user can fix from the command line; anything else is a bug and keeps its traceback.
USER_ERRORS = (ConfigError, DataError, FileNotFoundError)


@contextlib.contextmanager
def exit_on_user_errors(*extra_errors: type) -> Iterator[None]:
    """End the tool with one ``error: ...`` line on stderr and exit code 2 (argparse's code for bad usage)."""
    try:
        yield
    except USER_ERRORS + extra_errors as error:
        sys.stderr.write(f"error: {' '.join(str(error).split())}\n")
        sys.exit(2)


def quiet_paddlenlp_logging() -> None:
    """INFO logging for our logger; PaddleNLP's per-file "saved in ..." lines only as warnings."""
    from paddlenlp.utils.log import logger as paddlenlp_logger

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    paddlenlp_logger.set_level("WARNING")


def run_tool(description: str, main: Callable[[Config], object]) -> None:
    """Parse ``-c``/``-o``, load the config and run ``main(config)`` under :func:`exit_on_user_errors`."""
    from .training import TrainingError  # training imports the models: only tools that run need it

    args = build_arg_parser(description).parse_args()
    quiet_paddlenlp_logging()
    with exit_on_user_errors(TrainingError):
        main(load_config(args.config, args.overrides))
