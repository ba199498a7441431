#!/usr/bin/env python3
"""Measurements for scripts/bench-attacks.sh (standard library only).

  snapshot <state.json> <out.json>          every node's /metrics and CPU time, now
  rss <state.json> <out.json> <stop-file>   the largest resident memory of every node, sampled
                                            every second until <stop-file> exists
  scenario <name> <before> <after> <rss> <load.json> <rogue.json> <recovery_s> <results.jsonl>
                                            one scenario's figures: prints its line, appends JSON

A missing file is given as "-". See bench-attacks.sh for what each figure means.
"""

import json
import os
import sys
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")


def nodes(state_path):
    with open(state_path) as f:
        return json.load(f)["nodes"]


def parse_metrics(text):
    """Prometheus text -> {"name{labels}": value}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        try:
            out[key] = float(value)
        except ValueError:
            pass
    return out


def cpu_ticks(pid):
    """utime + stime of a process, in clock ticks (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name may hold spaces: fields start after its closing parenthesis.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def snapshot(state_path, out_path):
    snap = {"time": time.time(), "nodes": []}
    for n in nodes(state_path):
        try:
            with urllib.request.urlopen(f"http://{n['api_addr']}/metrics", timeout=5) as r:
                metrics = parse_metrics(r.read().decode())
        except OSError as e:
            print(f"node {n['index']}: /metrics: {e}", file=sys.stderr)
            metrics = {}
        snap["nodes"].append(
            {"index": n["index"], "pid": n.get("pid"), "cpu_ticks": cpu_ticks(n.get("pid")), "metrics": metrics}
        )
    with open(out_path, "w") as f:
        json.dump(snap, f)


def rss(state_path, out_path, stop_path):
    pids = {n["index"]: n.get("pid") for n in nodes(state_path)}
    peak = {i: 0 for i in pids}
    # Bounded: the shell creates the stop file; an hour is far beyond any scenario.
    deadline = time.time() + 3600
    while not os.path.exists(stop_path) and time.time() < deadline:
        for i, pid in pids.items():
            k = rss_kib(pid)
            if k is not None:
                peak[i] = max(peak[i], k)
        with open(out_path, "w") as f:
            json.dump({str(i): round(k / 1024) for i, k in peak.items()}, f)
        time.sleep(1)


def load_json(path):
    if path == "-" or not os.path.exists(path) or os.path.getsize(path) == 0:
        return None
    with open(path) as f:
        text = f.read().strip()
    try:
        return json.loads(text.splitlines()[-1])
    except (ValueError, IndexError):
        return None


def total(node, prefix):
    """Sum of every sample of a metric family in one node's snapshot."""
    return sum(v for k, v in node["metrics"].items() if k == prefix or k.startswith(prefix + "{"))


def delta(before, after, prefix, index=None):
    pairs = zip(before["nodes"], after["nodes"])
    if index is not None:
        pairs = [p for p in pairs if p[0]["index"] == index]
    return sum(total(a, prefix) - total(b, prefix) for b, a in pairs)


def submissions(node):
    """Client submissions answered 200 (each one signature-check call, whatever its size)."""
    return sum(
        v
        for k, v in node["metrics"].items()
        if k.startswith("ledger_api_responses_total{")
        and ('route="/v1/transactions"' in k or 'route="/v1/transactions/batch"' in k)
        and 'status="200"' in k
    )


def scenario(name, before_p, after_p, rss_p, load_p, rogue_p, recovery, results_p):
    before, after = load_json(before_p), load_json(after_p)
    peak_rss = load_json(rss_p) or {}
    load, rogue = load_json(load_p), load_json(rogue_p)
    wall = after["time"] - before["time"]

    def mean(prefix, index=None):
        count = delta(before, after, prefix + "_count", index)
        return delta(before, after, prefix + "_sum", index) / count if count else None

    interval = mean("ledger_block_interval_seconds", index=0)
    rounds = mean("ledger_consensus_rounds_per_height")
    cpu = {}
    for b, a in zip(before["nodes"], after["nodes"]):
        if b["cpu_ticks"] is not None and a["cpu_ticks"] is not None:
            cpu[str(b["index"])] = round(100 * (a["cpu_ticks"] - b["cpu_ticks"]) / CLK_TCK / wall)
    checks = delta(before, after, "ledger_signature_verify_seconds_count")
    published = delta(before, after, "ledger_gossip_messages_sent_total")
    submitted = sum(submissions(a) - submissions(b) for b, a in zip(before["nodes"], after["nodes"]))
    # The attacker's distinct payloads; a replay's are honest messages already counted.
    attacker_new = 0
    if rogue and rogue.get("attack") != "replay" and rogue.get("unit") == "messages":
        attacker_new = rogue.get("unique_payloads", 0)
    unique = published + submitted + attacker_new
    row = {
        "scenario": name,
        "wall_s": round(wall, 1),
        "blocks": round(delta(before, after, "ledger_height", index=0)),
        "block_interval_ms": round(interval * 1000) if interval else None,
        "rounds_per_height": round(rounds, 2) if rounds else None,
        "p50_ms": round(load["latency"]["p50_ms"]) if load else None,
        "p99_ms": round(load["latency"]["p99_ms"]) if load else None,
        "final_tps": round(load["final_tps"]) if load else None,
        "not_final": load.get("not_final") if load else None,
        "cpu_pct": sum(cpu.values()),
        "cpu_pct_per_node": cpu,
        "rss_mb": max(peak_rss.values()) if peak_rss else None,
        "rss_mb_per_node": peak_rss,
        "sig_checks": round(checks),
        "unique_messages": round(unique),
        "sig_checks_per_msg": round(checks / unique, 2) if unique else None,
        "gossip_received": round(delta(before, after, "ledger_gossip_messages_received_total")),
        "rejected": round(delta(before, after, "ledger_gossip_messages_rejected_total")),
        "sent": rogue.get("sent") if rogue else None,
        "unit": rogue.get("unit") if rogue else None,
        "disconnect_after": (rogue.get("first_disconnect_after_messages") if rogue else None),
        "recovery_s": None if recovery == "never" else float(recovery),
        "rogue": rogue,
    }
    with open(results_p, "a") as f:
        f.write(json.dumps(row) + "\n")

    def show(v):
        return "-" if v is None else v

    after_txt = "-"
    if rogue:
        after_txt = "never" if row["disconnect_after"] is None else row["disconnect_after"]
    print(
        f"scenario={name} block_interval_ms={show(row['block_interval_ms'])} "
        f"rounds_per_height={show(row['rounds_per_height'])} p50_ms={show(row['p50_ms'])} "
        f"p99_ms={show(row['p99_ms'])} final_tps={show(row['final_tps'])} cpu_pct={row['cpu_pct']} "
        f"rss_mb={show(row['rss_mb'])} sig_checks_per_msg={show(row['sig_checks_per_msg'])} "
        f"rejected={row['rejected']} sent={show(row['sent'])}"
        f"{'' if not rogue else ' ' + str(row['unit'])} disconnect_after={after_txt} "
        f"recovery_s={recovery}",
        flush=True,
    )


def main(argv):
    commands = {"snapshot": (snapshot, 2), "rss": (rss, 3), "scenario": (scenario, 8)}
    if len(argv) < 2 or argv[1] not in commands or len(argv) - 2 != commands[argv[1]][1]:
        sys.exit(__doc__)
    fn, _ = commands[argv[1]]
    fn(*argv[2:])


if __name__ == "__main__":
    main(sys.argv)
