"""The figures of a run as a table, and whether they meet the targets."""

from __future__ import annotations

from typing import Any

from bench.common import percentile, table

#: A speaker counts as losing no seconds if less than this is missing from the blob store.
LOST_TOLERANCE = 0.5


def verdict(r: dict[str, Any]) -> list[str]:
    """What keeps this run from meeting the target (empty: it meets it)."""
    problems = []
    lost = [s for s in r["speakers"] if s["sent"] - s["recorded"] >= LOST_TOLERANCE]
    if lost:
        problems.append(f"{len(lost)} speaker(s) lost seconds")
    five = sum(t["server_errors"] for kinds in r["api"].values() for t in kinds.values())
    if five:
        problems.append(f"{five} API 5xx")
    errors = sum(t["errors"] - t["server_errors"] + t["skipped"] for kinds in r["api"].values() for t in kinds.values())
    if errors:
        problems.append(f"{errors} other API errors or skipped requests")
    early = sum(1 for s in r["speakers"] if s["stopped_early"])
    if early or r["ended_early"]:
        problems.append(f"{early} speaker(s) stopped sending early, {r['ended_early']} stream(s) ended early")
    if r["failed_joins"]:
        problems.append(f"{r['failed_joins']} clients failed to join")
    not_ready = [s for s, state in r["states"].items() if state != "ready"]
    if not_ready:
        problems.append(f"{len(not_ready)} space(s) not ready")
    return problems


def report(r: dict[str, Any]) -> str:
    pct = "{:.2f}%".format
    completeness = [s["recorded"] / s["sent"] if s["sent"] else 0.0 for s in r["speakers"]]
    lost = [max(0.0, s["sent"] - s["recorded"]) for s in r["speakers"]]
    sent = [s["sent"] for s in r["speakers"]]
    load = ", ".join(f"{x:.2f}" for x in r["load_live"])
    rows = [
        ["clients (speakers + listeners)", f"{r['clients']} ({r['failed_joins']} failed to join)"],
        ["join to first audio, p50 / max", f"{r['join_p50']:.2f} s / {r['join_max']:.2f} s"],
        ["subscribed streams", str(r["streams"])],
        ["packet loss per stream, median / max", f"{pct(r['loss_median'] * 100)} / {pct(r['loss_max'] * 100)}"],
        ["packets lost, all streams", f"{r['lost_packets']} of {r['expected_packets']}"],
        ["streams that ended before the speakers stopped", str(r["ended_early"])],
        [
            "longest arrival gap per stream, median / max",
            f"{r['gap_median'] * 1000:.0f} / {r['gap_max'] * 1000:.0f} ms",
        ],
        ["UDP datagrams dropped by the kernel", str(r["udp_drops"])],
        ["SFU socket receive queue, fullest (5 s samples)", f"{r['sfu_backlog'] / 1024:.0f} KiB"],
        ["longest send gap per speaker, max", f"{max(s['send_gap'] for s in r['speakers']) * 1000:.0f} ms"],
        ["seconds sent per speaker, min / max", f"{min(sent, default=0):.1f} / {max(sent, default=0):.1f}"],
        ["recorded / sent per speaker, min", pct(min(completeness, default=0) * 100)],
        ["seconds lost per speaker, max / total", f"{max(lost, default=0):.2f} / {sum(lost):.2f}"],
        ["packets the recorders dropped (late, duplicate)", str(sum(s["recorder_dropped"] for s in r["speakers"]))],
        ["space end -> every room recorded", f"{r['handover']:.1f} s"],
        ["space end -> queue drained (all ready)", f"{r['drain']:.1f} s"],
        [
            "SFU CPU (busiest node), live window mean / peak 5 s",
            f"{max(r['cpu_live'][n] for n in r['sfu_nodes']) * 100:.0f}% / {r['sfu_peak'] * 100:.0f}%",
        ],
        ["load average at the end of the window", load],
    ]
    out = [table(f"Load: {r['rooms']} rooms x (2 speakers + {r['listeners']} listeners), {r['minutes']:g} min live, "
                 f"{len(r['sfu_nodes'])} SFU node(s), {r['cpus']} CPUs", ["measure", "value"], rows)]  # fmt: skip
    api_rows = []
    for phase, kinds in r["api"].items():
        for kind, t in sorted(kinds.items()):
            ms = t["ms"]
            extra = f"{t['hits'] / max(1, len(ms)):.1f}" if kind == "search" else ""
            api_rows.append([phase, kind, str(len(ms)), f"{percentile(ms, 50):.1f}", f"{percentile(ms, 99):.1f}",
                             f"{max(ms, default=float('nan')):.1f}", str(t["server_errors"]),
                             str(t["errors"] - t["server_errors"]), str(t["skipped"]), extra])  # fmt: skip
    out.append(table(f"API at {r['api_rate']:g} requests/s (half 64 KiB Range requests of {r['seeded']} replays, "
                     "half two-word searches)",
                     ["phase", "kind", "n", "p50 ms", "p99 ms", "max ms", "5xx", "errors", "skipped", "hits/q"],
                     api_rows))  # fmt: skip
    names = sorted(r["cpu_live"], key=lambda n: (n not in (*r["sfu_nodes"], "api", "worker"), n))
    cpu_rows = [[n, f"{r['cpu_live'][n] * 100:.0f}%", f"{r['cpu_drain'][n] * 100:.0f}%"] for n in names]
    client_names = [n for n in names if n.startswith(("speakers", "listeners", "api-clients"))]
    cpu_rows.append(["all clients", f"{sum(r['cpu_live'][n] for n in client_names) * 100:.0f}%",
                     f"{sum(r['cpu_drain'][n] for n in client_names) * 100:.0f}%"])  # fmt: skip
    out.append(table(f"CPU, % of one core (live window {r['window']:.0f} s; drain {r['drain']:.0f} s; "
                     f"worker includes its work-horses; {r['backlog']} spaces enqueued during the window)",
                     ["process", "live", "drain"], cpu_rows))  # fmt: skip
    problems = verdict(r)
    out.append("target (zero lost seconds, zero 5xx, everyone joined, every space ready): "
               + ("MET" if not problems else "NOT MET: " + "; ".join(problems)))  # fmt: skip
    return "\n".join(out)
