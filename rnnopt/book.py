"""Execute the book's chapters with papermill, only when something they depend on changed.

    python -m rnnopt.book                 # execute every stale chapter in place (chapters/*.ipynb)
    python -m rnnopt.book --force sgd     # re-execute one chapter whatever its hash says
    python -m rnnopt.book --set full      # full-scale parameters, into _build/full/ (or --out DIR)
    python -m rnnopt.book --list          # chapters, their parameter files and whether stale

`chapters/book.yaml` lists the chapters: each names the template notebook papermill executes,
the YAML file of its parameters (a `default` set, and a `full` set of overrides for longer runs)
and, for the algorithm chapters, the text of that algorithm which the template renders. A
chapter is stale when the hash of those inputs and of rnnopt's source differs from the hash
stored in the executed notebook. After execution every volatile field (timestamps, durations,
random cell ids, paths) is removed, so re-executing an unchanged chapter gives the same bytes.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rnnopt.checks import check_output_dir, invalid
from rnnopt.specs import load_yaml
from rnnopt.store import write_atomic

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"
PACKAGE = Path(__file__).resolve().parent
PARAMETER_SETS = ("default", "full")
# Executing with one torch thread is part of the chapters' parameters; the environment
# variables make every library the kernel loads agree.
KERNEL_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYTHONHASHSEED": "0",
    "TQDM_DISABLE": "1",
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
}


@dataclass(frozen=True)
class Chapter:
    name: str
    notebook: Path  # the executed notebook the book shows
    template: Path  # what papermill executes
    parameters: Path  # YAML with the `default` and `full` parameter sets
    text: Path | None = None  # algorithm prose the template renders
    data: tuple[Path, ...] = ()  # stored results the chapter loads (e.g. data/evidence/...)

    def parameter_values(self, parameter_set: str = "default") -> dict[str, Any]:
        """The parameters papermill injects, after checking the file against the template.

        Refused (ValueError naming the file), before any kernel starts: a file that is not
        YAML or repeats a key, top-level keys other than `default` and `full` (a misspelt
        `default:` would otherwise run the template's own defaults, those of another chapter),
        and parameters the template's `parameters` cell does not define.
        """
        if parameter_set not in PARAMETER_SETS:
            raise ValueError(
                invalid("parameter_set", parameter_set, "a parameter set", PARAMETER_SETS)
            )
        where = str(
            self.parameters.relative_to(ROOT)
            if self.parameters.is_relative_to(ROOT)
            else self.parameters
        )
        try:
            sets = load_yaml(self.parameters.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            raise ValueError(
                invalid("parameters", where, f"a file of valid YAML ({err})")
            ) from None
        sets = {} if sets is None else sets
        if not isinstance(sets, dict):
            rule = "a mapping of parameter sets"
            raise ValueError(f"{where}: {invalid('top level', sets, rule, PARAMETER_SETS)}")
        unknown = [k for k in sets if k not in PARAMETER_SETS]
        if unknown:
            rule = "parameter sets"
            raise ValueError(f"{where}: {invalid('top-level keys', unknown, rule, PARAMETER_SETS)}")
        for key in PARAMETER_SETS:
            if not isinstance(sets.get(key) or {}, dict):
                raise ValueError(
                    f"{where}: {invalid(key, sets[key], 'a mapping of parameter: value')}"
                )
        defined = template_parameters(self.template)
        for key in PARAMETER_SETS:
            wrong = [k for k in sets.get(key) or {} if k not in defined]
            if wrong:
                rule = f"parameters that {self.template.name}'s parameters cell defines"
                raise ValueError(f"{where}: {invalid(f'{key} keys', wrong, rule, defined)}")
        values = dict(sets.get("default") or {})
        if parameter_set == "full":
            values.update(sets.get("full") or {})
        return values

    def inputs_hash(self, parameter_set: str = "default") -> str:
        """Hash of everything the executed notebook depends on."""
        digest = hashlib.sha256(parameter_set.encode())
        files = [self.template, self.parameters, *sorted(PACKAGE.rglob("*.py"))]
        if self.text is not None:
            files.append(self.text)
        files.extend(self.data)
        for path in files:
            digest.update(path.relative_to(ROOT).as_posix().encode())
            digest.update(path.read_bytes())
        return digest.hexdigest()[:16]


def template_parameters(template: Path) -> list[str]:
    """The names the template's `parameters` cell assigns (what papermill may override)."""
    import ast

    cells = json.loads(template.read_text(encoding="utf-8"))["cells"]
    names: list[str] = []
    for cell in cells:
        if cell["cell_type"] == "code" and "parameters" in cell["metadata"].get("tags", []):
            source = "".join(cell["source"])
            for node in ast.parse(source).body:
                targets = (
                    node.targets
                    if isinstance(node, ast.Assign)
                    else ([node.target] if isinstance(node, ast.AnnAssign) else [])
                )
                for target in targets:
                    for leaf in ast.walk(target):
                        if isinstance(leaf, ast.Name):
                            names.append(leaf.id)
    return list(dict.fromkeys(names))


def load_chapters(manifest: Path = CHAPTERS / "book.yaml") -> list[Chapter]:
    entries = yaml.safe_load(manifest.read_text())["chapters"]
    base = manifest.parent
    return [
        Chapter(
            name=entry["name"],
            notebook=base / entry["notebook"],
            template=base / entry["template"],
            parameters=base / entry["parameters"],
            text=base / entry["text"] if entry.get("text") else None,
            data=tuple(
                sorted(path for pattern in entry.get("data", []) for path in ROOT.glob(pattern))
            ),
        )
        for entry in entries
    ]


def stored_hash(notebook: Path) -> str | None:
    if not notebook.exists():
        return None
    metadata = json.loads(notebook.read_text()).get("metadata", {})
    return metadata.get("rnnopt", {}).get("inputs_hash")


def strip_volatile(nb: dict[str, Any], inputs_hash: str, parameter_set: str) -> dict[str, Any]:
    """Remove what changes from one execution to the next and record what the outputs came from."""
    nb = copy.deepcopy(nb)
    papermill = nb["metadata"].get("papermill", {})
    for key in ("start_time", "end_time", "duration", "input_path", "output_path", "exception"):
        papermill.pop(key, None)
    nb["metadata"]["rnnopt"] = {"inputs_hash": inputs_hash, "parameter_set": parameter_set}
    for index, cell in enumerate(nb["cells"]):
        cell["id"] = f"cell-{index}"  # papermill gives the injected cell a random id
        cell["metadata"].pop("papermill", None)
        cell["metadata"].pop("execution", None)
        if cell["metadata"].get("tags") == []:
            del cell["metadata"]["tags"]
    return nb


def parameters_cell(
    chapter: Chapter, parameter_set: str, parameters: dict[str, Any], index: int
) -> dict[str, Any]:
    """The page's last cell: the parameters papermill injected, as a table (Markdown, so it is
    text on the page and nothing nbval executes)."""

    def cell(value: Any) -> str:
        return "`" + repr(value).replace("|", "\\|") + "`"

    rows = "\n".join(f"| `{k}` | {cell(v)} |" for k, v in parameters.items()) or "| — | — |"
    where = (
        chapter.parameters.relative_to(ROOT)
        if chapter.parameters.is_relative_to(ROOT)
        else chapter.parameters
    )
    template = (
        chapter.template.relative_to(ROOT)
        if chapter.template.is_relative_to(ROOT)
        else chapter.template
    )
    source = (
        f"## Parameters\n\nThis page was executed by `rnnopt book {chapter.name}` from "
        f"`{template.as_posix()}` with the `{parameter_set}` set of `{where.as_posix()}`; any "
        f"parameter not listed keeps the template's default.\n\n"
        f"| parameter | value |\n|---|---|\n{rows}"
    )
    return {"cell_type": "markdown", "id": f"cell-{index}", "metadata": {}, "source": source}


def execute(chapter: Chapter, parameter_set: str = "default", out_dir: Path | None = None) -> Path:
    """Run the chapter's template with papermill in the notebook's folder; return the output."""
    import nbformat
    import papermill

    output = chapter.notebook if out_dir is None else out_dir / chapter.notebook.name
    parameters = chapter.parameter_values(parameter_set)
    os.environ.update(KERNEL_ENV)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / output.name
        papermill.execute_notebook(
            str(chapter.template),
            str(raw),
            parameters=parameters,
            cwd=str(chapter.notebook.parent),
            progress_bar=False,
            kernel_name="python3",
        )
        nb = strip_volatile(
            json.loads(raw.read_text()), chapter.inputs_hash(parameter_set), parameter_set
        )
    for cell in nb["cells"]:
        tags = cell["metadata"].setdefault("tags", [])
        # The template's defaults would only repeat the values injected after them.
        if "parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")  # machinery: the page lists the values at its end
    nb["cells"].append(parameters_cell(chapter, parameter_set, parameters, len(nb["cells"])))
    if chapter.text is not None:
        # A page's title must be a Markdown cell (a heading in a cell's *output* is not a section
        # title to Sphinx), and papermill fills only code cells: the text's first line goes in.
        title = chapter.text.read_text(encoding="utf-8").splitlines()[0]
        for cell in nb["cells"]:
            if "chapter-title" in cell["metadata"].get("tags", []):
                cell["source"] = title
    output.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(output, nbformat.writes(nbformat.from_dict(nb)) + "\n")
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rnnopt.book", description=__doc__.split("\n")[0]
    )
    parser.add_argument("chapters", nargs="*", help="chapter names (default: all)")
    parser.add_argument("--set", dest="parameter_set", default="default", choices=PARAMETER_SETS)
    parser.add_argument("--out", type=Path, help="write executed notebooks here, not chapters/")
    parser.add_argument("--force", action="store_true", help="execute even if up to date")
    parser.add_argument("--list", action="store_true", help="list chapters and whether stale")
    args = parser.parse_args(argv)

    chapters = load_chapters()
    names = [c.name for c in chapters]
    unknown = [n for n in args.chapters if n not in names]
    if unknown:
        parser.error(invalid("chapters", unknown, "chapter names", names))
    selected = [c for c in chapters if not args.chapters or c.name in args.chapters]
    try:  # before any chapter runs: its outputs, or its parameters, would be wasted work
        if args.out is not None:
            check_output_dir("--out", args.out)
        if not args.list:
            for chapter in selected:
                if chapter.parameters.exists() and chapter.template.exists():
                    chapter.parameter_values(args.parameter_set)
    except ValueError as err:
        parser.error(str(err))
    in_place = args.out is None and args.parameter_set == "default"
    total = time.perf_counter()
    for chapter in selected:
        missing = [
            p
            for p in (chapter.template, chapter.parameters, chapter.text)
            if p is not None and not p.exists()
        ]
        if missing:
            names = ", ".join(str(p.relative_to(ROOT)) for p in missing)
            if args.list:
                print(f"{chapter.name:20s} missing {names}")
                continue
            parser.error(f"chapter {chapter.name!r} cannot be executed: missing {names}")
        fresh = stored_hash(chapter.notebook) == chapter.inputs_hash(args.parameter_set)
        if args.list:
            print(
                f"{chapter.name:20s} {chapter.parameters.relative_to(ROOT)}  "
                f"{'up to date' if fresh else 'stale'}"
            )
            continue
        if fresh and in_place and not args.force:
            print(f"[book] {chapter.name}: up to date", flush=True)
            continue
        print(
            f"[book] {chapter.name}: executing {chapter.template.relative_to(ROOT)} "
            f"({args.parameter_set} parameters) ...",
            flush=True,
        )
        start = time.perf_counter()
        output = execute(
            chapter,
            args.parameter_set,
            None if in_place else args.out or ROOT / "_build" / args.parameter_set,
        )
        print(
            f"[book] {chapter.name}: done in {time.perf_counter() - start:.0f} s -> {output}",
            flush=True,
        )
    if not args.list:
        print(f"[book] all chapters ready in {time.perf_counter() - total:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
