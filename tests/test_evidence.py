"""The evidence tier's runner, and the stored tier itself (data/evidence/).

The runner is checked end to end on a tiny tier (seconds): tuning widens a grid whose best rate
is on an edge, the chosen rate is evaluated on fresh seeds, and a rerun resumes without
recomputing. The stored tier is checked in two ways: every stage directory holds the runs its
spec names, and a *random* sample of stored runs — at least one per stage, drawn afresh on every
test run — is replayed for its first steps, which must give the same per-step loss (training is
deterministic, so a prefix is as telling as the whole run).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_tier, tiny_study

from rnnopt import evidence, executors, protocol
from rnnopt.sweep import SpecError, expand, load_results, load_run, load_spec
from rnnopt.train import run

TINY = tiny_study()


@pytest.fixture(scope="module")
def tiny_tier(tmp_path_factory):
    return make_tier(tmp_path_factory.mktemp("tier"), TINY)


def test_tuning_widens_a_grid_until_the_best_rate_is_interior(tiny_tier):
    record = json.loads((tiny_tier / "out" / "tiny" / "sgd" / "tuned.json").read_text())
    grid = record["grid"]
    assert len(grid) > 2 and record["extensions"] >= 1  # the 2-rate start was an edge
    assert record["edge"] is None and grid[0] < record["lr"] < grid[-1]
    errors = {float(k): v for k, v in record["tuning_errors"].items()}
    assert record["lr"] == min(errors, key=errors.get)


def test_the_chosen_rate_runs_on_evaluation_seeds_no_tuning_run_used(tiny_tier):
    out = tiny_tier / "out" / "tiny" / "adam"
    record = json.loads((out / "tuned.json").read_text())
    tune_rows, eval_rows = load_results(out / "tune"), load_results(out / "eval")
    assert {r["seed"] for r in tune_rows} == {0, 1}
    assert sorted(r["seed"] for r in eval_rows) == [100, 101, 102]
    assert {r["lr"] for r in eval_rows} == {record["lr"]}


def test_a_rerun_resumes_and_recomputes_nothing(tiny_tier):
    runs = sorted((tiny_tier / "out").rglob("runs/*.json"))
    stamps = [p.stat().st_mtime_ns for p in runs]
    # A stage's provenance records the machine that made its runs: a resume that runs nothing
    # (here, on what the record says is another CPU) leaves it as it was.
    # (The tuning stage's grid was widened: the search reruns it in steps, each running nothing.)
    records = [tiny_tier / "out" / "tiny" / "sgd" / s / "provenance.json" for s in ("tune", "eval")]
    made = {}
    for record in records:
        made[record] = {**json.loads(record.read_text()), "cpu": "elsewhere"}
        record.write_text(json.dumps(made[record], indent=1) + "\n")
    evidence.run_evidence(studies_dir=tiny_tier / "specs", out_root=tiny_tier / "out", workers=1)
    assert [p.stat().st_mtime_ns for p in runs] == stamps
    assert {r: json.loads(r.read_text()) for r in records} == made


def test_a_resume_onto_a_wider_grid_of_stored_runs_counts_them_and_keeps_the_machine(
    tiny_tier, tmp_path
):
    # A grid widened in one session, its runs committed before its record was rewritten: the
    # next resume runs nothing, and the record must count the spec's runs, not the old grid's.
    shutil.copytree(tiny_tier, tmp_path / "tier")
    record = tmp_path / "tier" / "out" / "tiny" / "sgd" / "tune" / "provenance.json"
    old = json.loads(record.read_text())
    record.write_text(json.dumps({**old, "runs": 2, "cpu": "elsewhere"}, indent=1) + "\n")
    evidence.run_evidence(
        studies_dir=tmp_path / "tier" / "specs", out_root=tmp_path / "tier" / "out", workers=1
    )
    now = json.loads(record.read_text())
    assert now["runs"] == len(load_results(record.parent)) > 2 and now["cpu"] == "elsewhere"


def test_each_run_records_the_cpu_and_instruction_set_it_was_made_with(tiny_tier):
    for path in (tiny_tier / "out").rglob("runs/*.json"):
        made = json.loads(path.read_text())["provenance"]
        assert made["cpu_capability"] == torch.backends.cpu.get_cpu_capability() and made["cpu"]


def test_every_stage_is_an_ordinary_sweep_that_rnnopt_sweep_can_rerun(tiny_tier):
    stage = tiny_tier / "out" / "tiny" / "sgd" / "tune"
    assert [c.run_id for c in expand(load_spec(stage / "spec.yaml"))] == [
        r["run_id"] for r in load_results(stage)
    ]
    assert json.loads((stage / "provenance.json").read_text())["runs"] == len(load_results(stage))


# --- Staging: a tier run in a store of its own, copied here for a commit --------------------


def _files(root: Path) -> dict[Path, str]:
    return {
        p.relative_to(root): p.read_text()
        for p in root.rglob("*")
        if p.is_file() and p.name != "README.md"
    }


def _strip_machine(path: Path) -> None:  # as runs stored before runs recorded their machine
    record = json.loads(path.read_text())
    for key in ("cpu", "cpu_capability"):
        record["provenance"].pop(key)
    path.write_text(json.dumps(record))


def test_staging_copies_a_store_into_the_tier_and_keeps_the_runs_already_here(tiny_tier, tmp_path):
    from rnnopt import tier

    store, here = tiny_tier / "out", tmp_path / "here"
    shutil.copytree(store, here)
    shutil.rmtree(here / "tiny" / "adam")  # not staged yet
    kept = sorted((here / "tiny" / "sgd" / "eval" / "runs").glob("*.json"))[0]
    kept.write_text(kept.read_text().replace('"status"', '"status" ', 1))  # a different copy
    counts = tier.stage(store, here, tiny_tier / "specs")
    assert counts["runs"] == len(list((store / "tiny" / "adam").rglob("runs/*.json"))) > 0
    assert counts["runs kept"] == 1
    staged, want = _files(here), _files(store)
    assert staged.pop(kept.relative_to(here)) != want.pop(kept.relative_to(here))
    assert staged == want
    assert "| tiny |" in (here / "README.md").read_text()  # the cost table of this tier
    assert tier.stage(store, here, tiny_tier / "specs")["runs"] == 0  # staged twice: the same


def test_staging_keeps_the_recorded_machine_of_runs_that_record_none(tiny_tier, tmp_path):
    # Runs stored before runs recorded their machine take it from their stage's provenance:
    # staging a resumed stage made on another machine must leave them their own.
    from rnnopt import tier

    store, here = tmp_path / "store", tmp_path / "here"
    shutil.copytree(tiny_tier / "out", store)
    stage = Path("tiny") / "sgd" / "eval"
    runs = sorted((store / stage / "runs").glob("*.json"))
    for path in runs[:-1]:
        _strip_machine(path)
    shutil.copytree(store, here)
    (here / stage / "runs" / runs[-1].name).unlink()  # the one run the store made since
    record = json.loads((here / stage / "provenance.json").read_text())
    (here / stage / "provenance.json").write_text(
        json.dumps({**record, "cpu": "elsewhere", "cpu_capability": "DEFAULT"})
    )
    tier.stage(store, here, tiny_tier / "specs")
    staged = json.loads((here / stage / "provenance.json").read_text())
    assert (staged["cpu"], staged["cpu_capability"]) == ("elsewhere", "DEFAULT")
    assert staged == {**json.loads((store / stage / "provenance.json").read_text()), **{
        "cpu": "elsewhere", "cpu_capability": "DEFAULT"}}  # fmt: skip


def test_staging_leaves_the_record_of_a_stage_that_got_no_new_run(tiny_tier, tmp_path):
    from rnnopt import tier

    store, here = tmp_path / "store", tmp_path / "here"
    shutil.copytree(tiny_tier / "out", store)
    record = store / "tiny" / "sgd" / "tune" / "provenance.json"
    shutil.copytree(store, here)
    record.write_text(record.read_text().replace('"runs"', '"runs"  ', 1))  # rewritten there
    tier.stage(store, here, tiny_tier / "specs")
    assert (here / record.relative_to(store)).read_text() != record.read_text()


def test_staging_only_the_runs_changes_no_record(tiny_tier, tmp_path):
    from rnnopt import tier

    store, here = tiny_tier / "out", tmp_path / "here"
    shutil.copytree(store, here)
    shutil.rmtree(here / "tiny" / "adam" / "eval")
    records = {p: t for p, t in _files(here).items() if p.parent.name != "runs"}
    counts = tier.stage(store, here, tiny_tier / "specs", runs_only=True)
    assert counts["runs"] == len(list((store / "tiny" / "adam" / "eval" / "runs").glob("*")))
    assert {p: t for p, t in _files(here).items() if p.parent.name != "runs"} == records


def test_staging_refuses_a_store_that_is_missing_or_the_tier_itself(tmp_path):
    from rnnopt import tier

    with pytest.raises(ValueError, match=r"store='.*nowhere' is not a directory: expected"):
        tier.stage(tmp_path / "nowhere", tmp_path)
    with pytest.raises(ValueError, match=r"is the tier's own root: nothing to stage"):
        tier.stage(tmp_path, tmp_path)


def test_a_study_with_a_rate_off_the_lattice_is_refused_naming_it(tmp_path):
    (tmp_path / "bad.yaml").write_text(TINY.replace("from: 0.1,", "from: 0.12,"))
    with pytest.raises(
        ValueError, match=r"variants\.sgd\.lr: lr=0\.12 is invalid: expected a rate on the"
    ):
        evidence.load_study(tmp_path / "bad.yaml")


def test_a_study_with_an_unknown_key_lists_the_valid_ones(tmp_path):
    (tmp_path / "bad.yaml").write_text(TINY + "budget: 3\n")
    with pytest.raises(
        ValueError, match=r"keys=\['budget'\] is invalid: .*; valid choices: 'task'"
    ):
        evidence.load_study(tmp_path / "bad.yaml")


# --- The stored tier ------------------------------------------------------------------------

QUICK_DIR = evidence.ROOT / "data" / "quick"  # the quick tier of `rnnopt evaluate`
STAGES = sorted(
    p.parent for root in (evidence.EVIDENCE_DIR, QUICK_DIR) for p in root.glob("*/*/*/results.csv")
)
REPLAY_SECONDS = 170  # the whole replay stays within 3 minutes


def _stage_id(stage: Path) -> str:
    return stage.relative_to(evidence.ROOT / "data").as_posix()


@pytest.mark.skipif(not STAGES, reason="no stored evidence under data/evidence")
@pytest.mark.parametrize("stage", STAGES, ids=_stage_id)
def test_each_stored_stage_holds_only_runs_of_its_spec(stage):
    expected = [c.run_id for c in expand(load_spec(stage / "spec.yaml"))]
    stored = [r["run_id"] for r in load_results(stage)]
    assert stored == [i for i in expected if i in stored]  # in grid order, nothing foreign
    for run_id in stored:
        assert (stage / "runs" / f"{run_id}.json").exists()
    if (stage / "provenance.json").exists():  # written once the stage finished
        assert stored == expected
        assert json.loads((stage / "provenance.json").read_text())["runs"] == len(expected)


def test_each_finished_variant_is_tuned_by_the_protocol():
    records = sorted(
        p for root in (evidence.EVIDENCE_DIR, QUICK_DIR) for p in root.glob("*/*/tuned.json")
    )
    if not records:
        pytest.skip("no finished variant under data/evidence")
    for path in records:
        record = json.loads(path.read_text())
        specs = (
            evidence.STUDIES_DIR
            if QUICK_DIR not in path.parents
            else evidence.ROOT / "data" / "specs" / "quick"
        )
        study = evidence.load_study(specs / f"{record['study']}.yaml")
        assert record["evaluation_seeds"] == list(study.evaluation_seeds)
        assert len(record["evaluation_seeds"]) >= 10
        assert not set(record["evaluation_seeds"]) & set(record["tuning_seeds"])
        if "rate_from" in record:  # not tuned here (amendment 15): the rate another study chose
            source = json.loads((path.parent.parent.parent / record["rate_from"] / record[
                "variant"] / "tuned.json").read_text())  # fmt: skip
            assert record["lr"] == source["lr"] and record["grid"] == [], path
            assert record["tuning_seeds"] == [] and not (path.parent / "tune").exists()
            continue
        indices = [protocol.lattice_index(lr) for lr in record["grid"]]
        assert indices == list(range(indices[0], indices[0] + len(indices)))  # 1/3-decade steps
        interior = record["edge"] is None
        flat = record["edge"] == "flat"
        limit = protocol.MAX_FLAT_EXTENSIONS if flat else protocol.MAX_EXTENSIONS
        assert interior or record["extensions"] == limit, path
        eval_rows = load_results(path.parent / "eval")
        for lr in record["evaluated_rates"]:
            seeds = sorted(r["seed"] for r in eval_rows if r["lr"] == lr)
            assert seeds == sorted(record["evaluation_seeds"]), (path, lr)


def test_the_tier_is_complete():
    names = evidence.study_names()
    missing = [
        f"{n}/{v.label}"
        for n in names
        for v in evidence.load_study(evidence.STUDIES_DIR / f"{n}.yaml").variants
        if not any(
            (evidence.EVIDENCE_DIR / n / v.label / record).exists()
            for record in ("tuned.json", "skipped.json")  # finished, or not run and why
        )
    ]
    if missing:
        pytest.skip(
            f"the tier is still being computed: {len(missing)} variants to go "
            f"(make evidence resumes it), e.g. {missing[:3]}"
        )


def _replay_prefix(stage: Path, run_id: str) -> tuple[list[float], list[float], bool]:
    """Replay a stored run for its first logged block: (stored losses, replayed losses, whether
    the stored run diverged within the block, in which case the replay must have too)."""
    stored = load_run(stage, run_id)
    config, history = stored["config"], stored["history"]
    block = history.get("log_every", 1)
    steps = min(history.get("step_count") or len(history["loss"]), block)
    train = {**config["train"], "steps": steps}
    again = run(
        task=config["task"],
        model=config["model"],
        optimizer=config["optimizer"],
        train_options=train,
        seed=config["seed"],
        threads=1,
    )
    assert again.eval_loss[0] == pytest.approx(history["eval_loss"][0], rel=1e-5), run_id
    want = history["loss"][: math.ceil(steps / block)]
    if stored["status"] == "diverged" and history.get("diverged_step", steps + 1) <= steps:
        assert again.diverged, f"{stage}/{run_id}: stored diverged, replayed did not"
        return want, want, True
    return want, again.loss[: len(want)], False


# A first block whose mean loss passed 10 times the untrained network's has blown up: rounding
# differences grow without bound there (stored 1.0e5, replayed 6.6e4 on another CPU).
EXPLODED = 10
# torch's kernel sets, and MKL's instruction sets, by the capability provenance.json records
MKL_INSTRUCTIONS = {"DEFAULT": "SSE4_2", "AVX2": "AVX2", "AVX512": "AVX512"}


def _replaying_as(capability: str, runs: list[tuple[Path, str]]) -> subprocess.Popen:
    """The same replays, started in a process whose torch and MKL kernels are restricted to
    the instruction set `capability` (as far as this CPU has it); `_replayed` reads them."""
    code = (
        "import json, sys; sys.path.insert(0, 'tests'); from pathlib import Path; "
        "from test_evidence import _replay_prefix; "
        "runs = json.loads(sys.stdin.read()); "
        "print(json.dumps([_replay_prefix(Path(s), r)[1] for s, r in runs]))"
    )
    env = {
        **os.environ,
        "ATEN_CPU_CAPABILITY": capability.lower(),
        "MKL_ENABLE_INSTRUCTIONS": MKL_INSTRUCTIONS.get(capability, capability),
        "OMP_NUM_THREADS": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=evidence.ROOT,
    )
    process.stdin.write(json.dumps([[str(s), r] for s, r in runs]))
    process.stdin.close()
    return process


def _replayed(process: subprocess.Popen) -> list[list[float]]:
    out, err = process.stdout.read(), process.stderr.read()
    assert process.wait() == 0, err
    return json.loads(out.strip().splitlines()[-1])


def _stored_machine(stage: Path, run_id: str) -> dict:
    """The CPU and instruction set the run was made with: its own record, or (runs stored before
    runs recorded them) its stage's, or, for a stage not finished, its study's other stage's."""
    own = load_run(stage, run_id).get("provenance", {})
    if own.get("cpu_capability") is not None:
        return own
    record = stage / "provenance.json"
    if not record.exists():  # unfinished: look at the stage's study's other stage
        records = list(stage.parent.glob("*/provenance.json"))
        if not records:
            return {}
        record = records[0]
    return json.loads(record.read_text())


@pytest.mark.skipif(not STAGES, reason="no stored evidence under data/evidence")
def test_a_random_sample_of_stored_runs_replays_to_the_same_losses():
    # On a CPU like the one that stored a run (executors.made_here: the same model and
    # instruction set) the replay must give the same bits. On another CPU float32
    # rounding differs (other kernels, in torch and in MKL), and a run at a rate near or past
    # its stability limit grows that difference within one block: an SGD run that blew up
    # stored 4.3e5 and replayed 4.6e5. A run blown up within its block (EXPLODED) must blow up
    # again. Any other is replayed twice more, with this machine's kernels restricted to the
    # stored CPU's instruction set and to the generic ones, and must agree with the store to
    # 5 %, or, if wider, to 4 times the spread of its three replays here: how far rounding
    # alone moves that run (over 219 runs stored on another CPU, the widest gap beyond that
    # spread was 2.7 %).
    chooser = random.Random(int.from_bytes(os.urandom(8), "little"))  # a fresh sample each time
    start, replayed, elsewhere = time.perf_counter(), [], {}
    for stage in chooser.sample(STAGES, len(STAGES)):
        rows = load_results(stage)
        if not rows:
            continue
        row = chooser.choice(rows)
        want, got, diverged = _replay_prefix(stage, row["run_id"])
        made = _stored_machine(stage, row["run_id"])
        if executors.made_here(made):
            assert got == want, f"{stage}/{row['run_id']}: the first block's losses differ"
        elif not diverged:
            runs = elsewhere.setdefault(str(made.get("cpu_capability")), [])
            runs.append((stage, row["run_id"], want, got))
        replayed.append(f"{_stage_id(stage)}/{row['run_id']}")
        if time.perf_counter() - start > REPLAY_SECONDS:
            pytest.fail(f"replaying took over {REPLAY_SECONDS} s after {len(replayed)} stages")
    for capability, runs in elsewhere.items():
        ids = [(stage, run_id) for stage, run_id, *_ in runs]
        started = [_replaying_as(capability, ids), _replaying_as("DEFAULT", ids)]  # side by side
        restricted, generic = (_replayed(p) for p in started)
        for (stage, run_id, want, got), *others in zip(runs, restricted, generic, strict=True):
            start_loss = load_run(stage, run_id)["history"]["eval_loss"][0]
            for w, g, *more in zip(want, got, *others, strict=True):
                if w > EXPLODED * start_loss:  # blown up: the same blow-up, not the same number
                    assert min(g, *more) > EXPLODED * start_loss, (stage, run_id, w, g, more)
                    continue
                spread = max(map(abs, (g - more[0], g - more[1], more[0] - more[1])))
                assert abs(g - w) <= max(5e-2 * abs(w), 4 * spread), (
                    f"{stage}/{run_id}: stored {w}; replayed {g}, and {more} restricted to "
                    f"{capability} and to the generic kernels"
                )
    if time.perf_counter() - start > REPLAY_SECONDS:
        pytest.fail(f"replaying took over {REPLAY_SECONDS} s")
    elsewhere_count = sum(map(len, elsewhere.values()))
    print(f"replayed {len(replayed)} runs ({elsewhere_count} stored on another CPU): {replayed}")


def test_the_cost_report_times_a_study_whose_clipping_the_protocol_computes(tmp_path):
    from rnnopt import tier

    (tmp_path / "specs").mkdir()
    spec = TINY.replace("clip_grad_norm: 1.0", "clip_grad_norm: protocol")
    (tmp_path / "specs" / "tiny.yaml").write_text(spec)
    study = evidence.load_study(tmp_path / "specs" / "tiny.yaml")
    assert tier.seconds_per_step(study, steps=8) > 0
    rows, spent, projected = tier.cost_table(tmp_path / "specs", tmp_path / "out")
    assert rows[0][0] == "tiny" and spent == 0 and projected > 0


def test_a_study_not_started_is_projected_from_the_stored_step_times(tmp_path):
    # Step times measured on an idle machine (cost/steps.json) are used, not a timing taken
    # now beside other jobs; without the file and without measuring, the projection is unknown.
    from rnnopt import tier

    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "tiny.yaml").write_text(TINY)
    study = evidence.load_study(tmp_path / "specs" / "tiny.yaml")
    rows, _, projected = tier.cost_table(tmp_path / "specs", tmp_path / "out", measure=False)
    assert rows[0][3] == "nan" and math.isnan(projected)
    times = tier.measure_step_times(tmp_path / "specs", tmp_path / "out", steps=8)
    assert set(times) == {"tiny"} and times["tiny"] > 0
    path = tier.step_times_path(tmp_path / "out")
    path.write_text(json.dumps({"seconds_per_step": {"tiny": 0.5}}))
    rows, _, projected = tier.cost_table(tmp_path / "specs", tmp_path / "out", measure=False)
    runs = tier.expected_runs(study)
    assert rows[0][3] == f"{0.5 * study.train['steps']:.0f}"
    assert projected == pytest.approx(0.5 * study.train["steps"] * runs / 3600)
    # A study with the same task, model and batch takes the same step, so it shares the time;
    # another sequence length does not.
    (tmp_path / "specs" / "twice.yaml").write_text(TINY.replace("steps: 20,", "steps: 40,"))
    (tmp_path / "specs" / "longer.yaml").write_text(TINY.replace("seq_len: 5", "seq_len: 6"))
    rows, _, _ = tier.cost_table(tmp_path / "specs", tmp_path / "out", measure=False)
    per_run = {row[0]: row[3] for row in rows}
    assert per_run["twice"] == f"{0.5 * 40:.0f}" and per_run["longer"] == "nan"


def test_the_cost_report_projects_nothing_for_a_rung_the_ladder_rule_has_ruled_out(tmp_path):
    # tiny's runs never reach the adding criterion (MSE <= 0.01), so a rung above it will not
    # run: the report counts its variants as not run and projects no cost for them.
    from rnnopt import tier

    make_tier(tmp_path, TINY)
    rung = "only_if_solved: tiny\n" + TINY.replace("seq_len: 5", "seq_len: 6")
    (tmp_path / "specs" / "longer.yaml").write_text(rung)
    times = tier.step_times_path(tmp_path / "out")
    times.parent.mkdir(parents=True)
    times.write_text(json.dumps({"seconds_per_step": {"tiny": 0.5, "longer": 0.5}}))
    rows, _, _ = tier.cost_table(tmp_path / "specs", tmp_path / "out", measure=False)
    longer = next(r for r in rows if r[0] == "longer")
    assert longer[1] == "0/2 (2 not run)" and longer[2] == "0/0" and float(longer[5]) == 0


def test_the_cost_report_projects_a_grid_that_learned_nothing_at_its_widest(tmp_path):
    # SGD at rates far too small learns nothing in 20 steps: its search widens on both sides
    # as often as the protocol allows. Caught midway (no tuned.json yet), the grid is priced at
    # that widest size, not at its start plus the median widening of other grids.
    from rnnopt import tier

    spec = tiny_study(variants=("sgd",)).replace(
        "{from: 0.1, to: 0.215}", "{from: 1.0e-06, to: 2.15e-06}"
    )
    make_tier(tmp_path, spec)
    (tmp_path / "out" / "tiny" / "sgd" / "tuned.json").unlink()
    study = evidence.load_study(tmp_path / "specs" / "tiny.yaml")
    stored = tier._stored(tmp_path / "out", study, "sgd")
    assert stored.flat and not stored.finished
    # Priced as if only the starting grid's runs were stored: the widest grid's runs remain.
    early = dataclasses.replace(stored, cpu=stored.cpu[:4], tuning_rates=2)
    widest = tier.variant_runs(study, study.variant("sgd"), 2 + 4 * protocol.MAX_FLAT_EXTENSIONS)
    assert tier._left(study, study.variant("sgd"), early) == widest - 4
    learning = dataclasses.replace(early, flat=False)
    assert tier._left(study, study.variant("sgd"), learning) < widest - 4


def test_a_grid_around_another_study_starts_at_the_three_rates_centred_on_its_choice(tmp_path):
    # The neighbour and the study that starts from it run in one call: the runner holds the
    # second back until the first has chosen (it would otherwise find no tuned.json).
    spec = TINY.replace("{from: 0.1, to: 0.215}", "{around: tiny}").replace(
        "{from: 0.01, to: 0.0215}", "{around: tiny}"
    )
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "next.yaml").write_text("priority: 0\n" + spec)  # listed first
    make_tier(tmp_path, TINY)
    for variant in ("sgd", "adam"):
        chosen = json.loads((tmp_path / "out" / "tiny" / variant / "tuned.json").read_text())
        record = json.loads((tmp_path / "out" / "next" / variant / "tuned.json").read_text())
        k = protocol.lattice_index(chosen["lr"])
        start = [protocol.lr_lattice(i) for i in (k - 1, k, k + 1)]
        assert set(start) <= set(record["grid"])
        assert record["extensions"] > 0 or record["grid"] == start


def test_a_grid_around_a_study_not_finished_is_refused_naming_it(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY)
    (tmp_path / "next.yaml").write_text(TINY.replace("{from: 0.1, to: 0.215}", "{around: tiny}"))
    study = evidence.load_study(tmp_path / "next.yaml")
    with pytest.raises(
        ValueError, match=r"next/sgd takes its rates from the rate 'tiny' chose.*run tiny"
    ):
        evidence.starting_grid(study, study.variant("sgd"), tmp_path / "out")


def test_a_variant_at_another_studys_chosen_rate_is_evaluated_there_without_tuning(tmp_path):
    # lr: {chosen: STUDY} (amendment 15): no tuning runs; the evaluation seeds run at the rate
    # STUDY chose for the same variant, and the record says where the rate came from.
    from rnnopt import tier

    spec = (
        TINY.replace("{from: 0.1, to: 0.215}", "{chosen: tiny}")
        .replace("{from: 0.01, to: 0.0215}", "{chosen: tiny}")
        .replace("steps: 20,", "steps: 30,")
    )
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "longer.yaml").write_text("priority: 0\n" + spec)  # listed first
    make_tier(tmp_path, TINY)
    study = evidence.load_study(tmp_path / "specs" / "longer.yaml")
    for variant in ("sgd", "adam"):
        chosen = json.loads((tmp_path / "out" / "tiny" / variant / "tuned.json").read_text())
        root = tmp_path / "out" / "longer" / variant
        record = json.loads((root / "tuned.json").read_text())
        assert record["lr"] == chosen["lr"] and record["rate_from"] == "tiny"
        assert record["grid"] == [] and record["tuning_seeds"] == [] and record["edge"] is None
        assert not (root / "tune").exists()
        rows = load_results(root / "eval")
        assert sorted(r["seed"] for r in rows) == [100, 101, 102]
        assert {r["lr"] for r in rows} == {chosen["lr"]}
        assert {r["steps_done"] for r in rows} == {30}
        # what the cost report expects of it: the evaluation runs only
        assert tier.variant_runs(study, study.variant(variant)) == len(rows)


def test_a_variant_at_a_chosen_rate_evaluates_that_rate_only(tmp_path):
    spec = "evaluate: grid\n" + TINY.replace("{from: 0.1, to: 0.215}", "{chosen: tiny}")
    (tmp_path / "tiny.yaml").write_text(TINY)
    (tmp_path / "next.yaml").write_text(spec)
    with pytest.raises(SpecError, match=r"evaluate='grid' is invalid: expected 'best' with "
                       r"variants not tuned here \['sgd'\]"):  # fmt: skip
        evidence.load_study(tmp_path / "next.yaml")


def test_a_ladder_rung_skips_the_optimizers_that_failed_the_rung_below(tmp_path):
    # 20 steps solve nothing (MSE <= 0.01): every variant of the next rung is reported as not
    # run, with the reason, and read as such; none of its runs exists.
    from rnnopt import tier

    make_tier(tmp_path, TINY)
    assert not tier.eval_successes("tiny", "sgd", tmp_path / "out", tmp_path / "specs").any()
    rung = "only_if_solved: tiny\n" + TINY.replace("seq_len: 5", "seq_len: 6")
    make_tier(tmp_path, rung, name="longer")
    for variant in ("sgd", "adam"):
        record = json.loads((tmp_path / "out" / "longer" / variant / "skipped.json").read_text())
        assert "on no evaluation seed of tiny" in record["skipped"]
        with pytest.raises(tier.NotRun, match="longer/.*: not run"):
            tier.tuned_record("longer", variant, tmp_path / "out")
    assert not list((tmp_path / "out" / "longer").rglob("runs/*.json"))


def test_the_budget_the_runner_keeps_is_the_one_the_registration_states():
    import re

    from rnnopt import ledger_tables

    stated = re.search(r"budget is ([\d.]+) CPU-hours", ledger_tables.protocol_text("budget"))
    assert stated and float(stated.group(1)) == protocol.TIER_BUDGET_CPU_HOURS


def test_no_study_starts_past_the_budget_and_one_refused_is_reconsidered_on_resume(
    tmp_path, monkeypatch
):
    # The guard runs in the runner's own process, so a budget patched here is the one it reads.
    from rnnopt import tier

    make_tier(tmp_path, TINY)
    (tmp_path / "specs" / "next.yaml").write_text(TINY.replace("seq_len: 5", "seq_len: 6"))
    spent = tier.projection(tmp_path / "out", tmp_path / "specs", measure=False).spent_hours()
    monkeypatch.setattr(protocol, "TIER_BUDGET_CPU_HOURS", spent + 1e-9)
    evidence.run_evidence(studies_dir=tmp_path / "specs", out_root=tmp_path / "out", workers=1)
    for variant in ("sgd", "adam"):
        record = json.loads((tmp_path / "out" / "next" / variant / "skipped.json").read_text())
        assert record["skipped"].startswith("not run:") and "budget of" in record["skipped"]
    assert not list((tmp_path / "out" / "next").rglob("runs/*.json"))
    # A budget raised later lets the refused study run, and its refusal goes.
    monkeypatch.setattr(protocol, "TIER_BUDGET_CPU_HOURS", 1e9)
    evidence.run_evidence(studies_dir=tmp_path / "specs", out_root=tmp_path / "out", workers=1)
    for variant in ("sgd", "adam"):
        assert (tmp_path / "out" / "next" / variant / "tuned.json").exists()
        assert not (tmp_path / "out" / "next" / variant / "skipped.json").exists()


def test_a_rung_ruled_out_by_the_ladder_says_so_even_when_the_budget_is_spent(
    tmp_path, monkeypatch
):
    # The ladder's rule is read before the budget, and prices the rung's ruled-out variants
    # at nothing: the reason given is the rung below, not the money.
    from rnnopt import tier

    make_tier(tmp_path, TINY)
    spent = tier.projection(tmp_path / "out", tmp_path / "specs", measure=False).spent_hours()
    monkeypatch.setattr(protocol, "TIER_BUDGET_CPU_HOURS", spent + 1e-9)
    make_tier(
        tmp_path, "only_if_solved: tiny\n" + TINY.replace("seq_len: 5", "seq_len: 6"), "longer"
    )
    for variant in ("sgd", "adam"):
        record = json.loads((tmp_path / "out" / "longer" / variant / "skipped.json").read_text())
        assert "on no evaluation seed of tiny" in record["skipped"]


def test_a_ladder_rung_runs_the_optimizers_that_solved_the_rung_below(tmp_path, monkeypatch):
    # With a criterion every run meets (MSE <= 1), the rung below is solved and the rung runs.
    from rnnopt import tier

    make_tier(tmp_path, TINY)
    monkeypatch.setitem(protocol.SUCCESS, "adding", protocol.Criterion(1.0, False))
    assert tier.eval_successes("tiny", "sgd", tmp_path / "out", tmp_path / "specs").all()
    make_tier(
        tmp_path, "only_if_solved: tiny\n" + TINY.replace("seq_len: 5", "seq_len: 6"), "longer"
    )
    for variant in ("sgd", "adam"):
        assert (tmp_path / "out" / "longer" / variant / "tuned.json").exists()


def test_a_study_may_depend_only_on_a_study_beside_it_with_the_same_variants(tmp_path):
    (tmp_path / "other.yaml").write_text(tiny_study(variants=("sgd",)))
    (tmp_path / "rung.yaml").write_text("only_if_solved: absent\n" + TINY)
    with pytest.raises(SpecError, match=r"only_if_solved=.absent. is invalid: expected a study"):
        evidence.load_study(tmp_path / "rung.yaml")
    (tmp_path / "rung.yaml").write_text("only_if_solved: other\n" + TINY)
    with pytest.raises(SpecError, match=r"expected a study with the variants \['adam', 'sgd'\]"):
        evidence.load_study(tmp_path / "rung.yaml")


def test_protocol_settings_of_a_study_resolve_to_the_protocols_numbers(tmp_path):
    spec = TINY.replace("log_every: 5}", "log_every: 5, diverge_factor: protocol,\n"
                        "       stop_at_metric: success}")  # fmt: skip
    (tmp_path / "s.yaml").write_text(spec)
    study = evidence.load_study(tmp_path / "s.yaml")
    train = evidence.train_options(study, study.variant("sgd"))
    assert train["diverge_factor"] == protocol.DIVERGE_FACTOR == 100
    assert train["stop_at_metric"] == protocol.SUCCESS["adding"].threshold


def test_a_study_that_stops_at_success_tunes_on_time_to_success(tmp_path):
    # Two rates that both succeed: the one that got there sooner wins, whatever the error at the
    # stop; a rate that never succeeds scores its error, above the success level.
    spec = TINY.replace("log_every: 5}", "log_every: 5, stop_at_metric: success}")
    (tmp_path / "s.yaml").write_text(spec)
    study = evidence.load_study(tmp_path / "s.yaml")
    baseline, steps = 1 / 6, study.train["steps"]
    rows = [
        {"lr": 0.1, "seed": 0, "status": "ok", "final_metric": 0.001, "steps_done": steps},
        {"lr": 0.215, "seed": 0, "status": "ok", "final_metric": 0.009, "steps_done": steps // 2},
        {"lr": 0.464, "seed": 0, "status": "ok", "final_metric": 0.05, "steps_done": steps},
    ]
    scores = evidence.tuning_scores(study, rows, baseline, False)
    level = 0.01 / baseline
    assert scores[0.215][0] == pytest.approx(level / 2) and scores[0.1][0] == pytest.approx(level)
    assert scores[0.464][0] == pytest.approx(0.05 / baseline) and 0.05 / baseline > level
    plain = evidence.load_study(tmp_path / "s.yaml")
    assert evidence.tuning_scores(
        evidence.Study(**{**plain.__dict__, "train": {**plain.train, "stop_at_metric": None}}),
        rows,
        baseline,
        False,
    )[0.215][0] == pytest.approx(0.009 / baseline)


def test_a_study_not_started_is_projected_at_what_stored_runs_really_cost(tmp_path):
    # A stored study's runs took twice its step time × steps: one not started on the same core
    # is projected at twice its own step time × steps, not at the bare product.
    from rnnopt import tier

    make_tier(tmp_path, TINY)
    (tmp_path / "specs" / "next.yaml").write_text(TINY.replace("steps: 20", "steps: 40"))
    runs = [tmp_path / "out" / "tiny" / v / s for v in ("sgd", "adam") for s in ("tune", "eval")]
    seconds = [tier.cpu_seconds(stage, r) for stage in runs for r in load_results(stage)]
    step = float(np.median(seconds)) / (2 * 20)  # tiny's runs cost twice step × steps
    path = tier.step_times_path(tmp_path / "out")
    path.parent.mkdir()
    path.write_text(json.dumps({"seconds_per_step": {"tiny": step, "next": 0.1}}))
    rows, _, _ = tier.cost_table(tmp_path / "specs", tmp_path / "out", measure=False)
    shown = {r[0]: r for r in rows}
    assert shown["next"][3] == "8"  # 2 × 0.1 s × 40 steps (without the factor 2: "4")
    # Its grids are projected widened as much as tiny's were (the median over its variants).
    tiny = evidence.load_study(tmp_path / "specs" / "tiny.yaml")
    added = [
        len(json.loads((tmp_path / "out" / "tiny" / v.label / "tuned.json").read_text())["grid"])
        - len(v.grid)
        for v in tiny.variants
    ]
    nxt = evidence.load_study(tmp_path / "specs" / "next.yaml")
    runs = sum(tier.variant_runs(nxt, v, len(v.grid) + int(np.median(added))) for v in nxt.variants)
    assert shown["next"][2] == f"0/{runs}"


def test_the_cost_report_says_in_which_study_the_budget_runs_out():
    from rnnopt import tier

    part = f"{0.4 * protocol.TIER_BUDGET_CPU_HOURS:.1f}"  # 40 %, 40 % and 40 % of the budget
    rows = [["a", "", "", "", "", part], ["b", "", "", "", "", part], ["c", "", "", "", "", part]]
    assert "runs out during c" in tier.budget_reached(rows)
    assert "fits its budget" in tier.budget_reached(rows[:2])


def test_the_clipped_shares_by_rate_hold_those_of_the_tuned_rate(tiny_tier):
    from rnnopt import tier

    out = tiny_tier / "out"
    lr = json.loads((out / "tiny" / "sgd" / "tuned.json").read_text())["lr"]
    by_rate = tier.clipped_shares_by_rate("tiny", "sgd", out)
    assert by_rate[lr] == tuple(tier.clipped_shares("tiny", "sgd", out))
    assert all(0 <= s <= 1 for shares in by_rate.values() for s in shares)
