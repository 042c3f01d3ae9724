"""Loading a user's code by file path. Strategies (`bot/strategy/loader.py`) and risk checks
(`bot/risk/checks.py`) may name a class as `file.py:Class` in a folder of the user's; both import
the file through here (docs/architecture.md, "Strategies" and "Risk")."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def import_file(file: Path, kind: str) -> ModuleType:
    """The module of `file`, imported once per resolved path under a private name
    (`_bot_user_<kind>_<stem>_<hash>`), so one file named by two config entries is one module and
    a user's `value.py` never shadows an installed module of that name.

    Raises:
        ImportError: the file cannot be loaded as a module. Whatever the module itself raises at
            import propagates, and the module is not kept.
    """
    digest = hashlib.sha1(str(file.resolve()).encode()).hexdigest()[:10]
    mod_name = f"_bot_user_{kind}_{file.stem}_{digest}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[mod_name]
        raise
    return module
