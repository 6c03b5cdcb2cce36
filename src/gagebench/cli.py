"""The ``gagebench`` command: a thin layer of subcommands over the library.

Errors raised on purpose (:class:`gagebench.errors.GagebenchError`) are logged once here,
as one line that says what to do, and turn into exit status 2; nothing else is caught.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from gagebench._version import __version__
from gagebench.errors import GagebenchError

log = logging.getLogger("gagebench")

Handler = Callable[[argparse.Namespace], int]


def _cmd_sample(args: argparse.Namespace) -> int:
    """Evaluate the real sample gage 01104200 (obs vs nwm and nhm) and print the table."""
    import pandas as pd

    from gagebench.evaluate import evaluate
    from gagebench.sample import load_sample

    frame = load_sample()
    table = evaluate(
        frame["obs"],
        {"nwm": frame["nwm"], "nhm": frame["nhm"]},
        gages=["USGS-01104200"],
        mode=args.mode,
    )
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        print(table.drop(columns=["note"]).set_index(["site_no", "model"]).T.to_string())
    return 0


# --- cluster-spec (clusters helper) --------------------------------------------------------
def _cmd_cluster_spec(args: argparse.Namespace) -> int:
    """Print the DaskCluster manifest the kubernetes backend would create; no API calls."""
    from gagebench.clusters import get_backend
    from gagebench.clusters._kubespec import to_yaml
    from gagebench.config import load_config, parse_override

    overrides = dict(parse_override(text) for text in args.set)
    cfg = load_config(*args.config, overrides=overrides)
    manifest = get_backend(cfg, "kubernetes").manifest()  # type: ignore[attr-defined]
    sys.stdout.write(to_yaml(manifest))
    return 0


def _add_cluster_spec(sub: argparse._SubParsersAction) -> None:
    spec = sub.add_parser(
        "cluster-spec",
        help="print the DaskCluster manifest of the kubernetes backend (a dry run)",
        description=(
            "Print, as YAML, the DaskCluster the kubernetes backend would create, without "
            "contacting any cluster: namespace, image and owner come from the settings or "
            "the environment (POD_NAMESPACE, GAGEBENCH_IMAGE, GAGEBENCH_JOB_NAME/_UID)."
        ),
    )
    spec.add_argument(
        "--config", action="append", default=[], metavar="FILE", help="run file (repeatable)"
    )
    spec.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting"
    )
    spec.set_defaults(handler=_cmd_cluster_spec)


# --- end cluster-spec ----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="gagebench",
        description="HyTEST streamflow benchmark statistics for thousands of gages on Dask.",
    )
    parser.add_argument("--version", action="version", version=f"gagebench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sample = sub.add_parser("sample", help="evaluate the real sample gage 01104200 and print it")
    sample.add_argument("--mode", choices=["standard", "hytest"], default="standard")
    sample.set_defaults(handler=_cmd_sample)
    _add_cluster_spec(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gagebench`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    handler: Handler = args.handler
    try:
        return handler(args)
    except GagebenchError as exc:
        log.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
