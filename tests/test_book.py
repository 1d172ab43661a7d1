"""The executed chapters are what their templates and parameter files produce, and nothing volatile
is stored in them (so re-executing an unchanged chapter gives the same bytes)."""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest
import yaml

from rnnopt.book import CHAPTERS, ROOT, load_chapters, strip_volatile

BOOK = load_chapters()
VOLATILE_NOTEBOOK_KEYS = {"start_time", "end_time", "duration", "input_path", "output_path"}


def executed(chapter) -> dict:
    return json.loads(chapter.notebook.read_text())


def test_every_chapter_in_the_manifest_is_in_the_table_of_contents():
    toc = (ROOT / "_toc.yml").read_text()
    for chapter in BOOK:
        assert f"chapters/{chapter.notebook.stem}" in toc, chapter.name


@pytest.mark.parametrize("chapter", BOOK, ids=[c.name for c in BOOK])
def test_chapter_was_executed_by_papermill_with_the_parameters_its_yaml_names(chapter):
    nb = executed(chapter)
    assert nb["metadata"]["papermill"]["parameters"] == chapter.parameter_values("default")
    assert nb["metadata"]["rnnopt"]["parameter_set"] == "default"
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1
    # Machinery stays off the page: the injected cell is removed from it, and the values are
    # listed, as text, in the page's last cell.
    assert "remove-cell" in injected[0]["metadata"]["tags"]
    last = nb["cells"][-1]
    listed = "".join(last["source"])
    assert last["cell_type"] == "markdown" and listed.startswith("## Parameters")
    for key in chapter.parameter_values("default"):
        assert f"| `{key}` |" in listed


@pytest.mark.parametrize("chapter", BOOK, ids=[c.name for c in BOOK])
def test_chapter_is_up_to_date_with_its_template_parameters_and_rnnopt(chapter):
    stored = executed(chapter)["metadata"]["rnnopt"]["inputs_hash"]
    assert stored == chapter.inputs_hash("default"), (
        f"{chapter.notebook.name} is stale: run `make book` (python -m rnnopt.book {chapter.name})"
    )


@pytest.mark.parametrize("chapter", BOOK, ids=[c.name for c in BOOK])
def test_chapter_stores_no_volatile_metadata(chapter):
    nb = executed(chapter)
    assert not VOLATILE_NOTEBOOK_KEYS & set(nb["metadata"]["papermill"])
    for index, cell in enumerate(nb["cells"]):
        assert cell["id"] == f"cell-{index}"
        assert "papermill" not in cell["metadata"] and "execution" not in cell["metadata"]
        for output in cell.get("outputs", []):
            assert output.get("name") != "stderr", f"stderr in cell {index}: {output.get('text')}"
            assert "image/svg+xml" not in output.get("data", {}), "figures must be PNG"


@pytest.mark.parametrize("chapter", BOOK, ids=[c.name for c in BOOK])
def test_template_has_one_parameters_cell_followed_by_a_code_cell(chapter):
    cells = nbformat.read(chapter.template, as_version=4).cells
    tagged = [i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert cells[tagged[0] + 1].cell_type == "code"


TEMPLATES = sorted({c.template for c in BOOK})
MAX_TEMPLATE_CODE_LINES = 250  # more belongs in rnnopt, where it is tested and linted


@pytest.mark.parametrize("template", TEMPLATES, ids=[t.stem for t in TEMPLATES])
def test_every_template_parameter_has_a_type_and_a_meaning(template):
    # `papermill --help-notebook` and the Reproducing page read the type from the annotation
    # and the meaning from the comment that ends the parameter's line.
    import papermill

    inferred = papermill.inspect_notebook(str(template))
    untyped = [n for n, p in inferred.items() if p["inferred_type_name"] in ("None", "")]
    unexplained = [n for n, p in inferred.items() if not p["help"].split("#")[0].strip()]
    assert inferred and not untyped and not unexplained, (untyped, unexplained)


@pytest.mark.parametrize("template", TEMPLATES, ids=[t.stem for t in TEMPLATES])
def test_template_holds_at_most_250_lines_of_code(template):
    cells = nbformat.read(template, as_version=4).cells
    lines = [
        line
        for cell in cells
        if cell.cell_type == "code"
        for line in cell.source.splitlines()
        if line.strip()
    ]
    assert len(lines) <= MAX_TEMPLATE_CODE_LINES, f"{template.name}: {len(lines)} code lines"


@pytest.mark.parametrize("chapter", BOOK, ids=[c.name for c in BOOK])
def test_parameter_files_have_a_default_and_a_full_set_of_known_parameters(chapter):
    sets = yaml.safe_load(chapter.parameters.read_text())
    assert set(sets) == {"default", "full"}
    cells = nbformat.read(chapter.template, as_version=4).cells
    source = next(c.source for c in cells if "parameters" in c.metadata.get("tags", []))
    declared = {
        line.split("=")[0].split(":")[0].strip()
        for line in source.splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    }
    for name in ("default", "full"):
        unknown = set(sets[name] or {}) - declared
        assert not unknown, f"{chapter.parameters.name} [{name}] sets undeclared {unknown}"


def test_strip_volatile_is_deterministic_and_idempotent():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_markdown_cell("# t")]
    nb.cells[0].metadata["papermill"] = {"duration": 1.5, "start_time": "2026-01-01"}
    nb.metadata["papermill"] = {
        "start_time": "now",
        "end_time": "later",
        "duration": 2.0,
        "parameters": {"a": 1},
    }
    once = strip_volatile(nb, "abc", "default")
    twice = strip_volatile(once, "abc", "default")
    assert once == twice
    assert once["metadata"]["papermill"] == {"parameters": {"a": 1}}
    assert [c["id"] for c in once["cells"]] == ["cell-0", "cell-1"]
    assert "papermill" not in once["cells"][0]["metadata"]


def test_the_book_command_reports_every_chapter_up_to_date():
    listing = subprocess.run(
        [sys.executable, "-m", "rnnopt.book", "--list"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for chapter in BOOK:
        assert f"{chapter.name}" in listing
    assert "stale" not in listing


def test_the_book_command_refuses_an_unknown_chapter_with_the_valid_names():
    result = subprocess.run(
        [sys.executable, "-m", "rnnopt.book", "nope"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "nope" in result.stderr and "sgd" in result.stderr


# A bad value for each template: the chapter must stop in its first cell after the parameters,
# with an error that names the parameter and the valid choices.
BAD_PARAMETERS = {
    "_templates/algorithm.ipynb": ({"optimizer": "adagrad"}, ["optimizer", "adagrad", "adam"]),
    "_templates/training-rnns.ipynb": ({"threads": 0}, ["threads", "0"]),
    "_templates/reproducing.ipynb": ({"threads": -1}, ["threads", "-1"]),
    "_templates/comparison.ipynb": ({"threads": 0}, ["threads", "0"]),
    "_templates/claims.ipynb": ({"threads": 0}, ["threads", "0"]),
    "_templates/theory.ipynb": ({"threads": 0}, ["threads", "0"]),
    "_templates/beyond.ipynb": ({"threads": 0}, ["threads", "0"]),
}


@pytest.mark.parametrize("template", sorted(BAD_PARAMETERS))
def test_a_bad_parameter_fails_in_the_validation_cell_naming_it(template, tmp_path):
    import papermill

    parameters, expected = BAD_PARAMETERS[template]
    with pytest.raises(papermill.PapermillExecutionError) as failure:
        papermill.execute_notebook(
            str(CHAPTERS / template),
            str(tmp_path / "out.ipynb"),
            parameters=parameters,
            cwd=str(CHAPTERS),
            progress_bar=False,
            kernel_name="python3",
        )
    message = str(failure.value)
    assert "ValueError" in message
    for word in expected:
        assert word in message
    # The failing cell is the code cell right after the injected parameters (papermill also
    # inserts Markdown banners around an error: only code cells count).
    code = [
        c
        for c in nbformat.read(tmp_path / "out.ipynb", as_version=4).cells
        if c.cell_type == "code"
    ]
    injected = next(
        i for i, c in enumerate(code) if "injected-parameters" in c.metadata.get("tags", [])
    )
    failed = next(
        i
        for i, c in enumerate(code)
        if any(o.get("output_type") == "error" for o in c.get("outputs", []))
    )
    assert failed == injected + 1


HIDDEN_INPUT = {"remove-input", "remove-cell", "hide-input", "hide-cell"}


def visible_code_lines(nb: dict) -> int:
    return sum(
        len(
            cell["source"].splitlines()
            if isinstance(cell["source"], str)
            else "".join(cell["source"]).splitlines()
        )
        for cell in nb["cells"]
        if cell["cell_type"] == "code" and not HIDDEN_INPUT & set(cell["metadata"].get("tags", []))
    )


@pytest.mark.parametrize("chapter", [c for c in BOOK if c.text is not None], ids=lambda c: c.name)
def test_an_algorithm_chapter_shows_at_most_40_lines_of_code(chapter):
    # What a reader sees are the few package calls that teach; the machinery is hidden.
    assert visible_code_lines(executed(chapter)) <= 40


@pytest.mark.parametrize("chapter", [c for c in BOOK if c.text is not None], ids=lambda c: c.name)
def test_an_algorithm_chapter_ends_with_executed_exercises_and_its_provenance(chapter):
    outputs = [
        "".join(o.get("data", {}).get("text/markdown", ""))
        for c in executed(chapter)["cells"]
        for o in c.get("outputs", [])
    ]
    solutions = [o for o in outputs if o.startswith(":::{admonition} Solution")]
    assert 2 <= len(solutions) <= 3
    assert all("Output:" in s and "```text\n\n```" not in s for s in solutions)
    assert any(o.startswith("Executed by papermill") for o in outputs[-3:])


def figure_outputs(nb: dict) -> list[dict]:
    return [
        o for c in nb["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})
    ]


@pytest.mark.parametrize("chapter", BOOK, ids=lambda c: c.name)
def test_every_figure_is_stored_with_its_number_and_caption(chapter):
    # rnnopt.plots.show stores a figure as a MyST figure directive (name, caption) beside the PNG.
    for output in figure_outputs(executed(chapter)):
        directive = "".join(output["data"].get("text/markdown", ""))
        assert directive.startswith("```{figure} data:image/png;base64,"), (
            f"{chapter.name}: a figure drawn without rnnopt.plots.show has no caption"
        )
        assert "\n:name: fig-" in directive
