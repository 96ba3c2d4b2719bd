"""Test helper: run a training or a dataset preparation in forked children, each killed (SIGKILL) at a chosen
file-system step, as a crash at that instant would.

    python tests/crash_driver.py PLAN.json RESULT.json

PLAN: {"target": "train" | "prepare", "args": [...], "runs": [{"kill_at": N or null, "record": bool}, ...]}.
For "train", ``args`` are the config path and overrides of each run (a run may add its own "overrides");
for "prepare", the argv of tools/prepare_data.py (a run may give its own "args"). Each run is a child forked from this process, which
imports paddle once (for "train", loads the kernels and matplotlib too) and runs no operation itself, so that a
child starts in a fraction of a second.
The steps counted are the calls that replace, rename or delete files and directories and that flush a
written file to disk (os.replace, os.rename, shutil.rmtree, os.fsync): the moments a checkpoint or a
dataset changes on disk. A child armed with ``kill_at=N`` kills itself just before its Nth step; with
``record`` it writes the list of its steps. RESULT holds, per run, how it ended and the steps recorded.
"""
import json
import os
import shutil
import signal
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "tools")]


def arm(kill_at, record: list) -> None:
    """Count the file-system steps of this process; SIGKILL it just before step ``kill_at``."""
    counter = [0]

    def counted(name, function):
        def step(*args, **kwargs):
            counter[0] += 1
            record.append([counter[0], name, str(args[0]) if args else ""])
            if counter[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return function(*args, **kwargs)

        return step

    os.replace = counted("replace", os.replace)
    os.rename = counted("rename", os.rename)
    os.fsync = counted("fsync", os.fsync)
    shutil.rmtree = counted("rmtree", shutil.rmtree)


def run_target(plan: dict, run: dict) -> None:
    if plan["target"] == "train":
        from fastformer_zoo.engine.trainer import train
        from fastformer_zoo.settings import load_config

        config_path, *overrides = plan["args"]
        train(load_config(config_path, overrides + run.get("overrides", [])))
    else:
        import prepare_data

        prepare_data.main(run.get("args", plan["args"]))


def run_in_child(plan: dict, run: dict, record_path: str) -> dict:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        record = []
        code = 0
        try:
            arm(run.get("kill_at"), record)
            run_target(plan, run)
        except SystemExit as error:
            code = error.code if isinstance(error.code, int) else 1
        except BaseException as error:  # noqa: BLE001 - reported to the test
            record.append([0, "error", f"{type(error).__name__}: {error}"])
            code = 1
        finally:
            with open(record_path, "w") as stream:
                json.dump(record, stream)
            os._exit(code)
    os.close(write_end)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    with open(record_path) as stream:
        steps = json.load(stream) if not killed else None
    return {"killed": killed, "exit_code": None if killed else os.WEXITSTATUS(status), "steps": steps}


def main(plan_path: str, result_path: str) -> None:
    import fastformer_zoo.engine.trainer  # noqa: F401  (paddle imported once, before the forks)
    import prepare_data  # noqa: F401

    plan = json.loads(Path(plan_path).read_text())
    if plan["target"] == "train":
        # Loaded once here, so that every forked child inherits the kernels and matplotlib instead of loading its own.
        from fastformer_zoo.engine.plots import pyplot
        from paddlenlp_fastformer.kernels import library

        library.load()
        pyplot()
    results = []
    for index, run in enumerate(plan["runs"]):
        record_path = f"{result_path}.{index}.steps"
        # A killed child cannot write its record: the file keeps the empty list written here.
        Path(record_path).write_text("[]")
        results.append(run_in_child(plan, run, record_path))
    Path(result_path).write_text(json.dumps(results))


if __name__ == "__main__":
    main(*sys.argv[1:])
