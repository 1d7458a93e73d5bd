"""memabrad: keeps an agent's router learning safely from live traffic.

The public Python surface (CONTRACT §7)::

    from memabrad import run_online_learning_workflow, RouterVersionStore, Router
"""

from memabrad.cycle import run_online_learning_workflow
from memabrad.learning.router import Decision, Router
from memabrad.store.versions import RouterVersionStore

__all__ = ["Decision", "Router", "RouterVersionStore", "run_online_learning_workflow"]
__version__ = "0.1.0"
