"""Training across machines, simulated on this machine's loopback: two launchers of ``paddle.distributed.launch``
(``--nnodes 2 --master 127.0.0.1:PORT --rank R``, one process each), as on two nodes, against one launcher of two
processes; and a node killed mid-epoch, then both restarted.

Every case starts real launchers (about 15 s of start-up each on 2 cores), so the file is slow. The tiny model
trains 60 steps (3 epochs of 20) with dropout on, so the ranks' random generators are part of what must match.
"""
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import PROJECT_ROOT, write_tiny_config

from paddlenlp_fastformer.serialization import load_weights

pytestmark = pytest.mark.slow

SETTINGS = ["Global.epochs=3", "Global.save_steps=10"]
LAUNCH_TIMEOUT = 300  # seconds: a hang fails the test instead of the suite
# gloo gives up on a collective after 30 s; the launcher takes a few more to notice its rank has ended.
STOP_WITHIN_SECONDS = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(config, output_dir: Path, log_dir: Path, node=None) -> subprocess.Popen:
    """One launcher: of two processes, or (``node=(rank, master)``) of one process as node ``rank`` of two."""
    command = [sys.executable, "-m", "paddle.distributed.launch", "--log_dir", str(log_dir)]
    if node is None:
        command += ["--nproc_per_node", "2"]
    else:
        command += ["--nnodes", "2", "--master", node[1], "--rank", str(node[0]), "--nproc_per_node", "1"]
    command += ["tools/train.py", "-c", str(config), "-o", f"Global.output_dir={output_dir}", *SETTINGS]
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / "launcher.out", "w") as output:  # a file, not a pipe nobody reads while it runs
        return subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=output, stderr=subprocess.STDOUT)


def two_nodes(config, output_dir: Path, log_root: Path) -> list:
    """Both nodes, started as on two machines; each launcher has its own --log_dir, as they share a directory."""
    master = f"127.0.0.1:{free_port()}"
    return [launch(config, output_dir, log_root / f"node{rank}", (rank, master)) for rank in (0, 1)]


def finish(launchers: list, log_dirs: list) -> None:
    codes = [launcher.wait(timeout=LAUNCH_TIMEOUT) for launcher in launchers]
    logs = "".join(worker_log(directory)[-2000:] for directory in log_dirs)
    assert codes == [0] * len(codes), f"exit codes {codes}\n{logs}"


def worker_log(log_dir: Path, local_rank: int = 0) -> str:
    path = log_dir / f"workerlog.{local_rank}"
    return path.read_text(errors="replace") if path.is_file() else ""


def assert_bit_identical(a: Path, b: Path) -> None:
    first, second = load_weights(a), load_weights(b)
    assert first.keys() == second.keys()
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=f"{name}: {a} vs {b}")


def children(pid: int) -> list:
    """The processes whose parent is ``pid`` (the launcher's workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # ended meanwhile
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def running(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for_line(path: Path, text: str, launchers: list) -> None:
    deadline = time.monotonic() + LAUNCH_TIMEOUT
    while text not in (path.read_text(errors="replace") if path.is_file() else ""):
        assert all(launcher.poll() is None for launcher in launchers), f"a launcher ended before {text!r}"
        assert time.monotonic() < deadline, f"{path}: no {text!r} within {LAUNCH_TIMEOUT} s"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_data_dir):
    """The run on one node of two processes: the weights every other run here must end with."""
    root = tmp_path_factory.mktemp("one_node")
    config = write_tiny_config(root / "tiny.yaml", tiny_data_dir, root / "unused")
    finish([launch(config, root / "out", root / "logs")], [root / "logs"])
    return config, root / "out"


def test_two_nodes_train_the_same_weights_as_one_node_of_two_processes(reference, tmp_path):
    config, one_node = reference
    output_dir = tmp_path / "out"
    finish(two_nodes(config, output_dir, tmp_path), [tmp_path / "node0", tmp_path / "node1"])

    # Bit for bit: the same ranks sum the same gradients in the same order, wherever they run.
    assert_bit_identical(one_node / "last", output_dir / "last")
    assert_bit_identical(one_node / "best", output_dir / "best")
    # Rank 0 alone writes, once: one last/, one best/, one log and no staging leftovers in the shared directory.
    assert sorted(p.name for p in output_dir.iterdir()) == [".lock", "best", "last", "train.log", "training_curve.png"]
    node0, node1 = worker_log(tmp_path / "node0"), worker_log(tmp_path / "node1")
    assert "2 process(es)" in node0 and "2 process(es)" in node1
    assert "saved" in node0 and "saved" not in node1 and "dev after step" not in node1


def test_a_killed_node_stops_the_other_and_both_resume_to_the_same_weights(reference, tmp_path):
    config, one_node = reference
    output_dir = tmp_path / "out"
    launchers = two_nodes(config, output_dir, tmp_path)
    # Past the save at step 20, well before the end (step 60): node 1 dies mid-epoch 2.
    wait_for_line(tmp_path / "node1" / "workerlog.0", " step 25/", launchers)
    workers = children(launchers[1].pid)
    killed = time.monotonic()
    launchers[1].send_signal(signal.SIGKILL)  # the whole node: its launcher, and with it its worker
    code = launchers[0].wait(timeout=LAUNCH_TIMEOUT)
    stopped_after = time.monotonic() - killed
    launchers[1].wait(timeout=LAUNCH_TIMEOUT)

    log = worker_log(tmp_path / "node0")
    errors = [line for line in log.splitlines() if line.startswith("error: ")]
    assert code != 0 and stopped_after < STOP_WITHIN_SECONDS, (code, stopped_after, log[-2000:])
    assert len(errors) == 1 and "rank 0 of 2 lost contact with the other ranks at step" in errors[0], log[-2000:]
    assert f"resumes from {output_dir / 'last'}" in errors[0]
    assert "Traceback" not in log
    assert workers and not any(running(pid) for pid in workers), "node 1's worker outlived its launcher"

    finish(two_nodes(config, output_dir, tmp_path), [tmp_path / "node0", tmp_path / "node1"])
    assert "resumed from" in worker_log(tmp_path / "node0")
    assert_bit_identical(one_node / "last", output_dir / "last")
    assert_bit_identical(one_node / "best", output_dir / "best")
