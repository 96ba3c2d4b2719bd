"""What every tool shares: the process set-up, the -c/-o options, and one-line errors with exit codes.

Importing this module changes nothing. A tool's ``main`` calls :func:`start` first, before it imports
the application (which imports paddle):

* the checkout that holds the tool goes first on ``sys.path``, so that a tool runs the code beside it
  (a copy of the project, as TIPC makes, runs its own code, not the installed one);
* third-party warnings that say nothing to a user (ccache missing, setuptools replacing distutils,
  runpy's double import) are silenced, and third-party INFO logging is turned down;
* Paddle's C++ log (glog) keeps to errors unless the user set ``GLOG_minloglevel`` (glog reads it when
  paddle is imported);
* Ctrl-C while paddle loads ends the tool at once, saying nothing was written;
* the CPU tuning of :func:`paddlenlp_fastformer.tune_cpu` is applied, before paddle's first matrix
  product (MKL reads its setting then).
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import warnings
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

__all__ = ["start", "ArgumentParser", "config_parser", "user_errors_exit", "run_config_tool", "str2bool"]

QUIET_WARNINGS = (
    "No ccache found",  # paddle, on import
    "Setuptools is replacing distutils",  # paddle's extension builder
    ".*found in sys.modules after import of package",  # runpy, for `python -m paddle.distributed.launch`
    "To copy construct from a tensor",  # paddle.to_tensor of a tensor
    "Tensor do not have 'place' interface",  # paddle's own broadcasting ops, while exporting a static graph
)
LOGGERS = ("fastformer_zoo", "paddlenlp_fastformer")  # ours: the application's and the model's
_started = []


def _interrupted_while_starting(signum, frame):
    """Ctrl-C before a tool's work begins (paddle takes seconds to import): nothing is written yet."""
    sys.stderr.write("error: interrupted (Ctrl-C) while starting; nothing was written\n")
    os._exit(130)


def start() -> dict:
    """Prepare this process for a tool (see the module docstring); once per process. Returns the CPU settings
    that :func:`~paddlenlp_fastformer.tune_cpu` applied."""
    if _started:
        return _started[0]
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    # Until user_errors_exit takes over, Ctrl-C ends the process at once instead of a KeyboardInterrupt
    # raised somewhere inside an import.
    signal.signal(signal.SIGINT, _interrupted_while_starting)
    for message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    os.environ.setdefault("GLOG_minloglevel", "2")
    # datasets (imported by paddlenlp) announces the PyTorch it found at INFO level while it loads.
    logging.getLogger("datasets").setLevel(logging.WARNING)
    from paddlenlp_fastformer import tune_cpu

    _started.append(tune_cpu())
    return _started[0]


class _StderrHandler(logging.StreamHandler):
    """A console handler that writes to whatever ``sys.stderr`` is when a record comes (not the one at set-up)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def _configure_logging() -> None:
    """Our log lines once each, at INFO, in our format; the libraries' only from WARNING up.

    Importing paddle puts a handler of its own on the root logger at INFO level, through which every
    library's INFO line (and ours, a second time) would reach the console.
    """
    for name in LOGGERS:
        ours = logging.getLogger(name)
        if not any(isinstance(handler, _StderrHandler) for handler in ours.handlers):
            handler = _StderrHandler()
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            ours.addHandler(handler)
        ours.setLevel(logging.INFO)
        ours.propagate = False
    logging.getLogger().setLevel(logging.WARNING)
    if "paddlenlp" in sys.modules:  # PaddleNLP's per-file "saved in ..." lines only as warnings
        from paddlenlp.utils.log import logger as paddlenlp_logger

        paddlenlp_logger.set_level("WARNING")


@contextlib.contextmanager
def user_errors_exit(*model_errors: type) -> Iterator[None]:
    """End the tool with one ``error: ...`` line on stderr: exit 2 for a user error, 130 for Ctrl-C.

    ``model_errors`` are exception types of the model package (which knows nothing of the
    application's ``UserError``) that this tool reports the same way, e.g. ``ConversionError``.

    Log records are routed through tqdm while it runs, so that they do not garble progress bars.
    """
    start()  # first: the tool's own checkout decides where fastformer_zoo comes from
    from tqdm.contrib.logging import logging_redirect_tqdm

    from fastformer_zoo.errors import UserError, one_line

    _configure_logging()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # from here on: KeyboardInterrupt, caught below
    try:
        with logging_redirect_tqdm(loggers=[logging.getLogger(name) for name in LOGGERS]):
            yield
    except (UserError, *model_errors) as error:
        sys.stderr.write(f"error: {one_line(error)}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted (Ctrl-C); files already written are complete\n")
        sys.exit(130)
    except OSError as error:  # a path the user gave cannot be read or written
        sys.stderr.write(f"error: {one_line(error)}\n")
        sys.exit(2)
    except MemoryError:  # sizes or counts the machine cannot hold
        sys.stderr.write("error: not enough memory for what was asked (model sizes, batch size or row counts)\n")
        sys.exit(2)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the tools' error contract: one ``error: ...`` line and exit 2, without the usage block."""

    def __init__(self, description: str = None, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(description=description, **kwargs)

    def error(self, message: str):
        self.exit(2, f"error: {' '.join(str(message).split())} (see {self.prog} --help)\n")


def config_parser(description: str) -> argparse.ArgumentParser:
    """The ``-c/--config`` and ``-o/--override`` options every config-driven tool shares (PaddleClas convention)."""
    parser = ArgumentParser(description)
    parser.add_argument("-c", "--config", required=True, help="path of the YAML config file")
    parser.add_argument(
        "-o",
        "--override",
        dest="overrides",
        nargs="+",
        action="extend",
        default=[],
        metavar="Section.key=value",
        help="override a config value, e.g. -o Optimizer.lr=5e-4 Data.batch_size=32; may repeat",
    )
    return parser


def run_config_tool(
    description: str, main: Callable, parser: Optional[argparse.ArgumentParser] = None, argv: Optional[Sequence[str]] = None
) -> None:
    """Parse ``-c``/``-o`` (and the extra options of ``parser``), load the config, run ``main(config, args)``."""
    args = (parser or config_parser(description)).parse_args(argv)
    with user_errors_exit():
        from fastformer_zoo.settings import load_config

        main(load_config(args.config, args.overrides), args)


def str2bool(value: str) -> bool:
    """TIPC passes booleans as the strings True/False."""
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {value!r}")
