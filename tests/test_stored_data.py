"""The committed sweep data (data/sweeps/) must still be what the code produces.

For every stored sweep, two of its runs (the cheapest finished one and the cheapest other one,
a diverged run where there is one) are run again from their stored configuration and must give
the same status, step count and final numbers bit for bit, and the same loss at every step.
A change to the code that changes results makes this fail: regenerate the data with
``python -m rnnopt.analysis sweeps`` (after deleting the stale directories).

Bit-identity holds on the kind of CPU the data was made on: provenance.json's `cpu` and
`cpu_capability` (the vector instruction set torch dispatches to, e.g. AVX2 or AVX512). Another
instruction set changes the last bits of float32 arithmetic, and over hundreds of steps a chaotic
training run amplifies them, so elsewhere (or where the record does not say) the first steps'
losses and the initial held-out numbers must agree to 1e-4 (relative) instead.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from rnnopt.analysis import SPECS_DIR, SWEEPS_DIR, cpu_model
from rnnopt.sweep import execute, expand, load_results, load_run, load_spec

PREFIX_STEPS = 5  # steps compared on another kind of CPU, before rounding differences grow
SWEEPS = sorted(p.name for p in SWEEPS_DIR.glob("*") if (p / "results.csv").exists())


def sample(rows: list[dict]) -> list[dict]:
    """The cheapest finished run, and the cheapest diverged one (else the next cheapest)."""
    by_cost = sorted(rows, key=lambda r: (r["wall_time"], r["run_id"]))
    first = next(r for r in by_cost if r["status"] == "ok")
    rest = [r for r in by_cost if r is not first]
    second = next((r for r in rest if r["status"] != "ok"), rest[0])
    return [first, second]


@pytest.mark.skipif(not SWEEPS, reason="no stored sweeps under data/sweeps")
@pytest.mark.parametrize("name", SWEEPS)
def test_stored_runs_are_reproduced_exactly(name):
    out = SWEEPS_DIR / name
    made = json.loads((out / "provenance.json").read_text())
    same_cpu = (
        made["cpu"] == cpu_model()
        and made.get("cpu_capability") == torch.backends.cpu.get_cpu_capability()
    )
    for row in sample(load_results(out)):
        stored = load_run(out, row["run_id"])
        again = execute(stored["config"])
        assert again["run_id"] == row["run_id"]
        if not same_cpu:
            prefix = PREFIX_STEPS
            assert again["history"]["loss"][:prefix] == pytest.approx(
                stored["history"]["loss"][:prefix], rel=1e-4
            )
            assert again["history"]["eval_metric"][0] == pytest.approx(
                stored["history"]["eval_metric"][0], rel=1e-4
            )
            continue
        assert (again["status"], again["steps_done"]) == (stored["status"], stored["steps_done"])
        for key in ("final_loss", "final_metric"):
            assert again[key] == stored[key] or (
                math.isnan(again[key]) and math.isnan(stored[key])
            ), key
        assert again["history"]["loss"] == stored["history"]["loss"]
        assert again["history"]["eval_metric"] == stored["history"]["eval_metric"]


@pytest.mark.skipif(not SWEEPS, reason="no stored sweeps under data/sweeps")
@pytest.mark.parametrize("name", SWEEPS)
def test_stored_sweep_matches_its_spec_and_is_complete(name):
    out = SWEEPS_DIR / name
    spec_file = Path(SPECS_DIR) / f"{name}.yaml"
    assert spec_file.exists(), f"{name} has no spec in data/specs"
    assert (out / "spec.yaml").read_text() == spec_file.read_text()
    expected = [c.run_id for c in expand(load_spec(spec_file))]
    assert [r["run_id"] for r in load_results(out)] == expected
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["runs"] == len(expected)
