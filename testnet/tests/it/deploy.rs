//! Beyond one machine: what `testnet init` writes, run the way users run it.
//!
//! - A bundle with random keys, each node in its own network namespace (as on its own host),
//!   started with nothing but `ledger-node run --config <folder>/config.json`; `testnet status` and
//!   `testnet load` reach it through the manifest.
//! - The Kubernetes objects of a bundle validate against the API's schemas (offline).
//! - The Compose testnet in Docker: `scripts/compose-test.sh` (image from Debian packages, every
//!   container on host networking, one container killed), where Docker can run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::harness::{node_bin, run_captured, serial, testnet_bin, venv_bin};

#[path = "../../../node/tests/it/netns.rs"]
mod netns;

fn init(out: &Path, extra: &[&str]) -> String {
    let run = run_captured(
        Command::new(testnet_bin())
            .arg("init")
            .arg("--out")
            .arg(out)
            .arg("--node-bin")
            .arg(node_bin())
            .args(extra),
        Duration::from_secs(60),
    );
    assert!(
        run.success,
        "testnet init {extra:?} failed:\n{}\n{}",
        run.stdout, run.stderr
    );
    run.stdout
}

fn testnet_json(args: &[&str]) -> (bool, serde_json::Value, String) {
    let run = run_captured(
        Command::new(testnet_bin()).args(args),
        Duration::from_secs(120),
    );
    let last = run.stdout.lines().last().unwrap_or_default().to_string();
    let v = serde_json::from_str(&last).unwrap_or(serde_json::Value::Null);
    (run.success, v, format!("{}\n{}", run.stdout, run.stderr))
}

#[test]
fn n4_init_bundle_with_random_keys_runs_in_separate_network_namespaces_and_status_and_load_reach_it()
 {
    let _serial = serial();
    let mut hosts = match netns::Hosts::create(4) {
        Ok(h) => h,
        Err(e) => {
            eprintln!(
                "SKIPPED: cannot create network namespaces here ({e}); this test needs root and iproute2"
            );
            return;
        }
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let bundle = tmp.path().join("bundle");
    init(&bundle, &["-n", "4", "--starting-ip", &hosts.addr(0)]);
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(bundle.join("manifest.json")).expect("manifest"),
    )
    .expect("manifest is JSON");
    assert_eq!(manifest["dev_keys"], false);
    // Fresh keys: none of them is a dev key, and each is owner-only.
    let dev0 = ledger_core::Keypair::dev("validator", 0)
        .address()
        .to_string();
    for i in 0..4 {
        let key = bundle.join(format!("node-{i}/node_key.json"));
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&key).expect("key").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "{} is not owner-only", key.display());
        assert_ne!(manifest["nodes"][i]["address"], dev0.as_str());
    }

    for (i, ns) in hosts.names.clone().iter().enumerate() {
        let folder = bundle.join(format!("node-{i}"));
        let log = std::fs::File::create(tmp.path().join(format!("node-{i}.log"))).expect("log");
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(node_bin())
            .arg("run")
            .arg("--config")
            .arg(folder.join("config.json"))
            // Nothing from the environment: the folder is all the node gets.
            .env_remove("LEDGER_DATA_DIR")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("node starts");
        hosts.children.push(child);
    }
    let logs = || {
        (0..4)
            .map(|i| {
                let t = std::fs::read_to_string(tmp.path().join(format!("node-{i}.log")))
                    .unwrap_or_default();
                let tail: Vec<&str> = t.lines().rev().take(12).collect();
                format!(
                    "--- node {i} ---\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };

    // `status --manifest` from this namespace (the bridge's side) sees every node agree.
    let manifest_arg = bundle.to_str().expect("utf-8 path");
    let deadline = Instant::now() + Duration::from_secs(60);
    let report = loop {
        let (_, v, text) = testnet_json(&["status", "--manifest", manifest_arg, "--json"]);
        let heights: Vec<Option<u64>> = (0..4).map(|i| v["nodes"][i]["height"].as_u64()).collect();
        if v["agree"] == true && heights.iter().all(|h| h.is_some_and(|h| h >= 3)) {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "the bundle's nodes did not all finalize 3 blocks and agree within 60 s: {text}\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(report["nodes"][0]["remote"] == true, "{report}");
    for i in 0..4 {
        let data = bundle.join(format!("node-{i}/data"));
        assert!(
            data.is_dir(),
            "node {i} keeps its data in its folder: {}",
            data.display()
        );
    }

    // `load --manifest`: transfers from the dev accounts the bundle's genesis funds, all final.
    let (ok, v, text) = testnet_json(&[
        "load",
        "--manifest",
        manifest_arg,
        "--rate",
        "50",
        "--duration",
        "4",
        "--json",
    ]);
    assert!(ok, "load --manifest failed: {text}\n{}", logs());
    let accepted = v["accepted"].as_u64().unwrap_or(0);
    assert!(accepted >= 100, "too few transfers accepted: {v}");
    assert_eq!(v["final"].as_u64(), Some(accepted), "not all final: {v}");
}

#[test]
fn kubernetes_objects_of_an_init_bundle_validate_against_their_schemas() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let bundle = tmp.path().join("bundle");
    init(&bundle, &["-n", "3", "--kubernetes", "--dev"]);
    let k8s = bundle.join("kubernetes");
    let files: Vec<PathBuf> = ["ledger.yaml", "ledger-config.json", "ledger-keys.json"]
        .iter()
        .map(|f| k8s.join(f))
        .collect();
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files[1]).expect("config map"))
            .expect("JSON");
    let pod1: serde_json::Value = serde_json::from_str(
        config["data"]["ledger-1.json"]
            .as_str()
            .expect("pod 1's config"),
    )
    .expect("pod 1's config is JSON");
    assert_eq!(
        pod1["p2p"]["bootnodes"],
        serde_json::json!([
            "/dns/ledger-0.ledger/tcp/30333",
            "/dns/ledger-2.ledger/tcp/30333"
        ])
    );
    let statefulset = std::fs::read_to_string(&files[0]).expect("statefulset");
    assert!(statefulset.contains("\n  replicas: 3\n"), "{statefulset}");

    let validate = venv_bin("kubernetes-validate");
    let mut cmd = Command::new(&validate);
    cmd.args(["--strict", "--kubernetes-version", "1.31.0"])
        .args(&files)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes/ledger.yaml"));
    let run = run_captured(&mut cmd, Duration::from_secs(120));
    assert!(
        run.success,
        "the Kubernetes objects do not validate:\n{}\n{}",
        run.stdout, run.stderr
    );

    // The checker can fail: a StatefulSet with a field its schema does not have is refused.
    let bad = tmp.path().join("bad.yaml");
    std::fs::write(
        &bad,
        statefulset.replace("serviceName: ledger", "serviceNam: ledger"),
    )
    .expect("write");
    let run = run_captured(
        Command::new(&validate)
            .args(["--strict", "--kubernetes-version", "1.31.0"])
            .arg(&bad),
        Duration::from_secs(120),
    );
    assert!(
        !run.success,
        "a misspelt field passed validation:\n{}",
        run.stdout
    );
}

#[test]
fn n4_compose_testnet_in_docker_finalizes_on_every_node_and_survives_a_killed_container() {
    let _serial = serial();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/compose-test.sh");
    let run = run_captured(
        Command::new("bash")
            .arg(&script)
            .env("TESTNET_BIN", testnet_bin())
            .env("LEDGER_NODE_BIN", node_bin()),
        Duration::from_secs(1500),
    );
    if run.code == Some(SKIPPED) {
        eprintln!("SKIPPED: {}", run.stderr.trim());
        return;
    }
    assert!(
        run.success,
        "compose test failed:\n{}\n{}",
        run.stdout, run.stderr
    );
    eprintln!("{}", run.stdout);
}

/// What `scripts/compose-test.sh` exits with when Docker cannot run here.
const SKIPPED: i32 = 77;
