"""memabrad: keeps an agent's router learning safely from live traffic.

The public Python surface (docs/contract.md §7)::

    from memabrad import run_online_learning_workflow, RouterVersionStore, Router

Names resolve lazily, so ``memabrad`` sub-packages (the CLI, the wire formats) import
without loading river until a learning component is used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__all__ = ["Decision", "Router", "RouterVersionStore", "run_online_learning_workflow"]
__version__ = "0.1.0"

_LAZY = {
    "run_online_learning_workflow": "memabrad.cycle",
    "Router": "memabrad.learning.router",
    "Decision": "memabrad.learning.router",
    "RouterVersionStore": "memabrad.store.versions",
}

if TYPE_CHECKING:  # pragma: no cover
    from memabrad.cycle import run_online_learning_workflow
    from memabrad.learning.router import Decision, Router
    from memabrad.store.versions import RouterVersionStore


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'memabrad' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
