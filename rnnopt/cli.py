"""The command line: one run, a sweep, or the list of what can be run.

    rnnopt train --task adding --seq-len 50 --optimizer adam --lr 1e-3 --steps 2000 --out run.json
    rnnopt sweep examples/sweep-small.yaml --out results/small --workers 2
    rnnopt sweep examples/sweep-small.yaml --out results/small --scheduler tcp://host:8786
    rnnopt list

`train` is a sweep of one run: it is checked, run and recorded by the same code as a sweep
(`rnnopt.sweep`), so its history file has the same form as a sweep's run files. Bad arguments
exit with status 2 and a message that names the parameter, the value and the valid choices.
"""

from __future__ import annotations

import argparse
import csv
import inspect
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

import rnnopt
from rnnopt.checks import check_output_file
from rnnopt.optim import OPTIMIZERS
from rnnopt.rnn import CORES
from rnnopt.sweep import (
    SECTIONS,
    RunsLost,
    SpecError,
    execute,
    expand,
    load_spec,
    parameters,
    parse_value,
    run_sweep,
    write_atomic,
)
from rnnopt.tasks import TASKS, make_task
from rnnopt.train import resolve_device

__all__ = ["main", "build_parser"]


def _key_value(text: str) -> tuple[str, Any]:
    """`KEY=VALUE` with VALUE read as YAML: `momentum=0.9`, `betas=[0.9,0.99]`, `nesterov=true`."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, parse_value(value)
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise argparse.ArgumentTypeError(
            f"{text!r}: the value of {key} is not a YAML value ({problem}); e.g. 0.9, 1e-3, "
            "true, [0.9, 0.99], adam"
        ) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


class _HelpWithDefaults(argparse.HelpFormatter):
    """Help that ends every option's line with its default (argparse's own formatter for this
    skips options whose help is empty, and says "None" where the help can say what it means)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        # By identity: 0 == False, and a default of 0 is worth showing.
        if (
            "default" in text
            or not action.option_strings
            or default is None
            or default is False
            or default == []
            or default is argparse.SUPPRESS
        ):
            return text
        return f"{text} (default: {action.default})".strip()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnopt", description="Train recurrent networks with the optimizers of rnnopt."
    )
    parser.add_argument("--version", action="version", version=f"rnnopt {rnnopt.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # Every option's default in --help (argparse shows them only when asked to).
    formatter = _HelpWithDefaults
    train = commands.add_parser(
        "train",
        help="one run: a progress bar, a summary, and its history if asked",
        formatter_class=formatter,
        description="Train one model on one task; `rnnopt list` shows every parameter.",
    )
    what = train.add_argument_group("task and model")
    what.add_argument("--task", required=True, choices=list(TASKS), help="the task (required)")
    what.add_argument(
        "--seq-len", type=int, help="sequence length (the task's seq_len; default: the task's own)"
    )
    what.add_argument(
        "--task-opt",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other task parameter (repeatable)",
    )
    model_defaults = parameters("model")
    what.add_argument(
        "--hidden-size", type=int, default=model_defaults["hidden_size"], help="hidden units"
    )
    what.add_argument(
        "--core", choices=list(CORES), default=model_defaults["core"], help="the recurrent layer"
    )
    how = train.add_argument_group("optimizer and training")
    how.add_argument("--optimizer", default="adam", choices=list(OPTIMIZERS), help="the optimizer")
    how.add_argument("--lr", type=float, help="learning rate (default: the optimizer's)")
    how.add_argument(
        "--opt",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other optimizer parameter, e.g. --opt betas=[0.9,0.99]",
    )
    how.add_argument("--steps", type=int, default=1000, help="optimizer steps")
    train_defaults = parameters("train")
    how.add_argument(
        "--batch-size", type=int, default=train_defaults["batch_size"], help="sequences per step"
    )
    how.add_argument(
        "--clip",
        type=float,
        metavar="MAX_NORM",
        default=train_defaults["clip_grad_norm"],
        help="clip the gradient's global L2 norm to MAX_NORM (default: no clipping)",
    )
    how.add_argument(
        "--eval-every",
        type=int,
        metavar="STEPS",
        default=train_defaults["eval_every"],
        help="held-out evaluation every STEPS steps (default: only before the "
        "first step and after the last)",
    )
    how.add_argument("--seed", type=int, default=0, help="seeds the weights and the data")
    how.add_argument("--device", default="cpu", help="cpu or cuda")
    how.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="write the history: FILE.json (full record) or FILE.csv (per step; "
        "default: not written)",
    )
    how.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(handler=_train, command_parser=train)

    sweep = commands.add_parser(
        "sweep",
        help="every run of a YAML grid, in parallel, resumable",
        formatter_class=formatter,
        description="Run a sweep spec; a rerun skips the runs already in --out.",
    )
    sweep.add_argument("spec", type=Path, metavar="SPEC.yaml", help="the sweep spec")
    sweep.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="the results directory (required); a rerun resumes it",
    )
    where = sweep.add_mutually_exclusive_group()
    where.add_argument("--workers", type=_positive_int, default=1, help="local worker processes")
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="a Dask scheduler, e.g. tcp://host:8786, instead of local workers (default: none)",
    )
    sweep.add_argument("--device", default="cpu", help="cpu or cuda")
    change = sweep.add_mutually_exclusive_group()
    change.add_argument(
        "--extend",
        action="store_true",
        help="DIR holds another spec: add this spec's runs to it, keeping "
        "every run file (shared runs are reused)",
    )
    change.add_argument(
        "--replace",
        action="store_true",
        help="DIR holds another spec: make it this spec's, deleting the run "
        "files this spec does not have",
    )
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    sweep.set_defaults(handler=_sweep, command_parser=sweep)

    tier = commands.add_parser(
        "evidence",
        help="run or resume the evidence tier (data/evidence/), resumable",
        formatter_class=formatter,
        description="Tune and evaluate every study of data/specs/evidence/ by the protocol "
        "(rnnopt.protocol); `make evidence` also runs the other experiments.",
    )
    tier.add_argument("studies", nargs="*", metavar="STUDY", help="study names (default: all)")
    where = tier.add_mutually_exclusive_group()
    where.add_argument(
        "--workers", type=_positive_int, default=2, help="variants run at once, one process each"
    )
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="a Dask scheduler, e.g. tcp://host:8786 (default: none)",
    )
    tier.add_argument(
        "--out",
        metavar="DIR",
        help="the tier's root to run into (default: data/evidence/); a store of its own lets a "
        "long tier run in the background, copied into data/evidence/ by --stage",
    )
    only = tier.add_mutually_exclusive_group()
    only.add_argument(
        "--report",
        action="store_true",
        help="only rewrite data/evidence/README.md (layout and cost)",
    )
    only.add_argument(
        "--stage",
        metavar="STORE",
        help="only copy what a tier running in STORE (its --out) has stored into "
        "data/evidence/, for a commit, and rewrite the README (rnnopt.tier.stage)",
    )
    tier.add_argument(
        "--runs-only",
        action="store_true",
        help="with --stage: copy only the new run files, which leaves every executed chapter "
        "up to date (no results.csv or record changes)",
    )
    tier.set_defaults(handler=_evidence, command_parser=tier)

    judge = commands.add_parser(
        "evaluate",
        help="your own optimizer under the book's protocol, beside the four",
        formatter_class=formatter,
        description="Search the learning rate of any torch optimizer on every study of a tier "
        "as the four optimizers' were, evaluate it on fresh seeds, and compare "
        "with their stored results (DIR/summary.csv, DIR/paired.csv), and execute the "
        "algorithm chapter's template for it (DIR/report.ipynb).",
    )
    judge.add_argument(
        "--optimizer",
        required=True,
        metavar="SPEC",
        help="path/to/file.py:ClassName or package.module:ClassName (required)",
    )
    judge.add_argument(
        "--tier",
        choices=("quick", "full"),
        default="quick",
        help="quick: minutes; full: the evidence tier, hours",
    )
    judge.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="results directory (required); a rerun resumes it",
    )
    judge.add_argument(
        "--hyper",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a fixed hyperparameter, e.g. betas=[0.9,0.99]",
    )
    judge.add_argument(
        "--lr-from",
        type=float,
        default=0.000464,
        help="lowest rate of the starting grid (1/3-decade lattice)",
    )
    judge.add_argument(
        "--lr-to",
        type=float,
        default=0.00215,
        help="highest rate of the starting grid (1/3-decade lattice)",
    )
    where = judge.add_mutually_exclusive_group()
    where.add_argument("--workers", type=_positive_int, default=2, help="local worker processes")
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="a Dask scheduler, e.g. tcp://host:8786 (default: none)",
    )
    judge.set_defaults(handler=_evaluate, command_parser=judge)

    # The book has a command line of its own: main() hands them every
    # argument that follows; these entries only list them in --help.
    for name, (_, _, help_text) in PASS_THROUGH.items():
        commands.add_parser(name, help=help_text, add_help=False)

    listing = commands.add_parser("list", help="the optimizers and tasks, with their defaults")
    listing.set_defaults(handler=_list, command_parser=listing)
    return parser


def _section(
    flags: dict[str, Any],
    extra: list[tuple[str, Any]],
    option: str,
    parser: argparse.ArgumentParser,
) -> dict[str, Any]:
    """A spec section from named flags (those given) and KEY=VALUE options."""
    section = {k: v for k, v in flags.items() if v is not None}
    for key, value in extra:
        if key in section:
            parser.error(f"{option} {key}={value!r}: {key} is already set to {section[key]!r}")
        section[key] = value
    return section


def _train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.out is not None:
        if args.out.suffix not in (".json", ".csv"):
            parser.error(f"argument --out: {str(args.out)!r} must end in .json or .csv")
        try:  # before training: a result that cannot be written is lost work
            check_output_file("--out", args.out)
        except ValueError as err:
            parser.error(f"argument {err}")
    spec = {
        "task": _section(
            {"name": args.task, "seq_len": args.seq_len}, args.task_opt, "--task-opt", parser
        ),
        "model": {
            k: v
            for k, v in (("hidden_size", args.hidden_size), ("core", args.core))
            if v is not None
        },
        "optimizer": _section({"name": args.optimizer, "lr": args.lr}, args.opt, "--opt", parser),
        "train": {
            k: v
            for k, v in (
                ("steps", args.steps),
                ("batch_size", args.batch_size),
                ("clip_grad_norm", args.clip),
                ("eval_every", args.eval_every),
            )
            if v is not None
        },
        "seed": args.seed,
    }
    try:
        (config,) = expand(load_spec(spec))
        resolve_device(args.device)
    except SpecError as err:
        parser.error("\n  ".join(["invalid settings:", *map(_with_flag, err.problems)]))
    except ValueError as err:
        parser.error(str(err))
    record = execute(config.config, args.device, progress=not args.quiet)
    print(_summary(record))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        text = (
            json.dumps(record, indent=1)
            if args.out.suffix == ".json"
            else _history_csv(record["history"])
        )
        write_atomic(args.out, text)
        print(f"history written to {args.out}")
    return 0


# The flags of `rnnopt train` whose parameter has another name in a spec.
_FLAGS = {
    "clip_grad_norm": "--clip",
    "eval_every": "--eval-every",
    "seq_len": "--seq-len",
    "hidden_size": "--hidden-size",
    "batch_size": "--batch-size",
    "steps": "--steps",
    "seed": "--seed",
    "lr": "--lr",
    "core": "--core",
}


def _with_flag(problem: str) -> str:
    """A spec's problem with the flag that set the parameter: '... (set by --clip)'."""
    for key, flag in _FLAGS.items():
        if f"{key}=" in problem or f"{key} must" in problem:
            return f"{problem} (set by {flag})"
    return problem


def _summary(record: dict) -> str:
    config = record["config"]
    task = make_task(**config["task"])
    baseline = task.baseline()
    options = ", ".join(f"{k}={v}" for k, v in config["task"].items() if k != "name")
    history = record["history"]
    diverged = (
        f"yes, at step {history['diverged_step']} (non-finite loss or gradient)"
        if history["diverged"]
        else "no"
    )
    better = "higher" if task.higher_is_better else "lower"
    return "\n".join(
        [
            f"{config['optimizer']['name']} on {task.name} ({options}): "
            f"{record['steps_done']}/{config['train']['steps']} steps, seed {config['seed']}, "
            f"{record['wall_time']:.1f} s",
            f"  held-out loss        {record['final_loss']:<10.5g} baseline {baseline['loss']:.5g}"
            f" ({baseline['description']})",
            f"  held-out {record['metric_name']:<12}{record['final_metric']:<10.5g}"
            f" baseline {baseline['metric']:.5g} ({better} is better)",
            f"  diverged             {diverged}",
        ]
    )


def _history_csv(history: dict) -> str:
    """One row per step: training loss and gradient norm, and the held-out numbers at the
    steps where they were measured (step 0 is the untrained model)."""
    evals = {
        s: (loss, metric)
        for s, loss, metric in zip(
            history["eval_step"], history["eval_loss"], history["eval_metric"], strict=True
        )
    }
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["step", "loss", "grad_norm", "step_time", "eval_loss", "eval_metric"])
    for step in sorted({*range(1, len(history["loss"]) + 1), *evals}):
        trained = 0 < step <= len(history["loss"])
        row = [
            repr(history[k][step - 1]) if trained else ""
            for k in ("loss", "grad_norm", "step_time")
        ]
        row += [repr(v) for v in evals[step]] if step in evals else ["", ""]
        writer.writerow([step, *row])
    return buffer.getvalue()


def _sweep(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if not args.spec.is_file():
        parser.error(f"argument SPEC.yaml: no such file: {str(args.spec)!r}")
    try:
        rows = run_sweep(
            args.spec,
            args.out,
            workers=args.workers,
            scheduler=args.scheduler,
            device=args.device,
            progress=not args.quiet,
            extend=args.extend,
            replace=args.replace,
        )
    except ValueError as err:  # SpecError included: it lists every problem of the spec
        parser.error(str(err))
    except RunsLost as err:
        print(f"rnnopt sweep: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"interrupted: the finished runs are in {args.out}; the same command resumes",
            file=sys.stderr,
        )
        return 130
    except OSError as err:  # e.g. a Dask scheduler that cannot be reached
        print(f"rnnopt sweep: error: {err}", file=sys.stderr)
        return 1
    counts = {s: sum(r["status"] == s for r in rows) for s in ("ok", "diverged")}
    print(
        f"{len(rows)} runs done ({counts['ok']} ok, {counts['diverged']} diverged); "
        f"results in {args.out / 'results.csv'}"
    )
    return 0


PASS_THROUGH = {  # command: (module whose main() takes the rest, leading argument, help)
    "book": ("rnnopt.book", None, "execute the stale chapters (rnnopt book --help)"),
}


def _pass_through(module: str, lead: str | None, help_text: str):  # noqa: ANN202
    def handler(rest: list[str]) -> int:
        import importlib

        return importlib.import_module(module).main([lead, *rest] if lead else rest)

    return handler


def _evidence(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from rnnopt import evidence

    try:
        if args.report:
            from rnnopt.tier import write_report

            write_report()
        elif args.stage is not None:
            from rnnopt.tier import stage

            counts = stage(args.stage, runs_only=args.runs_only)
            print(", ".join(f"{n} {what}" for what, n in counts.items()))
        else:
            evidence.run_evidence(
                args.studies,
                workers=args.workers,
                scheduler=args.scheduler,
                out_root=args.out or evidence.EVIDENCE_DIR,
            )
    except ValueError as err:
        parser.error(str(err))
    except (RunsLost, OSError) as err:
        print(f"rnnopt evidence: error: {err}; the same command resumes", file=sys.stderr)
        return 1
    return 0


def _evaluate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from rnnopt import evaluate

    try:
        rows = evaluate.evaluate(
            args.optimizer,
            args.tier,
            args.out,
            dict(args.hyper),
            grid=(args.lr_from, args.lr_to),
            workers=args.workers,
            scheduler=args.scheduler,
        )
    except ValueError as err:  # EvaluationError, SpecError, a bad scheduler or directory
        parser.error(str(err))
    except (RunsLost, OSError) as err:
        print(f"rnnopt evaluate: error: {err}; the same command resumes", file=sys.stderr)
        return 1
    except evaluate.ReportError as err:
        print(f"rnnopt evaluate: error: {err}", file=sys.stderr)
        return 1
    mine = [r for r in rows if r["optimizer"] not in evaluate.FOUR]
    for row in mine:
        print(
            f"{row['task']:<20} lr {row['best_lr']:<9g} relative error {row['estimate']:.3f} "
            f"[{row['ci_low']:.3f}, {row['ci_high']:.3f}]"
        )
    print(f"summary: {args.out / 'summary.csv'}; paired comparison: {args.out / 'paired.csv'}")
    print(f"report: {args.out / 'report.ipynb'} (jupyter-book or jupyter can render it)")
    return 0


def _show(value: Any) -> str:
    """A value as it would be written in a spec or after --opt (YAML)."""
    return value if isinstance(value, str) else json.dumps(value)


def _signature(section: str, name: str | None = None) -> str:
    return "  ".join(
        k if v is inspect.Parameter.empty else f"{k}={_show(v)}"
        for k, v in parameters(section, name).items()
    )


def _list(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    lines = ["optimizers (--optimizer NAME, --lr, --opt KEY=VALUE; spec section `optimizer`):"]
    lines += [f"  {name:<9} {_signature('optimizer', name)}" for name in OPTIMIZERS]
    lines += ["", "tasks (--task NAME, --seq-len, --task-opt KEY=VALUE; spec section `task`):"]
    for name, cls in TASKS.items():
        better = "higher" if cls.higher_is_better else "lower"
        lines.append(f"  {name:<9} {_signature('task', name)}")
        lines.append(f"  {'':<9} metric: {cls.metric_name} ({better} is better)")
    lines += [
        "",
        "model (--hidden-size, --core; spec section `model`):",
        f"  {_signature('model')}   (core: {', '.join(CORES)})",
        "",
        "train (--steps, --batch-size, --clip, --eval-every; spec section `train`):",
        f"  {_signature('train')}   (steps has no default in a spec)",
        "",
        f"a sweep's grid may vary any of these, and seed (sections: {', '.join(SECTIONS)})",
    ]
    print("\n".join(lines))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in PASS_THROUGH:  # their own parsers read every option that follows
        return _pass_through(*PASS_THROUGH[argv[0]])(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.handler(args, args.command_parser)


if __name__ == "__main__":
    sys.exit(main())
