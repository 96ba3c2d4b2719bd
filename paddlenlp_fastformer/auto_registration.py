"""Registration with PaddleNLP's Auto classes, without importing paddle before it is needed.

PaddleNLP 2.8.1 has no ``register()`` API. Its Auto classes look classes up by name in
``paddlenlp.transformers`` (configs, tokenizers) and import ``paddlenlp.transformers.<name>.modeling``
for a class-name prefix listed in ``MAPPING_NAMES`` (models). Registering therefore means exposing
this package under that module path and adding its prefix to those mappings, which needs
paddlenlp loaded.

Importing ``paddlenlp_fastformer`` itself must stay cheap (its data readers do not need paddle), so
registration happens at the first of:

* the end of the import of any of our modules that imports paddlenlp or another of ours (each calls
  :func:`register_with_paddlenlp_auto` on its last line, when all of its names exist; whichever of them a
  user imports first, the registration waits until none is half imported);
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
MODEL_MODULES = ("configuration", "tokenizer", "modeling", "modeling_decoder")
PADDLENLP_ALIAS = "paddlenlp.transformers.fastformer"
_state = {"done": False, "running": False}


def register_with_paddlenlp_auto(caller: str = "") -> None:
    """Make AutoConfig/AutoTokenizer/AutoModel* resolve ``model_type="fastformer"`` directories to our classes.

    Idempotent; a call made while registration is already running (our modules import each other
    during it) returns at once, and so does one made while another of our modules is half imported: the
    model modules register on their own last line (``caller``: that module's name).
    """
    if _state["done"] or _state["running"] or any(_half_imported(name, caller) for name in _our_loaded_modules()):
        return
    _state["running"] = True
    try:
        _register()
        _state["done"] = True
    finally:
        _state["running"] = False


def _our_loaded_modules() -> list:
    """The model modules loaded so far (any of them may be half imported: ``layers`` imported first imports
    ``configuration``, whose registration would import ``modeling``, which needs all of ``layers``). The
    application is left out: no model module imports it, so its half-imported modules are in no cycle."""
    names = [name[len(PACKAGE) + 1 :] for name in list(sys.modules) if name.startswith(f"{PACKAGE}.")]
    return [name for name in names if name != "app" and not name.startswith("app.")]


def _half_imported(name: str, caller: str = "") -> bool:
    """Whether our module ``name`` is being imported: its import has not ended (importlib marks the module's
    spec as initializing meanwhile, which is also how it words "partially initialized module" errors; the
    ``caller``, registering from its own last line, is judged by its names alone), or not every public name
    is defined yet."""
    module = sys.modules.get(f"{PACKAGE}.{name}")
    if module is None:
        return False
    if module.__name__ != caller and getattr(getattr(module, "__spec__", None), "_initializing", False):
        return True
    # hasattr, not the namespace: modeling's decoder heads load on first use (a half-imported modeling_decoder
    # makes that fail, and so counts as loading).
    return not all(hasattr(module, public) for public in getattr(module, "__all__", ()))


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
