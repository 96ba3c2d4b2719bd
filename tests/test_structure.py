"""The layout's promises: the model is a PaddleNLP model folder that imports only itself, paddle and
paddlenlp; the application uses it and never the other way; the repository's import graph has no
circle; importing the model or a tool changes nothing process-wide but the Auto-class registration; the
wheel ships the model, the application and the kernel source, and no benchmark, test or tool."""
import ast
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "paddlenlp_fastformer"
APPLICATION = REPO / "fastformer_zoo"
MODEL_FILES = sorted(MODEL.rglob("*.py"))
LIBRARY_FILES = MODEL_FILES + sorted(APPLICATION.rglob("*.py"))
FIRST_PARTY = ("paddlenlp_fastformer", "fastformer_zoo", "benchmarks", "tools")
# What a model module may import besides the standard library, itself, paddle and paddlenlp: numpy and
# safetensors come with paddle and paddlenlp; torch only to read a PyTorch checkpoint (conversion.py).
MODEL_THIRD_PARTY = {"numpy", "safetensors", "torch"}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set:
    """Absolute names of every module ``path`` imports, wherever the import stands (relative imports
    resolved against its package; ``from package import name`` also counts ``package.name``)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def first_party_graph() -> dict:
    """module -> the first-party modules it imports (an import of a name inside a module counts as that module;
    a package counts as its ``__init__``)."""
    files = {module_name(path): path for top in FIRST_PARTY for path in (REPO / top).rglob("*.py")}
    if (REPO / "tools").is_dir():  # tools import each other as top-level scripts (tools/ is on their sys.path)
        files.update({path.stem: path for path in (REPO / "tools").glob("*.py")})
    graph = {}
    for name, path in files.items():
        targets = {imported if imported in files else imported.rpartition(".")[0] for imported in imported_modules(path)}
        # A module's own parent packages are imported before it anyway (``from . import sibling`` names them too):
        # no edge.
        graph[name] = sorted(target for target in targets if target in files and not name.startswith(f"{target}.") and target != name)
    return graph


def find_circle(graph: dict) -> list:
    """One import circle of ``graph`` as a list of modules, or [] where there is none."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in graph.get(node, ()):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state and (circle := visit(target)):
                return circle
        state[node] = "done"
        stack.pop()
        return []

    for node in graph:
        if node not in state and (circle := visit(node)):
            return circle
    return []


def run_python(code: str, cwd=REPO, python=sys.executable, env=None) -> str:
    result = subprocess.run(
        [python, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


def test_scanner_sees_relative_and_lazy_imports():
    assert "fastformer_zoo.errors" in imported_modules(APPLICATION / "settings.py")
    assert "paddlenlp_fastformer.configuration" in imported_modules(MODEL / "modeling.py")
    assert "fastformer_zoo.engine.trainer" in imported_modules(REPO / "tools" / "train.py")  # inside a function


def test_circle_finder_finds_a_circle():
    assert find_circle({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == ["a", "b", "c", "a"]
    assert find_circle({"a": ["b"], "b": [], "c": ["a", "b"]}) == []


def test_the_repository_import_graph_has_no_circle():
    graph = first_party_graph()
    assert "paddlenlp_fastformer.modeling" in graph and "fastformer_zoo.engine.trainer" in graph
    assert find_circle(graph) == []


@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda path: str(path.relative_to(REPO)))
def test_model_modules_import_only_the_model_paddle_and_paddlenlp(path):
    allowed = set(sys.stdlib_module_names) | {"paddle", "paddlenlp", "paddlenlp_fastformer"} | MODEL_THIRD_PARTY
    offending = {name for name in imported_modules(path) if name.split(".")[0] not in allowed}
    assert not offending, f"{path.name} imports {offending}"
    if path.name != "conversion.py":
        assert "torch" not in {name.split(".")[0] for name in imported_modules(path)}


@pytest.mark.parametrize("path", LIBRARY_FILES, ids=lambda path: str(path.relative_to(REPO)))
def test_no_library_module_parses_arguments_or_imports_a_tool(path):
    names = imported_modules(path)
    assert "argparse" not in names and not any(name.split(".")[0] in ("tools", "program", "benchmarks") for name in names)


def test_the_readers_that_only_parse_files_do_not_import_paddle():
    code = (
        "import sys; import fastformer_zoo.data.readers, fastformer_zoo.data.labels, fastformer_zoo.errors; "
        "print(sorted(name for name in ('paddle', 'paddlenlp') if name in sys.modules))"
    )
    assert run_python(code) == "[]"
    assert run_python(code.replace("fastformer_zoo.errors;", "fastformer_zoo.data.loader;")) == "['paddle', 'paddlenlp']"


def test_importing_the_predictor_imports_no_training_or_command_line_code():
    training = ("fastformer_zoo.engine.trainer", "fastformer_zoo.data.loader", "program")
    code = "import sys; import {}; print(sorted(name for name in {!r} if name in sys.modules))"
    deploy = "fastformer_zoo.deploy.predictor, fastformer_zoo.deploy.infer"
    assert run_python(code.format(deploy, training)) == "[]"
    # The same check sees training code where it is imported.
    assert "trainer" in run_python(code.format("fastformer_zoo.engine.trainer", training))


MALLOPT_SPY = """
import ctypes, os, sys
calls = []
class Spy(ctypes.CDLL):
    def __getattr__(self, name):
        if name == "mallopt":
            calls.append(name)
        return super().__getattr__(name)
ctypes.CDLL = Spy
before = {k: v for k, v in os.environ.items() if k.startswith(("MKL_", "MALLOC_"))}
"""


@pytest.mark.parametrize("config_tunes, switch", [(False, "1"), (True, "0")])
def test_a_model_told_not_to_tune_changes_no_process_wide_setting(config_tunes, switch):
    """Building or running a model told not to (config or environment) leaves MKL and malloc as Paddle set them; by
    default its first CPU forward applies tune_cpu() (tests/test_cpu.py)."""
    code = MALLOPT_SPY + (
        "import paddle\n"
        "from paddlenlp_fastformer import FastformerConfig, FastformerForSequenceClassification\n"
        f"config = FastformerConfig(vocab_size=20, hidden_size=16, num_attention_heads=2, tune_cpu={config_tunes})\n"
        "model = FastformerForSequenceClassification(config)\n"
        "model(paddle.to_tensor([[3, 4, 5]]))\n"
        "after = {k: v for k, v in os.environ.items() if k.startswith(('MKL_', 'MALLOC_'))}\n"
        "assert after == before, (before, after)\n"
        "print(calls)\n"
    )
    assert run_python(code, env={"PADDLENLP_FASTFORMER_TUNE_CPU": switch}) == "[]"


def test_the_spy_sees_the_explicit_tuning_call(monkeypatch):
    for name in list(os.environ):
        if name.startswith("MALLOC_"):  # the user's own malloc tuning would make tune_cpu leave malloc alone
            monkeypatch.delenv(name)
    code = MALLOPT_SPY + "import paddlenlp_fastformer\npaddlenlp_fastformer.tune_cpu()\nprint(calls)\n"
    assert run_python(code, env={"PADDLENLP_FASTFORMER_TUNE_CPU": "1"}) == "['mallopt']"


@pytest.mark.parametrize(
    "imports",
    [
        "import paddlenlp_fastformer; from paddlenlp.transformers import AutoModel",
        "from paddlenlp.transformers import AutoModel; import paddlenlp_fastformer.layers",
        "import fastformer_zoo.engine.trainer",
    ],
)
def test_auto_classes_resolve_whatever_the_import_order(imports):
    code = (
        f"{imports}\n"
        "import paddlenlp.transformers as transformers\n"
        "from paddlenlp.transformers.auto.modeling import MAPPING_NAMES\n"
        "print(transformers.FastformerForMaskedLM.__module__, transformers.FastformerTokenizer.__module__, "
        "MAPPING_NAMES['Fastformer'], transformers.AutoModelForCausalLM._name_mapping.get('FastformerForCausalLM'))\n"
    )
    assert run_python(code) == "paddlenlp_fastformer.modeling paddlenlp_fastformer.tokenizer fastformer fastformer"


def test_importing_the_tools_changes_nothing_process_wide():
    """tools/program.py and every tool import without touching the process: the set-up is program.start()."""
    code = (
        "import os, signal, sys, warnings\n"
        f"sys.path.insert(0, {str(REPO / 'tools')!r})\n"
        "before = (dict(os.environ), signal.getsignal(signal.SIGINT), list(warnings.filters), list(sys.path))\n"
        "import program, train, eval, pretrain, export_model, infer, serve, explain, prepare_data, prepare_corpus\n"
        "import prepare_pairs, convert_torch_checkpoint, run_experiment, results_table\n"
        "after = (dict(os.environ), signal.getsignal(signal.SIGINT), list(warnings.filters), list(sys.path))\n"
        "assert after == before, [name for name, old, new in zip('env sigint warnings path'.split(), before, after) if old != new]\n"
        "print(sorted(name for name in ('paddle', 'paddlenlp') if name in sys.modules))\n"
    )
    assert run_python(code) == "[]"


def checkout_files() -> list:
    """The files a clean checkout of this working tree holds (tracked, or new and not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode().split("\0")
    return [name for name in listed if name and (REPO / name).is_file()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """A wheel built, without network, from a copy of the checkout's files."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"
    for name in checkout_files():
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((REPO / name).read_bytes())
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(root / "dist"), str(source)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    return next((root / "dist").glob("*.whl")), root


@pytest.mark.slow
def test_wheel_ships_the_kernel_source_and_no_benchmark_or_test_code(wheel):
    names = zipfile.ZipFile(wheel[0]).namelist()
    assert "paddlenlp_fastformer/kernels/csrc/fastformer_cpu_ops.cc" in names
    assert "paddlenlp_fastformer/modeling.py" in names and "fastformer_zoo/deploy/predictor.py" in names
    assert not [name for name in names if name.startswith(("benchmarks/", "tests/", "tools/", "test_tipc/"))]
    assert not [name for name in names if "torch_reference" in name or "benchmark" in name]
    metadata = next(name for name in names if name.endswith("METADATA"))
    requires = [line for line in zipfile.ZipFile(wheel[0]).read(metadata).decode().splitlines() if line.startswith("Requires-Dist")]
    assert any("paddlepaddle==3.3.1" in line for line in requires) and any("matplotlib" in line for line in requires)


@pytest.mark.slow
def test_a_fresh_venv_with_the_wheel_runs_the_fused_kernels(wheel):
    path, root = wheel
    venv = root / "venv"
    # The venv sees the pinned stack of this machine (paddle and paddlenlp are large); the package itself
    # comes only from the wheel: the venv's own site-packages precede the system's.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=600)
    python = str(venv / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(path)], check=True, timeout=600)
    code = (
        "import paddle, paddlenlp_fastformer\n"
        "from paddlenlp_fastformer import FastformerConfig, FastformerForSequenceClassification\n"
        "from paddlenlp_fastformer.kernels import fused_ops, library\n"
        f"assert paddlenlp_fastformer.__file__.startswith({str(venv)!r}), paddlenlp_fastformer.__file__\n"
        "assert library.load() is not None, 'kernels not built'\n"
        "model = FastformerForSequenceClassification(FastformerConfig(vocab_size=20, hidden_size=16, num_attention_heads=2))\n"
        "ids = paddle.to_tensor([[3, 4, 5]])\n"
        "assert fused_ops.available(model.fastformer.embeddings(ids), model.config.use_fused_ops)\n"
        "print(model(ids).shape)\n"
    )
    env = {"XDG_CACHE_HOME": str(root / "cache"), "PYTHONPATH": ""}  # a fresh kernel cache: built from the wheel's source
    assert run_python(code, cwd=root, python=python, env=env) == "paddle.Size([1, 5])"
    assert list((root / "cache" / "paddlenlp_fastformer").glob("cpu_ops-*/fastformer_cpu_ops/*.so"))

