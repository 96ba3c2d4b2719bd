"""Registration with PaddleNLP's Auto classes, without importing paddle before it is needed.

PaddleNLP 2.8.1 has no ``register()`` API. Its Auto classes look classes up by name in
``paddlenlp.transformers`` (configs, tokenizers) and import ``paddlenlp.transformers.<name>.modeling``
for a class-name prefix listed in ``MAPPING_NAMES`` (models). Registering therefore means exposing
this package under that module path and adding its prefix to those mappings, which needs
paddlenlp loaded.

Importing ``paddlenlp_fastformer`` itself must stay cheap (its data readers do not need paddle), so
registration happens at the first of:

* the end of the import of ``configuration``, ``tokenizer`` or ``modeling`` (each calls
  :func:`register_with_paddlenlp_auto` on its last line, when all of its names exist);
* the end of the import of ``paddlenlp.transformers``, after a bare ``import paddlenlp_fastformer``
  (:func:`register_when_paddlenlp_loads`), so that ``AutoModel.from_pretrained`` resolves our
  directories without the user touching one of our classes first.
"""
from __future__ import annotations

import importlib
import importlib.abc
import sys

__all__ = ["register_with_paddlenlp_auto", "register_when_paddlenlp_loads"]

PACKAGE = __name__.rsplit(".", 1)[0]
MODEL_MODULES = ("configuration", "tokenizer", "modeling")
PADDLENLP_ALIAS = "paddlenlp.transformers.fastformer"
_state = {"done": False, "running": False}


def register_with_paddlenlp_auto() -> None:
    """Make AutoConfig/AutoTokenizer/AutoModel* resolve ``model_type="fastformer"`` directories to our classes.

    Idempotent; a call made while registration is already running (our modules import each other
    during it) returns at once, and so does one made while another of our model modules is half
    imported: that module registers on its own last line.
    """
    if _state["done"] or _state["running"] or any(_half_imported(name) for name in MODEL_MODULES):
        return
    _state["running"] = True
    try:
        _register()
        _state["done"] = True
    finally:
        _state["running"] = False


def _half_imported(name: str) -> bool:
    """Whether our module ``name`` is being imported: loaded, but not every public name defined yet."""
    module = sys.modules.get(f"{PACKAGE}.{name}")
    return module is not None and not all(hasattr(module, public) for public in getattr(module, "__all__", [""]))


def _register() -> None:
    import paddlenlp.transformers as transformers
    from paddlenlp.transformers.auto import configuration as auto_configuration
    from paddlenlp.transformers.auto import modeling as auto_modeling

    package = importlib.import_module(PACKAGE)
    modules = {name: importlib.import_module(f"{PACKAGE}.{name}") for name in MODEL_MODULES}
    sys.modules.setdefault(PADDLENLP_ALIAS, package)
    for name, module in modules.items():
        sys.modules.setdefault(f"{PADDLENLP_ALIAS}.{name}", module)
        for public in module.__all__:
            if public.startswith("Fastformer"):
                setattr(transformers, public, getattr(module, public))

    auto_configuration.AutoConfig.MAPPING_NAMES["fastformer"] = [modules["configuration"].FastformerConfig]
    # First, so that no other model's prefix can claim a "Fastformer..." class name.
    auto_modeling.MAPPING_NAMES["Fastformer"] = "fastformer"
    auto_modeling.MAPPING_NAMES.move_to_end("Fastformer", last=False)
    for task, class_name in auto_modeling.MAPPING_TASKS.items():
        auto_class = getattr(auto_modeling, class_name, None)
        if auto_class is not None and auto_class._name_mapping is not None:
            auto_class._name_mapping.update(auto_modeling.get_name_mapping(task))


class _RunAfterImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the loader of one module so that ``callback`` runs when its import ends."""

    def __init__(self, module_name: str, callback):
        self.module_name, self.callback = module_name, callback

    def find_spec(self, fullname, path, target=None):
        if fullname != self.module_name:
            return None
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
            spec = finder.find_spec(fullname, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
                spec.loader = _LoaderThenCallback(spec.loader, self.callback)
                return spec
        return None


class _LoaderThenCallback(importlib.abc.Loader):
    def __init__(self, loader, callback):
        self.loader, self.callback = loader, callback

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        self.callback()

    def __getattr__(self, name):  # get_resource_reader, is_package, ... of the real loader
        return getattr(self.loader, name)


def _register_unless_our_modules_are_loading() -> None:
    # When one of our model modules is being imported it triggered this import, and it registers on its
    # own last line; importing it again from here would meet it half-initialised.
    if not any(f"{PACKAGE}.{name}" in sys.modules for name in MODEL_MODULES):
        register_with_paddlenlp_auto()


def register_when_paddlenlp_loads() -> None:
    """Register now if ``paddlenlp.transformers`` is loaded, else as soon as its import ends."""
    if "paddlenlp.transformers" in sys.modules:
        _register_unless_our_modules_are_loading()
    elif not any(isinstance(finder, _RunAfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RunAfterImport("paddlenlp.transformers", _register_unless_our_modules_are_loading))
