"""The table of `archspec bench`: one line per measurement."""
from __future__ import annotations

from archspec.fmt import fmt_bytes, human
from archspec.ui.tables import Column, table


def bench_table(r):
    rows = [
        ["parameters", f"{r.params:,}"],
        ["compile time", f"{r.compile_s:.2f} s"],
        ["step time (median)", f"{r.step_s * 1e3:.2f} ms  (min {r.step_s_min * 1e3:.2f}, "
                               f"max {r.step_s_max * 1e3:.2f}, {r.steps} steps)"],
        ["examples/s", f"{r.examples_per_s:,.1f}"],
        ["training FLOPs / step", f"{human(r.train_flops_per_step, 'FLOP')}  "
                                  "(estimate: 3 × forward MACs × 2)"],
        ["achieved", human(r.achieved_flops, "FLOP/s")],
        ["matmul peak (measured)", f"{human(r.peak_matmul_flops, 'FLOP/s')}  "
                                   f"({r.matmul_size}² {'bf16' if r.precision == 'bf16' else 'float32'})"],
        ["utilisation", f"{r.utilisation:.1%}"],
        ["peak memory", f"{fmt_bytes(r.peak_memory_bytes, 2)}  ({r.memory_source})"],
    ]
    if r.step_memory_bytes is not None:
        rows.append(["step memory (XLA)", fmt_bytes(r.step_memory_bytes, 2)])
    return table([Column("", "name", style="bold"), Column("", "number")], rows,
                 title=f"{r.name}: batch {r.batch}, {r.precision}, {r.devices} × {r.device}",
                 show_header=False, title_justify="center")
