"""The subpackages' public names, each imported from its module on first use (PEP 562), so that importing a
package (or any one module of it) loads no other module and no heavy dependency (torch, rclpy, Ray)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, module_of: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package``, exporting each name of ``module_of``
    (name -> module of the package that defines it)."""
    namespace = vars(sys.modules[package])

    def __getattr__(name: str) -> Any:
        if name not in module_of:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module_of[name]}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *module_of})

    return __getattr__, __dir__
