"""``memabrad run``: the daemon, until SIGTERM or a fatal error."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from memabrad.cli.common import load_cli_config
from memabrad.cli.errors import UsageError
from memabrad.config import ConfigError

__all__ = ["cmd_run", "register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="the daemon: consume trajectories, learn, evaluate, promote")
    p.add_argument("-c", "--config", help="config file (default: ./config.yaml when present, else built-in defaults)")
    p.set_defaults(func=cmd_run, base_dir=None, router="default", json=False)


def cmd_run(args: argparse.Namespace) -> int:
    import anyio

    from memabrad.daemon.app import Daemon
    from memabrad.daemon.logs import setup_logging
    from memabrad.evaluation.benchmark import SuiteFormatError, load_suite
    from memabrad.kafka.client import client_kwargs

    cfg = load_cli_config(args)
    setup_logging(cfg.logging.format, cfg.logging.level)
    log = logging.getLogger("memabrad")
    try:
        if cfg.evaluation.suite_path:
            load_suite(cfg.evaluation.suite_path)
        client_kwargs(cfg.kafka)
    except (ConfigError, SuiteFormatError) as err:
        raise UsageError(str(err)) from None

    async def main() -> None:
        await Daemon(cfg).run()

    code = 0
    try:
        anyio.run(main, backend="asyncio")
    except KeyboardInterrupt:
        code = 0
    except BaseException as err:  # noqa: BLE001 - any task failing stops the daemon loudly
        log.critical("daemon failed", exc_info=err)
        code = 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # Abandoned evaluation threads must not hold the exit: state is already checkpointed.
    os._exit(code)
