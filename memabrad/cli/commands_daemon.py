"""``memabrad run`` (the daemon) and ``memabrad demo`` (embedded broker + producers + daemon)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

from memabrad.cli.commands_store import load_cli_config
from memabrad.cli.errors import UsageError
from memabrad.config import ConfigError


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


def cmd_demo(args: argparse.Namespace) -> int:
    from memabrad.demo import run_demo

    return run_demo(args)


def register(sub: argparse._SubParsersAction, common: Callable[[argparse.ArgumentParser], None]) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("run", help="the daemon: consume trajectories, learn, evaluate, promote")
    p.add_argument("-c", "--config", help="config file (default: ./config.yaml when present, else built-in defaults)")
    p.set_defaults(func=cmd_run, base_dir=None, router="default", json=False)

    p = sub.add_parser("demo", help="embedded broker + simulated traffic + the daemon, until the first promotion")
    p.add_argument("--rate", type=int, default=4000, help="trajectories per second offered (default 4000)")
    p.add_argument("--max-trajectories", type=int, default=200_000, help="give up after this many (default 200000)")
    p.add_argument("--timeout", type=float, default=110.0, help="give up after this many seconds (default 110)")
    p.add_argument("--keep", action="store_true", help="keep the temporary base directory")
    p.add_argument("--seed", type=int, default=7, help="simulator seed (default 7)")
    p.set_defaults(func=cmd_demo, config=None, base_dir=None, router="default", json=False)
