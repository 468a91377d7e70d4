"""Command line: ``retention-study run | check | init | simulate``.

The only place that configures logging and turns named errors into exit statuses:
2 for bad data or config, 1 for an analysis failure, each with one line on stderr
and no traceback (``--debug`` shows it).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from retention_study.config import LOGGER_NAME, REPORTS_DIR
from retention_study.errors import RetentionStudyError

log = logging.getLogger(LOGGER_NAME)


def _configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    fmt = "%(asctime)s %(levelname)s %(message)s" if not sys.stderr.isatty() else "%(message)s"
    handler.setFormatter(logging.Formatter(fmt, datefmt="%Y-%m-%dT%H:%M:%S"))
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False


def _cmd_run(args: argparse.Namespace) -> int:
    from retention_study.runner import run_many

    outcomes = run_many(
        [Path(c) for c in args.configs],
        overrides=args.param or [],
        out_dir=Path(args.out),
        grid=args.grid or [],
        jobs=args.jobs,
        progress=args.progress,
    )
    failed = [o for o in outcomes if not o.ok]
    for o in outcomes:
        stream = sys.stdout if o.ok else sys.stderr
        print("\n".join(o.lines()), file=stream)
    if failed:
        return max(o.exit_status for o in failed)
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from retention_study.config_file import load_config
    from retention_study.data.load import load_study_data

    cfg = load_config(args.config, args.param or [])
    data = load_study_data(cfg)
    print(data.ledger.summary.to_string(index=False))
    print(f"ok: {data.n_customers} customers ready for analysis")
    return 0


def _cmd_init(args: argparse.Namespace) -> int:
    from retention_study.init import write_starter_config

    text = write_starter_config(args.files, out=args.out, force=args.force)
    if args.out is None:
        print(text, end="")
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from retention_study.data.simulate import write_simulation

    effects = {
        k: v
        for k, v in {
            "hr_no_contact_6m": args.hr_no_contact,
            "hr_price_gap_10pct": args.hr_price_gap,
            "hr_price_increase": args.hr_price_increase,
        }.items()
        if v is not None
    }
    paths = write_simulation(
        Path(args.out),
        n_customers=args.customers,
        seed=args.seed,
        preset=args.preset,
        fmt=args.format,
        as_of=args.as_of,
        levers=args.lever or (),
        **effects,
    )
    print(f"wrote {len(paths)} files to {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="retention-study",
        description="Does price or lack of contact better explain why customers leave?",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the study on one or more configs into report folders")
    run.add_argument("configs", nargs="+", help="YAML run config(s)")
    run.add_argument("-p", "--param", action="append", metavar="KEY=VALUE",
                     help="override a config key, e.g. -p study.lag_days=30 (repeatable)")
    run.add_argument("--grid", action="append", metavar="KEY=V1,V2",
                     help="one run per value, e.g. --grid data.where.plan=basic,premium")
    run.add_argument("--out", default=str(REPORTS_DIR), help="reports folder (default: reports/)")
    run.add_argument("--jobs", type=int, default=1, help="parallel runs (processes)")
    progress = run.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None,
                          help="show a progress bar (default: when stderr is a terminal)")
    progress.add_argument("--no-progress", dest="progress", action="store_false")
    run.set_defaults(func=_cmd_run)

    check = sub.add_parser("check", help="check the data of a config and print the ledger")
    check.add_argument("config")
    check.add_argument("-p", "--param", action="append", metavar="KEY=VALUE")
    check.set_defaults(func=_cmd_check)

    init = sub.add_parser("init", help="write a starter config guessed from data files")
    init.add_argument("files", nargs="+",
                      help="one table (or several with the same columns), or the three "
                           "event logs (customers, price events, contact events)")
    init.add_argument("-o", "--out", help="write the config here (default: print it)")
    init.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    init.set_defaults(func=_cmd_init)

    sim = sub.add_parser("simulate", help="write a simulated customer base with a known truth")
    sim.add_argument("--out", required=True, help="folder for the files and truth.json")
    sim.add_argument("--customers", type=int, default=5000)
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--preset", default="both", help="contact | price | both | neither")
    sim.add_argument("--format", default="csv", choices=["csv", "parquet"])
    sim.add_argument("--as-of", default="2026-06-30", help="extraction date (YYYY-MM-DD)")
    sim.add_argument("--hr-no-contact", type=float,
                     help="hazard ratio per 6 months without outbound contact")
    sim.add_argument("--hr-price-gap", type=float,
                     help="hazard ratio per +10%% above the new-customer price")
    sim.add_argument("--hr-price-increase", type=float,
                     help="hazard ratio for a price increase in the last 60 days")
    sim.add_argument("--lever", action="append", metavar="LEVER",
                     help="contact:MONTHS or price (repeatable): also simulate the world under "
                          "the lever with common random numbers; truth.json gets what_if")
    sim.set_defaults(func=_cmd_simulate)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.debug)
    try:
        return int(args.func(args) or 0)
    except RetentionStudyError as exc:
        if args.debug:
            log.exception("failed")
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"retention-study: error: {line}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("retention-study: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - cron wants one line, not a traceback
        if args.debug:
            log.exception("unexpected failure")
        print(f"retention-study: unexpected error: {type(exc).__name__}: {exc} "
              "(rerun with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
