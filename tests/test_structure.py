"""The layout's promises: the model never imports the application, imports are cheap and side-effect
free, each layer imports only what it needs, and the wheel ships the kernels and nothing else."""
import ast
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "paddlenlp_fastformer"
MODEL_FILES = sorted(path for path in PACKAGE.rglob("*.py") if "app" not in path.relative_to(PACKAGE).parts)
LIBRARY_FILES = sorted(PACKAGE.rglob("*.py"))


def imported_modules(path: Path) -> set:
    """Absolute names of every module ``path`` imports (relative imports resolved against its package)."""
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
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


def run_python(code: str, cwd=REPO, python=sys.executable, env=None) -> str:
    result = subprocess.run(
        [python, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


def test_scanner_sees_relative_imports():
    assert "paddlenlp_fastformer.app.errors" in imported_modules(PACKAGE / "app" / "settings.py")
    assert "paddlenlp_fastformer.configuration" in imported_modules(PACKAGE / "app" / "settings.py")


@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda path: str(path.relative_to(REPO)))
def test_model_modules_never_import_the_application(path):
    offending = {name for name in imported_modules(path) if name.startswith("paddlenlp_fastformer.app")}
    assert not offending, f"{path.name} imports {offending}"


@pytest.mark.parametrize("path", LIBRARY_FILES, ids=lambda path: str(path.relative_to(REPO)))
def test_no_library_module_parses_arguments_or_imports_a_tool(path):
    names = imported_modules(path)
    assert "argparse" not in names and not any(name.split(".")[0] in ("tools", "program", "benchmarks") for name in names)


def test_importing_the_package_and_its_readers_does_not_import_paddle():
    code = (
        "import sys; import paddlenlp_fastformer; import paddlenlp_fastformer.app.data.readers, "
        "paddlenlp_fastformer.app.data.prepare, paddlenlp_fastformer.app.data.synthetic, paddlenlp_fastformer.app.errors; "
        "print(sorted(name for name in ('paddle', 'paddlenlp') if name in sys.modules))"
    )
    assert run_python(code) == "[]"
    assert run_python(code.replace("app.errors;", "app.data.loader;")) == "['paddle', 'paddlenlp']"


def test_importing_the_predictor_imports_no_training_or_command_line_code():
    training = ("paddlenlp_fastformer.app.engine.trainer", "paddlenlp_fastformer.app.data.loader", "program")
    code = "import sys; import {}; print(sorted(name for name in {!r} if name in sys.modules))"
    deploy = "paddlenlp_fastformer.app.deploy.predictor, paddlenlp_fastformer.app.deploy.infer"
    assert run_python(code.format(deploy, training)) == "[]"
    # The same check sees training code where it is imported.
    assert "trainer" in run_python(code.format("paddlenlp_fastformer.app.engine.trainer", training))


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


def test_using_the_model_changes_no_process_wide_setting():
    code = MALLOPT_SPY + (
        "import paddle\n"
        "from paddlenlp_fastformer import FastformerConfig, FastformerForSequenceClassification\n"
        "model = FastformerForSequenceClassification(FastformerConfig(vocab_size=20, hidden_size=16, num_attention_heads=2))\n"
        "model(paddle.to_tensor([[3, 4, 5]]))\n"
        "after = {k: v for k, v in os.environ.items() if k.startswith(('MKL_', 'MALLOC_'))}\n"
        "assert after == before, (before, after)\n"
        "print(calls)\n"
    )
    assert run_python(code, env={"PADDLENLP_FASTFORMER_TUNE_CPU": "1"}) == "[]"


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
        "from paddlenlp.transformers import AutoModel; import paddlenlp_fastformer",
        "import torch; from paddlenlp_fastformer import FastformerForMaskedLM",
        "from paddlenlp_fastformer.configuration import FastformerConfig",
        "import paddlenlp_fastformer.tokenizer",
        "import paddlenlp_fastformer.conversion",
        "import paddle; from paddlenlp_fastformer.kernels import fused_ops",
        "import paddlenlp_fastformer.app.engine.trainer",
        # a module that the model modules import, first: no circular import, and the registration still happens
        "import paddlenlp_fastformer.layers",
        "import paddlenlp_fastformer.pooling",
        "import paddlenlp_fastformer.outputs",
        "import paddlenlp_fastformer.modeling_decoder",
    ],
)
def test_auto_classes_resolve_whatever_the_import_order(imports):
    code = (
        f"{imports}\n"
        "import paddlenlp.transformers as transformers\n"
        "from paddlenlp.transformers.auto.modeling import MAPPING_NAMES\n"
        "from paddlenlp_fastformer.modeling import FastformerForConditionalGeneration\n"
        "print(transformers.FastformerForMaskedLM.__module__, transformers.FastformerTokenizer.__module__, "
        "MAPPING_NAMES['Fastformer'], transformers.AutoModelForCausalLM._name_mapping.get('FastformerForCausalLM'))\n"
    )
    assert run_python(code) == "paddlenlp_fastformer.modeling paddlenlp_fastformer.tokenizer fastformer fastformer"


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


def test_wheel_ships_the_kernel_source_and_no_benchmark_or_test_code(wheel):
    names = zipfile.ZipFile(wheel[0]).namelist()
    assert "paddlenlp_fastformer/kernels/csrc/fastformer_cpu_ops.cc" in names
    assert "paddlenlp_fastformer/app/deploy/predictor.py" in names
    assert not [name for name in names if name.startswith(("benchmarks/", "tests/", "tools/", "test_tipc/"))]
    assert not [name for name in names if "torch_reference" in name or "benchmark" in name]
    metadata = next(name for name in names if name.endswith("METADATA"))
    requires = [line for line in zipfile.ZipFile(wheel[0]).read(metadata).decode().splitlines() if line.startswith("Requires-Dist")]
    assert any("paddlepaddle==3.3.1" in line for line in requires) and any("matplotlib" in line for line in requires)


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

