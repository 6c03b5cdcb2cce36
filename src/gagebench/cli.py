"""The ``gagebench`` command: a thin layer of subcommands over the library.

Errors raised on purpose (:class:`gagebench.errors.GagebenchError`) are logged once here,
as one line that says what to do. Exit status: 0 done, 1 the run failed (a batch or the
cluster failed, the run folder is in use), 2 bad input or configuration (settings, stores,
URLs, credentials), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM). Nothing else is
caught.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gagebench._version import __version__
from gagebench.errors import (
    ConfigError,
    GagebenchError,
    InputError,
    NoSpaceError,
    RunError,
    StorageError,
)

if TYPE_CHECKING:
    from gagebench.config import RunConfig

log = logging.getLogger("gagebench")

Handler = Callable[[argparse.Namespace], int]


def _cmd_sample(args: argparse.Namespace) -> int:
    """Evaluate the real sample gage 01104200 (obs vs nwm and nhm) and print the table."""
    import pandas as pd

    from gagebench.evaluation import evaluate
    from gagebench.ids import ID_PREFIX
    from gagebench.sample import SAMPLE_SITE, load_sample

    frame = load_sample()
    suites = [s.strip() for s in args.suites.split(",") if s.strip()]
    table = evaluate(
        frame["obs"],
        {"nwm": frame["nwm"], "nhm": frame["nhm"]},
        gages=[ID_PREFIX + SAMPLE_SITE],
        mode=args.mode,
        suites=suites,
        seed=args.seed,
    )
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        print(table.drop(columns=["note"]).set_index(["site_no", "model"]).T.to_string())
    return 0


def _cmd_boot_years(args: argparse.Namespace) -> int:
    """Write one gage's bootstrap years in gumboot's bootYearFile layout; print the path."""
    import pandas as pd

    from gagebench.gages import check_site_no
    from gagebench.uncertainty_suite import UncertaintySettings, boot_year_table, write_boot_years

    site = check_site_no(args.site, "--site")
    try:
        flows = pd.read_csv(args.flows, dtype={"site_no": str})
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read flows file {args.flows!r}: {exc}") from exc
    missing = [c for c in ("date", args.obs, args.sim) if c not in flows.columns]
    if missing:
        raise InputError(
            f"{args.flows} has no column(s) {missing}: it needs date, observed and simulated "
            f"columns (found {list(flows.columns)}; choose them with --obs/--sim)"
        )
    dates = _flows_column(flows, "date", args.flows, "a date (YYYY-MM-DD)", pd.to_datetime)
    observed = _flows_column(flows, args.obs, args.flows, "a number", pd.to_numeric)
    simulated = _flows_column(flows, args.sim, args.flows, "a number", pd.to_numeric)
    settings = UncertaintySettings(
        n_samples=args.n_samples,
        seed=args.seed,
        water_year_month=args.water_year_month,
        min_days=args.min_days,
        min_years=args.min_years,
    )
    table = boot_year_table(observed, simulated, dates.to_numpy(), site, settings)
    write_boot_years(args.output, table)
    log.info(
        "gage %s: %d water-year slots x %d samples (seed %d)",
        args.site, table.shape[0], table.shape[1], args.seed,
    )  # fmt: skip
    print(args.output)
    return 0


def _flows_column(frame: Any, column: str, path: str, kind: str, parse: Callable[..., Any]) -> Any:
    """``frame[column]`` parsed by ``parse`` (pandas.to_datetime/to_numeric); an
    :class:`InputError` naming the file, column, first bad row and value otherwise
    (empty cells stay missing)."""
    import warnings

    raw = frame[column]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pandas: "could not infer format"
        parsed = parse(raw, errors="coerce")
    bad = parsed.isna() & raw.notna()
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise InputError(
            f"{path}: column {column!r} row {row + 1} holds {raw.iloc[row]!r}, not {kind} "
            f"({int(bad.sum())} such row(s)); fix them or leave missing values empty"
        )
    return parsed


def _add_boot_years(sub: argparse._SubParsersAction) -> None:
    from gagebench.config import UNCERTAINTY_DEFAULTS

    boot = sub.add_parser(
        "boot-years",
        help="write a gage's bootstrap years as gumboot's bootYearFile (to check runs in R)",
        description="Draw the bootstrap water years the uncertainty suite uses for one gage "
        "(the stream of (seed, site) only) and write them as gumboot's bootYearFile: CSV, no "
        "header, one row per water-year slot (padded with -9999), one column per sample. "
        "gumboot::bootjack(flows, bootYearFile=FILE) then uses the same years.",
    )
    boot.add_argument("flows", metavar="FLOWS_CSV", help="CSV with date, observed, simulated")
    boot.add_argument("--site", required=True, help="gage id, e.g. 01030500 or USGS-01030500")
    boot.add_argument("--seed", type=int, required=True, help="the run's uncertainty seed")
    for option, meaning in (
        ("n_samples", "bootstrap samples"),
        ("water_year_month", "first month of the water year"),
        ("min_days", "days a water year needs to count"),
        ("min_years", "valid water years a gage needs"),
    ):
        boot.add_argument(
            "--" + option.replace("_", "-"),
            type=int,
            default=UNCERTAINTY_DEFAULTS[option],
            help=f"{meaning} (default {UNCERTAINTY_DEFAULTS[option]}, as in a run)",
        )
    boot.add_argument("--obs", default="obs", help="observed column (default obs)")
    boot.add_argument("--sim", default="sim", help="simulated column (default sim)")
    boot.add_argument("--output", "-o", required=True, metavar="FILE", help="CSV to write")
    boot.set_defaults(handler=_cmd_boot_years)


# --- cluster-spec (clusters helper) --------------------------------------------------------
def _cmd_cluster_spec(args: argparse.Namespace) -> int:
    """Print the DaskCluster manifest the kubernetes backend would create; no API calls."""
    from gagebench.clusters import get_backend
    from gagebench.clusters._kubespec import to_yaml
    from gagebench.config import load_config, parse_override
    from gagebench.redact import redact_urls

    overrides = dict(parse_override(text) for text in args.set)
    cfg = load_config(*args.config, overrides=overrides)
    manifest = get_backend(cfg, "kubernetes").manifest()  # type: ignore[attr-defined]
    # secrets masked in the tree, so they print as the string '***' (valid YAML), not as
    # the stream's *** (an alias to YAML) in place of the value
    sys.stdout.write(to_yaml(redact_urls(manifest)))
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
    _add_config_option(spec)
    spec.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting"
    )
    spec.set_defaults(handler=_cmd_cluster_spec)


# --- end cluster-spec ----------------------------------------------------------------------


# --- config-schema ---------------------------------------------------------------------------
def _cmd_config_schema(args: argparse.Namespace) -> int:
    """Print the run file's JSON Schema, or write the Helm chart's section of it."""
    import json
    from pathlib import Path

    from gagebench.runfile import run_file_schema, write_chart_schema

    if args.write_chart_schema:
        path = Path(args.write_chart_schema)
        try:
            changed = write_chart_schema(path)
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(
                f"cannot update the chart's values schema {str(path)!r} ({exc}): give the "
                "chart's values.schema.json (helm/gagebench/values.schema.json)"
            ) from exc
        sys.stdout.write(f"{path}: {'updated' if changed else 'up to date'}\n")
        return 0
    sys.stdout.write(json.dumps(run_file_schema(), indent=2) + "\n")
    return 0


def _add_config_schema(sub: argparse._SubParsersAction) -> None:
    schema = sub.add_parser(
        "config-schema",
        help="print the run file's JSON Schema (editors check run files with it)",
        description=(
            "Print the JSON Schema of a run file (the settings under `gagebench:`), "
            "generated from gagebench's settings schema: every key with its type, bounds, "
            "default and help. Save it (gagebench config-schema > gagebench.schema.json) "
            "and point a run file to it with a first line "
            "`# yaml-language-server: $schema=gagebench.schema.json`, or use the published "
            "copy (see the configuration reference)."
        ),
    )
    schema.add_argument(
        "--write-chart-schema",
        metavar="VALUES_SCHEMA_JSON",
        help="instead, write the `config` section of the Helm chart's values.schema.json",
    )
    schema.set_defaults(handler=_cmd_config_schema)


# --- end config-schema -----------------------------------------------------------------------


# --- report / compare (report helper) -------------------------------------------------------
def _read_options(args: argparse.Namespace) -> tuple[dict[str, Any], str, list[str] | None]:
    """Storage options (run file's ``storage_options``, then --storage-option), the gage
    list (the run file's, for gage metadata) and the run file's ``report_gages`` of
    ``report`` / ``compare``."""
    from gagebench.config import load_config

    options: dict[str, Any] = {}
    gages = "builtin"
    report_gages = None
    if args.config:
        cfg = load_config(*args.config, output=".")
        options.update(cfg.storage_options)
        gages = cfg.gages
        report_gages = list(cfg.report_gages) if cfg.report_gages else None
    options.update(_overrides(args.storage_option))
    return options, gages, report_gages


def _cmd_report(args: argparse.Namespace) -> int:
    """Write the self-contained HTML report of a run and print where it went."""
    from gagebench.report.html import draw_report, write_report

    options, gages, report_gages = _read_options(args)
    report_gages = args.report_gages or report_gages
    if not args.baseline:
        url = write_report(
            args.results_url,
            output=args.output,
            storage_options=options,
            gages=gages,
            report_gages=report_gages,
        )
        print(url)
        return 0
    from gagebench.baselines import parse_pairs
    from gagebench.report.against import compare_with_baselines
    from gagebench.results.reader import read_run

    base_options = _overrides(args.baseline_option)
    baselines = {
        name: {"url": urls if len(urls) > 1 else urls[0], "storage_options": base_options}
        for name, urls in parse_pairs(args.baseline, "--baseline").items()
    }
    outcomes = compare_with_baselines(read_run(args.results_url, options).results, baselines)
    drawn = draw_report(
        args.results_url,
        output=args.output,
        storage_options=options,
        gages=gages,
        report_gages=report_gages,
        baselines=outcomes,
    )
    print(drawn.write())
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    """Compare two models gage by gage; print the paired summary, optionally save details."""
    import pandas as pd

    from gagebench.report.comparison import compare, describe_columns
    from gagebench.report.html import write_comparison

    options, _, _ = _read_options(args)
    if args.baseline or args.baseline_uncertainty:
        return _compare_with_baselines(args, options)
    if args.models is not None and len(args.models) != 2:
        raise InputError(f"--models names two models (A B), got {args.models}")
    result = compare(
        args.results_url,
        args.results_url_b,
        models=args.models,
        storage_options=options,
        **({"metrics": args.metrics} if args.metrics else {}),
    )
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        print(result.summary.to_string(index=False))
    print()
    print(describe_columns(result))
    if args.output:
        print(write_comparison(result, args.output))
    return 0


def _compare_with_baselines(args: argparse.Namespace, options: dict[str, Any]) -> int:
    """``compare RUN --baseline NAME=URL ...``: the run's model against each baseline."""
    from pathlib import Path

    import pandas as pd

    from gagebench.baselines import BaselineSource, parse_pairs
    from gagebench.report.comparison import compare_baselines, describe_columns
    from gagebench.report.html import write_comparison

    if args.results_url_b:
        raise InputError("give either a second run (RESULTS_URL_B) or --baseline, not both")
    if args.models is not None and len(args.models) != 1:
        raise InputError(
            f"with --baseline, --models names the run's one model (A), got {args.models}"
        )
    baselines = parse_pairs(args.baseline, "--baseline")
    uncertainty = parse_pairs(args.baseline_uncertainty, "--baseline-uncertainty")
    if not baselines:
        raise InputError("--baseline-uncertainty NAME=URL needs --baseline NAME=URL too")
    extra = {k: v for k, v in uncertainty.items() if len(v) > 1}
    if extra:
        raise InputError(f"--baseline-uncertainty: give one table per baseline, got {extra}")
    base_options = _overrides(args.baseline_option)
    results = compare_baselines(
        args.results_url,
        {n: [BaselineSource(u, base_options) for u in urls] for n, urls in baselines.items()},
        model=args.models[0] if args.models else None,
        storage_options=options,
        uncertainty={n: BaselineSource(u[0], base_options) for n, u in uncertainty.items()},
    )
    for name, result in results.items():
        urls = ", ".join(result.baseline_sources)
        print(f"== {result.model_a} (run) against {name} (published: {urls})")
        with pd.option_context("display.width", 200, "display.max_columns", 50):
            print(result.summary.to_string(index=False))
        for label, ids in (
            ("only in the run", result.only_a),
            ("only in the baseline", result.only_b),
        ):
            shown = ", ".join(ids[:20]) + (
                f" ... (all {len(ids)} in --output)" if len(ids) > 20 else ""
            )
            print(f"gages {label} (not compared): {len(ids)}{': ' + shown if ids else ''}")
        for metric in result.summary["metric"]:
            ids = result.not_paired(str(metric))
            if ids:
                shown = ", ".join(ids[:20]) + (" ..." if len(ids) > 20 else "")
                print(
                    f"{metric}: gages in both not paired (a value empty or infinite): "
                    f"{len(ids)}: {shown}"
                )
        for verdict in dict.fromkeys(result.summary.get("verdict", pd.Series(dtype=str))):
            print(f"verdict (beyond sampling noise): {verdict}")
        print()
        print(describe_columns(result))
        if args.output:
            out = Path(args.output)
            if len(results) > 1:
                out = out.with_name(f"{out.stem}-{name}{out.suffix}")
            print(write_comparison(result, str(out)))
    return 0


def _add_config_option(parser: argparse.ArgumentParser, help_text: str = "run file (YAML)") -> None:
    """``--config/-c FILE``, repeatable, the same on every command that reads a run file."""
    parser.add_argument(
        "--config",
        "-c",
        action="append",
        default=[],
        metavar="FILE",
        help=f"{help_text}; repeatable, later files win",
    )


def _add_read_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fsspec storage option for the URLs, e.g. endpoint_url=http://127.0.0.1:9000 "
        "(repeatable; values read as YAML; they win over the run file's)",
    )
    _add_config_option(parser, "the run file: its storage_options and gage list are used")


def _add_report_commands(sub: argparse._SubParsersAction) -> None:
    report = sub.add_parser("report", help="write the HTML report of a run and print its path")
    report.add_argument("results_url", metavar="RESULTS_URL", help="run folder (any fsspec URL)")
    report.add_argument("--output", metavar="FILE", help="report file (default: in the run)")
    report.add_argument(
        "--report-gages",
        nargs="+",
        metavar="GAGE",
        help="the gages whose KGE per water year is drawn (runs with a water_year "
        "breakdown; default: the gages at the 10/50/90 %% percentiles of median KGE)",
    )
    report.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="add the section 'Against published benchmarks': each model of the run against "
        "these published scores (as for compare --baseline; repeatable). A baseline that "
        "cannot be read is a note in the page and a warning, not a failed report",
    )
    report.add_argument(
        "--baseline-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fsspec storage option for the baseline URLs (repeatable; values read as YAML)",
    )
    _add_read_options(report)
    report.set_defaults(handler=_cmd_report)

    comp = sub.add_parser("compare", help="compare two models gage by gage (NSE, KGE)")
    comp.add_argument("results_url", metavar="RESULTS_URL", help="run folder or results file")
    comp.add_argument(
        "results_url_b", metavar="RESULTS_URL_B", nargs="?", help="a second run (model B)"
    )
    comp.add_argument(
        "--models",
        nargs="+",
        metavar="MODEL",
        help="the two model names; with --baseline the run's one model (A, default its first)",
    )
    comp.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="published scores as model B: a CSV/Parquet table in HyTEST's layout (site_no + "
        "metric columns) or CATALOG_URL#ENTRY of an intake catalog; repeatable (a NAME given "
        "again adds a table of that model, e.g. its D-score)",
    )
    comp.add_argument(
        "--baseline-uncertainty",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="the baseline NAME's KGE-uncertainty table (gumboot's bootjack() columns)",
    )
    comp.add_argument(
        "--baseline-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fsspec storage option for the baseline URLs, merged over a catalog entry's "
        "(repeatable; values read as YAML); the run's --storage-option is not used for them",
    )
    comp.add_argument(
        "--metrics",
        nargs="+",
        metavar="NAME",
        help="the metrics compared (default: NSE KGE): skill scores where larger is better, "
        "or a run's user metrics registered with higher_is_better (docs: user metrics)",
    )
    comp.add_argument(
        "--output", metavar="FILE", help="per-gage table (.csv/.parquet) or page (.html)"
    )
    _add_read_options(comp)
    comp.set_defaults(handler=_cmd_compare)


# --- end report / compare -----------------------------------------------------------------


# -- run / demo (pipeline) ---------------------------------------------------------------


def _overrides(pairs: Sequence[str]) -> dict[str, object]:
    from gagebench.config import parse_override

    return dict(parse_override(text) for text in pairs)


def _run_and_summarize(config: RunConfig, args: argparse.Namespace) -> int:
    from gagebench.pipeline import run
    from gagebench.progress import make_progress

    progress = make_progress(config.progress, args.quiet, config.log_format)
    try:
        result = run(config, force=args.force, progress=progress)
    except (KeyboardInterrupt, SystemExit) as exc:
        code = _interrupt_code(exc)
        if code is None:
            raise
        from gagebench.commandline import command_line, resume_command

        log.error(
            "%s: finished batches of run %s are saved in %s; resume with: %s",
            "interrupted" if code == 130 else "terminated (SIGTERM)",
            config.run_id,
            config.run_url,
            resume_command(config.run_id, command_line()),
        )
        return code
    from gagebench.summary import format_summary, nothing_evaluated

    if not args.quiet:
        print(format_summary(result))
    reason = nothing_evaluated(result)
    if reason:  # a run that scored nothing failed, whatever it wrote
        log.error(
            "run %s evaluated no gage (%s). Its rows are in %s",
            config.run_id,
            reason,
            result.run_url,
        )
        return 1
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    """Run the benchmark of a run file (plus --set overrides) on its cluster backend."""
    from gagebench.config import load_config
    from gagebench.logs import setup_logging

    config = load_config(*args.config, overrides=_overrides(args.set))
    setup_logging(config.log_format, args.quiet)
    return _run_and_summarize(config, args)


def _cmd_demo(args: argparse.Namespace) -> int:
    """Synthesize the built-in gages' stores, run every suite on a LocalCluster, summarize."""
    import tempfile

    from gagebench.config import load_config
    from gagebench.demo import demo_settings
    from gagebench.logs import setup_logging

    overrides = _overrides(args.set)
    peek = load_config(output=".", overrides=overrides)
    setup_logging(peek.log_format, args.quiet)
    output = Path(args.output).resolve()
    stores_dir = Path(args.stores).resolve() if args.stores else output / "stores"
    with contextlib.ExitStack() as stack:
        if args.stores == "tmp":
            stores_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gagebench-")))
        settings = demo_settings(stores_dir, output, args.gages, args.seed)
        config = load_config(overrides={**settings, **overrides})
        return _run_and_summarize(config, args)


def _cmd_synth(args: argparse.Namespace) -> int:
    """Write synthetic observed and model zarr stores and print a config that reads them."""
    import yaml

    from gagebench.redact import redact
    from gagebench.synth import synthesize

    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    options = _overrides(args.storage_option)
    stores = synthesize(
        args.output_url,
        n_gages=args.gages,
        start=args.start,
        end=args.end,
        models=models,
        frequency="hourly" if args.hourly else "daily",
        model_index="feature_id" if args.feature_id else "gage_id",
        seed=args.seed,
        storage_options=options,
    )
    timings = ", ".join(f"{k.removesuffix('_s')} {v:.1f}s" for k, v in stores.timings.items())
    log.info("wrote %d gages (%s): %s", stores.n_gages, stores.frequency, timings)
    # credentials given with --storage-option are not echoed: they show as ***
    print(yaml.safe_dump(redact(stores.to_config_dict()), sort_keys=False), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="gagebench",
        description="HyTEST streamflow benchmark statistics for thousands of gages on Dask.",
    )
    parser.add_argument("--version", action="version", version=f"gagebench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_sample(sub)
    _add_run_commands(sub)
    _add_synth(sub)
    _add_cluster_spec(sub)
    _add_config_schema(sub)
    _add_report_commands(sub)
    _add_boot_years(sub)
    return parser


def _add_sample(sub: argparse._SubParsersAction) -> None:
    """``sample``: the real sample gage, evaluated in this process."""
    from gagebench.defaults import default

    mode, suites = default("mode"), ",".join(default("suites"))
    sample = sub.add_parser("sample", help="evaluate the real sample gage 01104200 and print it")
    sample.add_argument(
        "--mode",
        choices=["standard", "hytest"],
        default=mode,
        help=f"standard definitions or HyTEST's notebooks' (default {mode})",
    )
    sample.add_argument(
        "--suites",
        default=suites,
        help=f"comma-separated suites: standard, dscore, uncertainty (default {suites})",
    )
    sample.add_argument("--seed", type=int, default=0, help="seed of the uncertainty suite")
    sample.set_defaults(handler=_cmd_sample)


def _add_run_commands(sub: argparse._SubParsersAction) -> None:
    """``run`` and ``demo``, with the options they share (--set, --force, --quiet)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting, e.g. --set batch_size=128 (repeatable)",
    )
    common.add_argument(
        "--force", action="store_true", help="recompute a run that is already complete"
    )
    common.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar, no summary, warnings only"
    )
    run_p = sub.add_parser(
        "run", parents=[common], help="evaluate every gage of a run file on a Dask cluster"
    )
    _add_config_option(run_p)
    run_p.set_defaults(handler=_cmd_run)
    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="synthesize stores for the built-in gages and run the benchmark on them",
    )
    demo.add_argument("--output", "-o", default="gagebench-demo", help="output folder")
    demo.add_argument("--gages", type=int, default=5390, help="number of built-in gages")
    demo.add_argument(
        "--stores",
        default=None,
        help="folder for the synthetic stores (default OUTPUT/stores; 'tmp' = a temp dir)",
    )
    demo.add_argument("--seed", type=int, default=0, help="seed of the synthetic stores")
    demo.set_defaults(handler=_cmd_demo)


def _add_synth(sub: argparse._SubParsersAction) -> None:
    """``synth``: synthetic HyTEST-shaped stores at any fsspec URL."""
    synth = sub.add_parser(
        "synth",
        help="write synthetic HyTEST-shaped observed and model zarr stores",
        description="Write OUTPUT_URL/observed.zarr and OUTPUT_URL/<model>.zarr (any fsspec "
        "URL) and print the config keys that point a run at them.",
    )
    synth.add_argument(
        "output_url", metavar="OUTPUT_URL", help="folder (any fsspec URL) for the stores"
    )
    synth.add_argument(
        "--gages",
        type=int,
        default=None,
        metavar="N",
        help="first N gages of the built-in list (default: all 5390)",
    )
    synth.add_argument("--hourly", action="store_true", help="hourly model stores")
    synth.add_argument(
        "--feature-id",
        action="store_true",
        help="index model stores by feature_id with a byte gage_id coordinate",
    )
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.add_argument("--models", default="nwm,nhm", help="comma-separated model names")
    synth.add_argument("--start", default="1979-02-01", help="first day (default 1979-02-01)")
    synth.add_argument("--end", default="2020-12-31", help="last day (default 2020-12-31)")
    synth.add_argument(
        "--storage-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fsspec storage option for OUTPUT_URL, e.g. endpoint_url=http://127.0.0.1:9000 "
        "(repeatable; values read as YAML)",
    )
    synth.set_defaults(handler=_cmd_synth)


def _setup_logging(args: argparse.Namespace) -> None:
    """Text or JSON log lines (``gagebench.log_format`` from dask config / env) on stderr."""
    import dask.config

    from gagebench import config as _config  # registers the gagebench defaults  # noqa: F401
    from gagebench.logs import setup_logging

    log_format = dask.config.get("gagebench.log_format", default="text")
    setup_logging(
        log_format if log_format in ("text", "json") else "text", getattr(args, "quiet", False)
    )


@contextlib.contextmanager
def _quiet_children() -> Iterator[None]:
    """Child processes (multiprocessing's resource tracker) started meanwhile inherit this:
    when local workers are stopped mid-task, the tracker's "leaked semaphore objects"
    warning at exit is noise after the one-line message. Restored afterwards (``main``
    may be called in-process)."""
    import os

    rule = "ignore:resource_tracker:UserWarning"
    before = os.environ.get("PYTHONWARNINGS")
    if rule not in (before or ""):
        os.environ["PYTHONWARNINGS"] = f"{before},{rule}" if before else rule
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTHONWARNINGS", None)
        else:
            os.environ["PYTHONWARNINGS"] = before


def _interrupt_code(exc: BaseException) -> int | None:
    """130 for Ctrl-C, 143 for SIGTERM (:class:`~gagebench.clusters.Terminated`), else None."""
    from gagebench.clusters.base import Terminated

    if isinstance(exc, KeyboardInterrupt):
        return 130
    if isinstance(exc, Terminated):
        return 143
    return None


def exit_code(exc: GagebenchError) -> int:
    """2 for bad input or configuration (settings, stores, URLs, credentials), 1 for a
    run that failed (a batch, the cluster or the commit failed, the disk is full, the run
    folder is in use or its lease was lost)."""
    if isinstance(exc, RunError | NoSpaceError):
        return 1
    return 2 if isinstance(exc, ConfigError | InputError | StorageError) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gagebench`` console script: what it prints, logs and warns is
    masked (:mod:`gagebench.redact`), tracebacks of bugs included."""
    from gagebench.redact import install, masked_streams

    install()
    with masked_streams():
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    broken = _broken_dask_config()  # first: importing gagebench's modules reads dask's config
    if broken is not None:
        sys.stderr.write(f"ERROR gagebench: {broken}\n")
        return 2
    from gagebench.clusters.base import sigterm_raises

    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args)
    handler: Handler = args.handler
    try:
        with sigterm_raises(), _quiet_children():
            return handler(args)
    except GagebenchError as exc:
        log.error("%s", exc)
        return exit_code(exc)
    except (KeyboardInterrupt, SystemExit) as exc:
        code = _interrupt_code(exc)
        if code is None:
            raise
        log.error("%s", "interrupted" if code == 130 else "terminated (SIGTERM)")
        return code


def _broken_dask_config() -> str | None:
    """What is wrong with a dask config file, which dask reads when it is imported (a
    ``ValueError`` traceback before any command ran), or None."""
    try:
        import dask.config  # noqa: F401
    except ValueError as exc:
        if "dask config file" not in str(exc):
            raise
        text = " ".join(str(exc).split())
        return f"{text} (fix or remove that file; $DASK_CONFIG names the dask config folder)"
    return None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
