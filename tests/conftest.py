"""Shared test set-up: the CPU tuning the tools apply, a tiny prepared dataset and config, the shared data."""
import os
import shutil
from pathlib import Path
from typing import Optional

import pytest
import yaml

from paddlenlp_fastformer import tune_cpu

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"

# The tools tune the CPU before paddle's first matrix product; the tests run the model the same way.
tune_cpu()
# A predictor left to choose its engine takes the first the export offers instead of measuring them all (seconds
# for each new export): tests/test_engines.py measures; the tools' own processes inherit this setting.
os.environ.setdefault("PADDLENLP_FASTFORMER_MEASURE_ENGINES", "0")

# The files that take longest (minutes: whole pipelines, chains, fresh environments) run first, so that the
# workers sharing the rest (pytest-xdist, whole files each) finish together rather than waiting on one.
LONGEST_FIRST = ("test_readme.py", "test_tipc.py", "test_crash_safety.py", "test_benchmark.py", "test_reliability.py")


def pytest_collection_modifyitems(items):
    order = {name: rank for rank, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: order.get(item.path.name, len(order)))  # stable: each file keeps its own order


def default_data_source() -> Optional[Path]:
    """The real Electronics sample at ``<project root>/../shared/data``, or None where it is absent."""
    path = SHARED_DATA / "amazon_electronics_sample" / "Electronics_sample.json.gz"
    return path if path.is_file() else None

# A model small enough that a whole training run takes seconds on one CPU thread.
TINY_MODEL = {
    "hidden_size": 32,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 64,
    "hidden_dropout_prob": 0.2,
}


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory) -> Path:
    """Synthetic reviews prepared once per session: 400 rows -> 320 train / 40 dev / 40 test."""
    from fastformer_zoo.data.prepare import prepare_dataset
    from fastformer_zoo.data.synthetic import write_synthetic_reviews

    root = tmp_path_factory.mktemp("tiny_data")
    raw = write_synthetic_reviews(root / "raw.json", 400, seed=7)
    prepare_dataset([raw], root / "prepared", splits=(320, 40, 40), seed=7)
    return root / "prepared"


def write_tiny_config(path: Path, data_dir: Path, output_dir: Path, **sections) -> Path:
    """A full YAML config for the tiny model; ``sections`` (e.g. ``Global={"epochs": 2}``) update it."""
    config = {
        "Global": {
            "seed": 42,
            "epochs": 1,
            "output_dir": str(output_dir),
            "num_threads": 1,
            "log_interval": 1,
        },
        "Data": {
            "data_dir": str(data_dir),
            "batch_size": 8,
            "eval_batch_size": 32,
            "max_seq_len": 64,
        },
        "Model": dict(TINY_MODEL),
        "Optimizer": {"name": "adam", "lr": 1.0e-3},
    }
    for section, values in sections.items():
        config[section].update(values)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def tiny_config_path(tmp_path, tiny_data_dir) -> Path:
    """The tiny config in this test's tmp_path, training into tmp_path/out."""
    return write_tiny_config(tmp_path / "tiny.yaml", tiny_data_dir, tmp_path / "out")


# ----------------------------------------------------------------------------------------------
# the kernel cache
# ----------------------------------------------------------------------------------------------
def seed_kernel_cache(cache: Path) -> Path:
    """Copy the already built kernel library into the fresh cache ``cache`` (an ``XDG_CACHE_HOME``), so that a
    test compiles only what it must; returns the seeded build directory.

    Paddle's builder records the source's path in ``version.txt`` and recompiles when it changes: the copy's
    record names the copy's source, signed as Paddle's builder signs it.
    """
    import json

    from paddle.utils.cpp_extension.extension_utils import VersionFields, VersionManager

    from paddlenlp_fastformer.kernels import library

    if library.load() is None:
        pytest.skip("the fused kernels could not be built here")
    source = library.build_directory()
    seeded = cache / "paddlenlp_fastformer" / source.name
    shutil.copytree(source, seeded, ignore=shutil.ignore_patterns(".lock", f"{library.LIBRARY_NAME}_*.py"))
    version_file = seeded / library.LIBRARY_NAME / "version.txt"
    record = json.loads(version_file.read_text())
    record.pop(f"{library.LIBRARY_NAME}.so")
    record["sources"] = [str(seeded / library.SOURCE.name)]
    record[f"{library.LIBRARY_NAME}.so"] = VersionManager(VersionFields(**record)).version
    version_file.write_text(json.dumps(record, indent=4, sort_keys=True))
    return seeded


# ----------------------------------------------------------------------------------------------
# the tools' one-line error contract, and a small trained run to damage
# ----------------------------------------------------------------------------------------------
class Payload:
    """Unpickling this creates the marker file: proof that a load ran code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def run_main(main, argv, capsys) -> tuple:
    """A tool's main() in this process: (exit code, stderr lines)."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
        raise SystemExit(0)
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    return exit_info.value.code, err


def assert_one_line_error(result, *fragments, alone=True):
    """Exit 2 and an ``error: ...`` line holding every fragment: the only stderr line, or (``alone=False``, for
    a run that fails after it started logging) the last one, with no traceback before it."""
    code, lines = result
    assert code == 2 and lines and lines[-1].startswith("error: "), (code, lines[-5:])
    assert len(lines) == 1 if alone else not any("Traceback" in line for line in lines), lines[-5:]
    for fragment in fragments:
        assert fragment in lines[-1], (fragment, lines[-1])


@pytest.fixture(scope="session")
def trained(tmp_path_factory, tiny_data_dir):
    """A tiny run (3 steps), trained once per test session: tests read it or copy it, never change it."""
    from fastformer_zoo.engine.trainer import train
    from fastformer_zoo.settings import load_config

    root = tmp_path_factory.mktemp("trained")
    config = write_tiny_config(root / "tiny.yaml", tiny_data_dir, root / "out", Global={"max_steps": 3})
    train(load_config(config))
    return config, root / "out"


@pytest.fixture
def copy_of(tmp_path, trained):
    def copy(name: str = "best") -> Path:
        target = tmp_path / name
        shutil.copytree(trained[1] / name, target)
        return target

    return copy
