"""P5 — CLI start-up: ``igm --help`` and ``igm list`` against ``python -c "import torch"``.

Three subprocesses, timed wall-clock in interleaved rounds (order rotating; 9 rounds, fewer but
at least 7 when the machine is so busy that they would take over ~40 s): ``.venv/bin/igm --help``,
``.venv/bin/igm list`` and ``python -c "import torch"`` (the same interpreter). Reported: each
median, and the per-round ratio ``igm list / import torch`` (median). Targets from the issue:
``igm --help`` under 0.3 s, ``igm list`` <= 1.2x ``import torch``.

Also, from ``python -X importtime`` (whose own bookkeeping inflates every figure a little):

- whether torch is imported by ``import igm.cli`` and by the real ``igm --help`` (it must not be);
- the costliest imports behind ``igm list``: of a ``python -c`` that builds the registry
  (``from igm.registry import get_registry; get_registry()``), and of the ``igm list`` command
  itself (which adds typer's own imports), grouped by top-level package (self time) and as the
  direct imports with the largest cumulative time.

Run: ``.venv/bin/python -m pytest benchmarks/test_p5_cli.py --benchmark-only -q``
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from _bench import Interleaved, ratio_of_minimums, rounds_within, run_rounds, spread, write_result

PYTHON = sys.executable
IGM = str(Path(sys.executable).parent / "igm")
REGISTRY_SNIPPET = "from igm.registry import get_registry; get_registry()"


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert out.returncode == 0, f"{' '.join(cmd)} exited {out.returncode}: {out.stderr[-2000:]}"
    return out


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def importtime(cmd: list[str]) -> list[tuple[int, int, int, str]]:
    """``-X importtime`` rows of a command: (self us, cumulative us, depth, module)."""
    out = run([PYTHON, "-X", "importtime", *cmd])
    rows = []
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cum_us, name = line[len("import time:") :].split("|")
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        rows.append((int(self_us), int(cum_us), depth, name.strip()))
    return rows


def imports_torch(rows: list[tuple[int, int, int, str]]) -> bool:
    return any(name == "torch" or name.startswith("torch.") for _, _, _, name in rows)


def top_imports(rows: list[tuple[int, int, int, str]], k: int = 12) -> dict:
    by_package: dict[str, int] = defaultdict(int)
    for self_us, _, _, name in rows:
        by_package[name.split(".")[0]] += self_us
    total = sum(r[0] for r in rows)
    direct = sorted((r for r in rows if r[2] == 0), key=lambda r: -r[1])[:k]
    return {
        "total_ms": round(total / 1e3, 1),
        "by_package_self_ms": {p: round(us / 1e3, 1) for p, us in sorted(by_package.items(), key=lambda kv: -kv[1])[:k]},
        "direct_imports_cumulative_ms": {name: round(cum / 1e3, 1) for _, cum, _, name in direct},
    }


def test_p5_cli_startup(benchmark) -> None:
    commands = {
        "igm_help": [IGM, "--help"],
        "igm_list": [IGM, "list"],
        "import_torch": [PYTHON, "-c", "import torch"],
    }
    cpu: dict[str, list[float]] = {name: [] for name in commands}

    def contender(name: str):
        def prepare():
            def work() -> None:
                before = child_cpu()
                run(commands[name])
                cpu[name].append(child_cpu() - before)

            return work

        return prepare

    for cmd in commands.values():  # warm the file-system cache, not timed
        run(cmd)
    bench = Interleaved({name: contender(name) for name in commands})
    t0 = time.perf_counter()
    bench.round()  # counted; also tells how many rounds fit the budget on this machine today
    rounds = rounds_within(9, time.perf_counter() - t0, 40.0, minimum=7)
    run_rounds(benchmark, bench, rounds - 1)

    wall = {name: spread(times) for name, times in bench.times.items()}
    ratio_list = spread(bench.ratio("igm_list", "import_torch"))
    ratio_help = spread(bench.ratio("igm_help", "import_torch"))
    cpu_ratio = spread([a / b for a, b in zip(cpu["igm_list"], cpu["import_torch"])])

    cli_rows = importtime(["-c", "import igm.cli"])
    help_rows = importtime([IGM, "--help"])
    registry_rows = importtime(["-c", REGISTRY_SNIPPET])
    list_rows = importtime([IGM, "list"])
    torch_cum = max((cum for _, cum, _, name in registry_rows if name == "torch"), default=0)

    registry_top = top_imports(registry_rows)
    summary = (
        f"{rounds} rounds: igm --help {wall['igm_help']['median']:.3f} s (target < 0.3), "
        f"igm list {wall['igm_list']['median']:.3f} s, import torch {wall['import_torch']['median']:.3f} s, "
        f"list/torch = {ratio_list['median']:.3f} (target <= 1.2; IQR {ratio_list['q1']:.3f}-{ratio_list['q3']:.3f}); "
        f"torch imported by --help: {imports_torch(help_rows)}; "
        f"registry imports {registry_top['total_ms']:.0f} ms, torch {torch_cum / 1e3:.0f} ms of it"
    )
    benchmark.extra_info.update(
        {"ratio_list_torch": ratio_list["median"], "help_s": wall["igm_help"]["median"]}
    )
    write_result(
        "p5_cli",
        {
            "command": ".venv/bin/python -m pytest benchmarks/test_p5_cli.py --benchmark-only -q",
            "setup": {"rounds": rounds, "igm": IGM, "python": PYTHON},
            "targets": {"igm --help": "< 0.3 s", "igm list / import torch": "<= 1.2"},
            "wall_seconds": wall,
            "ratio_igm_list_over_import_torch": ratio_list,
            "ratio_igm_list_over_import_torch_cpu_time": cpu_ratio,
            "ratio_of_minimum_times_igm_list_over_import_torch": ratio_of_minimums(
                bench.times["igm_list"], bench.times["import_torch"]
            ),
            "ratio_igm_help_over_import_torch": ratio_help,
            "child_cpu_seconds_median": {name: spread(v)["median"] for name, v in cpu.items()},
            "torch_imported": {
                "python -c 'import igm.cli'": imports_torch(cli_rows),
                "igm --help": imports_torch(help_rows),
                "registry build": imports_torch(registry_rows),
            },
            "importtime_registry_build": {"snippet": REGISTRY_SNIPPET, "torch_cumulative_ms": round(torch_cum / 1e3, 1), **registry_top},
            "importtime_igm_list_command": top_imports(list_rows),
            "importtime_igm_help_command": top_imports(help_rows),
            "raw_wall_seconds": bench.times,
        },
        summary,
    )
