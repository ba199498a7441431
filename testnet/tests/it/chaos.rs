//! `testnet chaos` end to end: the seeded nemesis against a real 4-validator testnet, with the
//! invariants checked by the command itself.

use std::time::Duration;

use crate::ALL4;
use crate::harness::Testnet;

#[test]
fn n4_chaos_nemesis_for_45s_keeps_every_invariant() {
    let tn = Testnet::up("chaos", &["-n", "4"]);
    tn.wait_height(&ALL4, 2, Duration::from_secs(60));
    // A fixed seed in CI, so a failure replays with the same schedule (the report says how).
    let out = tn.cli(
        &[
            "chaos",
            "--seed",
            "20240607",
            "--duration",
            "45",
            "--rate",
            "20",
            "--json",
        ],
        Duration::from_secs(600),
    );
    tn.log(&format!("chaos stderr:\n{}", out.stderr));
    let report: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "chaos --json is one JSON object ({e}):\n{}\n{}",
            out.stdout, out.stderr
        )
    });
    tn.log(&format!(
        "chaos: faults {} ({}), transfers sent {} final {}, height {} -> {}, violations {}",
        report["faults_injected"],
        report["faults"],
        report["transfers_sent"],
        report["transfers_final"],
        report["height_start"],
        report["height_end"],
        report["violations"]
    ));
    assert!(
        out.success,
        "chaos exited non-zero; violations: {}\n{}",
        report["violation_details"], out.stderr
    );
    assert_eq!(report["violations"], 0, "{}", report["violation_details"]);
    assert_eq!(report["seed"], 20240607);
    assert!(
        report["faults_injected"].as_u64().unwrap_or(0) > 0,
        "{report}"
    );
    // The schedule starts with one episode of each kind; 45 s is room for all four.
    for kind in [
        "kill",
        "isolate",
        "cut_off",
        "restart_all",
        "restart",
        "heal",
    ] {
        assert!(
            report["faults"][kind].as_u64().unwrap_or(0) > 0,
            "no {kind} in 45 s: {}",
            report["faults"]
        );
    }
    assert!(
        report["transfers_final"].as_u64().unwrap_or(0) > 0,
        "{report}"
    );
    assert!(
        report["finals_compared"].as_u64().unwrap_or(0) > 0,
        "{report}"
    );
    assert!(
        report["replayed_blocks"].as_u64().unwrap_or(0)
            + report["reexecuted_blocks"].as_u64().unwrap_or(0)
            == report["height_end"].as_u64().unwrap_or(u64::MAX),
        "the replay covers the chain from genesis: {report}"
    );
    // The command left a whole, agreeing testnet behind.
    tn.assert_same_chain(&ALL4);
}
