"""`xrayviewer recalibrate`: refit an installed bundle's temperature and thresholds on a site's own labelled
films, without touching its weights; writes a new bundle version (see training.recalibration).

Ctrl-C once stops at the next batch, twice aborts. Exit status: 0 done, 2 bad input (nothing written),
130 cancelled.
"""

from __future__ import annotations

import argparse
import sys
import threading

from xrayviewer.cli.engine_runs import add_events_option, install_cancel

EXAMPLE = """example (a site's films in class folders normal/ and pneumonia/):
  xrayviewer recalibrate --bundle pneumonia --data ~/site-films --negative normal \\
      --description "200 AP films, St Elsewhere paediatric ward, 2026" --rule sensitivity --target 0.95
  then install RUN/bundle like any bundle (the wizard does this: Model > Recalibrate a model...)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the recalibration flags (a flag overrides the same key of --config)."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EXAMPLE + "\nFull reference: docs/wizard.md"
    parser.add_argument("--config", metavar="FILE", help="JSON or TOML with the keys of RecalConfig")
    parser.add_argument("--bundle", metavar="NAME|DIR", help="installed bundle name or folder")
    parser.add_argument("--data", metavar="DIR", help="site films in class folders DIR/CLASS/images")
    parser.add_argument("--csv", metavar="FILE", help="site films listed in a CSV (file,label columns)")
    parser.add_argument("--negative", metavar="LABEL", help="binary bundles: the label meaning no finding")
    parser.add_argument("--rule", choices=("card", "youden", "sensitivity"), help="threshold rule (card)")
    parser.add_argument("--target", type=float, metavar="S", help="target sensitivity for --rule sensitivity")
    parser.add_argument("--description", metavar="TEXT", help="the site data in words (recorded in the card)")
    parser.add_argument("--version", metavar="V", help="version of the new bundle (default OLD+siteDATE)")
    parser.add_argument("--out", metavar="DIR", help="parent of the output folder (default runs/)")
    add_events_option(parser, "lines")


def _config(args: argparse.Namespace):
    import json
    import tomllib
    from pathlib import Path

    from xrayviewer.training.config import ConfigError
    from xrayviewer.training.recalibration import recal_config_from_dict

    values: dict = {}
    if args.config:
        path = Path(args.config)
        try:
            text = path.read_text(encoding="utf-8")
            values = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: not a valid config file ({exc})") from None
    config = recal_config_from_dict(values)
    if args.data:
        config.data.folders, config.data.csv = args.data, ""
    if args.csv:
        config.data.csv, config.data.folders = args.csv, ""
    for flag, key in (
        ("bundle", "bundle"),
        ("negative", "negative"),
        ("rule", "rule"),
        ("target", "target_sensitivity"),
        ("description", "description"),
        ("version", "version"),
        ("out", "out"),
    ):
        value = getattr(args, flag)
        if value is not None:
            setattr(config, key, value)
    config.validate()
    return config


def run(args: argparse.Namespace) -> int:
    """Validate, recalibrate, print where the new bundle is."""
    from xrayviewer.engine.bundle import BundleError
    from xrayviewer.training.config import ConfigError
    from xrayviewer.training.events import JsonLines, RunFinished, describe
    from xrayviewer.training.recalibration import recalibrate
    from xrayviewer.training.sources import DatasetError

    cancel = threading.Event()
    install_cancel(cancel)

    def text(event) -> None:
        if isinstance(event, RunFinished):  # the summary below says it better
            return
        line = describe(event)
        if line:
            print(line, file=sys.stderr)

    try:
        config = _config(args)
        result = recalibrate(config, [JsonLines() if args.events == "json" else text], cancel)
    except (ConfigError, DatasetError, BundleError) as exc:
        print(f"xrayviewer recalibrate: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("xrayviewer recalibrate: aborted", file=sys.stderr)
        return 130
    if result.status == "cancelled":
        return 130
    if args.events == "text":
        summary = result.summary
        for name in summary["classes"]:
            b, a = summary["before"]["per_class"][name], summary["after"]["per_class"][name]
            print(
                f"{name}: threshold {b['threshold']:.3f} -> {a['threshold']:.3f}; sensitivity "
                f"{b['sensitivity']:.3f} -> {a['sensitivity']:.3f}, specificity {b['specificity']:.3f} -> "
                f"{a['specificity']:.3f} on {summary['n']} site images"
            )
        print(f"new bundle: {result.bundle_dir} (version {summary['version']})")
    return 0
