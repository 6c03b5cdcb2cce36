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


# --- report / compare (report helper) -------------------------------------------------------
def _cmd_report(args: argparse.Namespace) -> int:
    """Write the self-contained HTML report of a run and print where it went."""
    from gagebench.report import write_report

    print(write_report(args.results_url, output=args.output))
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    """Compare two models gage by gage; print the paired summary, optionally save details."""
    import pandas as pd

    from gagebench.comparison import compare
    from gagebench.report import write_comparison

    result = compare(args.results_url, args.results_url_b, models=args.models)
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        print(result.summary.to_string(index=False))
    if args.output:
        print(write_comparison(result, args.output))
    return 0


def _add_report_commands(sub: argparse._SubParsersAction) -> None:
    report = sub.add_parser("report", help="write the HTML report of a run and print its path")
    report.add_argument("results_url", metavar="RESULTS_URL", help="run folder (any fsspec URL)")
    report.add_argument("--output", metavar="FILE", help="report file (default: in the run)")
    report.set_defaults(handler=_cmd_report)

    comp = sub.add_parser("compare", help="compare two models gage by gage (NSE, KGE)")
    comp.add_argument("results_url", metavar="RESULTS_URL", help="run folder or results file")
    comp.add_argument(
        "results_url_b", metavar="RESULTS_URL_B", nargs="?", help="a second run (model B)"
    )
    comp.add_argument("--models", nargs=2, metavar=("A", "B"), help="the two model names")
    comp.add_argument(
        "--output", metavar="FILE", help="per-gage table (.csv/.parquet) or page (.html)"
    )
    comp.set_defaults(handler=_cmd_compare)


# --- end report / compare -----------------------------------------------------------------


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
    _add_report_commands(sub)
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
