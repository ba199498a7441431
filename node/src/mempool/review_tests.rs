//! Adversarial review of commit ec6e74d: each sender queue's running `cost`, and admission's
//! balance check computed from it instead of summing the queue.
//!
//! The model is the rule before the change, evaluated on the pool's own state right before each
//! admission: `need = cost of the new transaction + the sum, with overflow checked, of the costs of
//! every queued entry of the sender except the one replaced`. Every admission must agree with it
//! (refuse with `InsufficientFunds { need }` or `AmountOverflow` exactly when the model does), and
//! after every step `check_invariants` (which now checks the running sum) must hold. Seeded:
//! `LEDGER_TEST_SEED` replays a failure.

use super::*;
use ledger_core::{Keypair, Transaction};
use rand::{RngExt, SeedableRng};

fn chain() -> ChainId {
    ChainId::new("test-chain").expect("valid")
}

fn tx(key: &Keypair, nonce: u64, amount: u64, fee: u64) -> VerifiedTransaction {
    Transaction {
        chain_id: chain(),
        from: key.public(),
        to: Keypair::dev("recipient", 0).address(),
        amount: Amount(amount),
        fee: Amount(fee),
        nonce: Nonce(nonce),
        memo: vec![],
    }
    .sign(key)
    .verify(&chain())
    .expect("valid")
}

fn acct(balance: u64, nonce: u64) -> Account {
    Account {
        balance: Amount(balance),
        nonce: Nonce(nonce),
    }
}

fn small_cfg() -> MempoolConfig {
    MempoolConfig {
        max_txs: 14,
        max_bytes: 1 << 20,
        max_txs_per_account: 6,
        nonce_window: 6,
        min_fee: 1,
        tx_ttl_secs: 3_600,
        rejected_cache_len: 16,
    }
}

fn seed() -> u64 {
    std::env::var("LEDGER_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(7, |d| d.as_nanos() as u64)
        })
}

/// The balance rule as it was before the change: sum the sender's queue, skipping the replaced
/// entry, with overflow checked.
fn old_rule_need(p: &Pool, t: &VerifiedTransaction) -> Result<Amount, TxError> {
    let mut need = t.tx().total_cost()?;
    let Some(q) = p.senders.get(&t.sender()) else {
        return Ok(need);
    };
    let replaced = q.by_nonce.get(&t.tx().nonce).copied();
    for h in q.by_nonce.values() {
        if Some(*h) == replaced {
            continue;
        }
        if let Some(e) = p.entries.get(h) {
            need = need.checked_add(e.cost).ok_or(TxError::AmountOverflow)?;
        }
    }
    Ok(need)
}

/// Admits `t` and checks the verdict against the old rule. Returns the result.
fn admit_checked(
    p: &mut Pool,
    t: VerifiedTransaction,
    account: &Account,
    now: Instant,
    ctx: &str,
) -> Result<Admitted, AdmitError> {
    let model = old_rule_need(p, &t);
    let cost_ok = t.tx().total_cost().is_ok();
    let already = p.contains(&t.hash());
    let result = p.admit(t, account, now);
    if already {
        assert_eq!(result, Ok(Admitted::AlreadyPending), "{ctx}");
        return result;
    }
    // Refusals decided before the balance check say nothing about it.
    if matches!(
        result,
        Err(AdmitError::Tx(
            TxError::FeeTooLow { .. } | TxError::NonceTooLow { .. } | TxError::NonceTooHigh { .. }
        ))
    ) || !cost_ok
    {
        return result;
    }
    match model {
        Err(TxError::AmountOverflow) => assert_eq!(
            result,
            Err(AdmitError::Tx(TxError::AmountOverflow)),
            "{ctx}: the old rule overflows"
        ),
        Err(e) => panic!("{ctx}: unexpected model error {e:?}"),
        Ok(need) if need > account.balance => assert_eq!(
            result,
            Err(AdmitError::Tx(TxError::InsufficientFunds {
                have: account.balance,
                need
            })),
            "{ctx}: the old rule refuses for funds"
        ),
        Ok(need) => assert!(
            !matches!(
                result,
                Err(AdmitError::Tx(
                    TxError::InsufficientFunds { .. } | TxError::AmountOverflow
                ))
            ),
            "{ctx}: the old rule accepts (need {need:?}, balance {:?}) but got {result:?}",
            account.balance
        ),
    }
    result
}

fn check(p: &Pool, ctx: &str) {
    if let Err(e) = p.check_invariants() {
        panic!("{ctx}: {e}");
    }
}

/// Random admissions (new nonces, replacements with a higher fee and a *different* amount, up or
/// down), commits with balance drops and rises, re-checks with a balance that no longer covers
/// the queue (on_commit drops the tail), evictions of other senders' tails under tight caps,
/// expiry, and `drop_invalid` of entries in the *middle* of a queue, over two scales of amounts:
/// small, and close to `u64::MAX` (where the sums overflow).
#[test]
fn review_running_cost_agrees_with_the_summing_rule_under_random_sequences() {
    let seed = seed();
    for scale in [1_000u64, u64::MAX / 3, u64::MAX] {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ scale);
        let mut p = Pool::new(small_cfg());
        let keys: Vec<Keypair> = (0..5).map(|i| Keypair::dev("review-cost", i)).collect();
        let mut accounts: Vec<Account> = (0..keys.len())
            .map(|_| acct(rng.random_range(scale / 2..=scale), 0))
            .collect();
        let start = Instant::now();
        let mut now = start;
        // How often each outcome came up, so the test shows it reaches the balance rule.
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut tally = |r: &Result<Admitted, AdmitError>, replacing: bool| {
            let what = match r {
                Ok(_) => "added",
                Err(AdmitError::Tx(TxError::InsufficientFunds { .. })) => "funds",
                Err(AdmitError::Tx(TxError::AmountOverflow)) => "overflow",
                Err(AdmitError::Full { .. }) => "full",
                Err(AdmitError::SenderFull { .. }) => "sender full",
                Err(AdmitError::Tx(e)) => return *seen.entry(format!("{e:?}")).or_default() += 1,
                Err(_) => "other",
            };
            let what = if replacing {
                format!("replacement {what}")
            } else {
                what.to_string()
            };
            *seen.entry(what).or_default() += 1;
        };
        for step in 0..1_500 {
            let ctx = format!("scale {scale} step {step} (replay with LEDGER_TEST_SEED={seed})");
            let who = rng.random_range(0..keys.len());
            let amount = |rng: &mut rand_chacha::ChaCha8Rng| {
                // Mostly a fraction of the scale, sometimes the whole of it.
                match rng.random_range(0..6) {
                    0 => scale,
                    1 => scale.saturating_sub(rng.random_range(0..4)),
                    _ => rng.random_range(0..=scale / 3),
                }
            };
            match rng.random_range(0..12) {
                0..=4 => {
                    let nonce = accounts[who].nonce.0 + rng.random_range(0..7);
                    let fee = rng.random_range(1..8);
                    let a = amount(&mut rng).saturating_sub(fee).max(1);
                    let r = admit_checked(
                        &mut p,
                        tx(&keys[who], nonce, a, fee),
                        &accounts[who],
                        now,
                        &ctx,
                    );
                    tally(&r, false);
                }
                5 | 6 => {
                    // Replace a queued nonce with a higher fee and another amount, against an
                    // account that may have changed without the pool being told.
                    let queued: Vec<(Nonce, Hash)> = p
                        .senders
                        .get(&keys[who].address())
                        .map(|q| q.by_nonce.iter().map(|(n, h)| (*n, *h)).collect())
                        .unwrap_or_default();
                    if queued.is_empty() {
                        continue;
                    }
                    let (nonce, h) = queued[rng.random_range(0..queued.len())];
                    let old_fee = p.entries[&h].fee();
                    let fee = old_fee.saturating_add(rng.random_range(1..4));
                    let a = amount(&mut rng).saturating_sub(fee).max(1);
                    let mut account = accounts[who];
                    if rng.random_range(0..3) == 0 {
                        account.balance = Amount(rng.random_range(0..=scale));
                    }
                    let r =
                        admit_checked(&mut p, tx(&keys[who], nonce.0, a, fee), &account, now, &ctx);
                    tally(&r, true);
                }
                7 => {
                    let block = p.candidates(rng.random_range(1..6), usize::MAX);
                    let mut changed = Vec::new();
                    for t in &block {
                        let i = keys
                            .iter()
                            .position(|k| k.address() == t.sender())
                            .expect("a test key");
                        let a = &mut accounts[i];
                        a.nonce = Nonce(a.nonce.0 + 1);
                        a.balance = Amount(
                            a.balance
                                .0
                                .saturating_sub(t.tx().total_cost().expect("admitted").0),
                        );
                        changed.push((t.sender(), *a));
                    }
                    let hashes: Vec<Hash> = block.iter().map(VerifiedTransaction::hash).collect();
                    p.on_commit(&hashes, &changed);
                }
                8 => {
                    // The balance drops or rises under the pool.
                    accounts[who].balance = Amount(rng.random_range(0..=scale));
                    p.on_commit(&[], &[(keys[who].address(), accounts[who])]);
                }
                9 => {
                    // Drop an entry from anywhere in some queue (leaves a nonce gap).
                    let mut hashes: Vec<Hash> = p.entries.keys().copied().collect();
                    hashes.sort_unstable_by_key(|h| h.0);
                    if !hashes.is_empty() {
                        let h = hashes[rng.random_range(0..hashes.len())];
                        p.drop_invalid(&h, TxError::BadSignature);
                    }
                }
                10 => {
                    now += Duration::from_secs(rng.random_range(0..1_200));
                    p.expire(now);
                }
                _ => {
                    // A rich outsider with a high fee: evicts other senders' tails.
                    let k = &keys[rng.random_range(0..keys.len())];
                    let i = keys.iter().position(|x| x.address() == k.address());
                    let i = i.expect("a key");
                    let nonce = accounts[i].nonce.0 + rng.random_range(0..3);
                    let r = admit_checked(
                        &mut p,
                        tx(k, nonce, 1, rng.random_range(5..20)),
                        &accounts[i],
                        now,
                        &ctx,
                    );
                    tally(&r, false);
                }
            }
            check(&p, &ctx);
        }
        eprintln!("scale {scale}: outcomes {seen:?}");
        for what in ["added", "funds", "replacement added", "replacement funds"] {
            assert!(
                seen.contains_key(what),
                "scale {scale}: no {what} in {seen:?}"
            );
        }
        if scale == u64::MAX {
            assert!(seen.contains_key("overflow"), "no overflow in {seen:?}");
        }
    }
}

/// Sums that land exactly on `u64::MAX` and one past it, with replacements that raise and lower
/// the cost there.
#[test]
fn review_costs_at_u64_max_are_admitted_or_refused_as_the_summing_rule_says() {
    let mut p = Pool::new(small_cfg());
    let k = Keypair::dev("review-max", 0);
    let now = Instant::now();
    let rich = acct(u64::MAX, 0);
    let max = u64::MAX;
    let ctx = "u64::MAX";
    // cost max - 5, then 5: the sum is exactly u64::MAX.
    assert_eq!(
        admit_checked(&mut p, tx(&k, 0, max - 6, 1), &rich, now, ctx),
        Ok(Admitted::Added)
    );
    assert_eq!(
        admit_checked(&mut p, tx(&k, 1, 4, 1), &rich, now, ctx),
        Ok(Admitted::Added)
    );
    assert_eq!(p.senders[&k.address()].cost, max);
    check(&p, ctx);
    // Two more units overflow.
    assert_eq!(
        admit_checked(&mut p, tx(&k, 2, 1, 1), &rich, now, ctx),
        Err(AdmitError::Tx(TxError::AmountOverflow))
    );
    // Replacing nonce 1 with cost 6 overflows; with cost 3 (fee 2, amount 1) fits.
    assert_eq!(
        admit_checked(&mut p, tx(&k, 1, 4, 2), &rich, now, ctx),
        Err(AdmitError::Tx(TxError::AmountOverflow))
    );
    assert_eq!(
        admit_checked(&mut p, tx(&k, 1, 1, 2), &rich, now, ctx),
        Ok(Admitted::Added)
    );
    assert_eq!(p.senders[&k.address()].cost, max - 2);
    check(&p, ctx);
    // Replacing nonce 0 (the big one) with a smaller one frees room for a new nonce.
    assert_eq!(
        admit_checked(&mut p, tx(&k, 0, 10, 2), &rich, now, ctx),
        Ok(Admitted::Added)
    );
    assert_eq!(p.senders[&k.address()].cost, 15);
    assert_eq!(
        admit_checked(&mut p, tx(&k, 2, max - 16, 1), &rich, now, ctx),
        Ok(Admitted::Added)
    );
    assert_eq!(p.senders[&k.address()].cost, max);
    check(&p, ctx);
    // The balance falls to the queue's head only: on_commit drops the rest, the cost follows.
    p.on_commit(&[], &[(k.address(), acct(12, 0))]);
    assert_eq!(p.senders[&k.address()].cost, 12);
    check(&p, ctx);
    // Against a lower balance than the pool was told, a replacement of the head that costs less
    // is still refused when the queue does not fit.
    assert_eq!(
        admit_checked(&mut p, tx(&k, 1, 1, 1), &acct(14, 0), now, ctx),
        Ok(Admitted::Added)
    );
    assert_eq!(
        admit_checked(&mut p, tx(&k, 0, 9, 3), &acct(12, 0), now, ctx),
        Err(AdmitError::Tx(TxError::InsufficientFunds {
            have: Amount(12),
            need: Amount(14)
        }))
    );
    check(&p, ctx);
}

/// A sender whose whole queue is replaced, evicted and re-admitted: the queue is dropped when it
/// empties and starts again from zero, never inheriting a stale sum.
#[test]
fn review_a_queue_emptied_by_replacement_eviction_and_expiry_restarts_from_zero() {
    let cfg = MempoolConfig {
        max_txs: 3,
        ..small_cfg()
    };
    let mut p = Pool::new(cfg);
    let poor = Keypair::dev("review-evict", 0);
    let rich = Keypair::dev("review-evict", 1);
    let now = Instant::now();
    let a = acct(1_000, 0);
    let ctx = "evict";
    for n in 0..3 {
        assert_eq!(
            admit_checked(&mut p, tx(&poor, n, 100, 1), &a, now, ctx),
            Ok(Admitted::Added)
        );
    }
    assert_eq!(p.senders[&poor.address()].cost, 303);
    // The rich sender evicts the poor one's tails one by one.
    for n in 0..3 {
        assert_eq!(
            admit_checked(&mut p, tx(&rich, n, 1, 10), &a, now, ctx),
            Ok(Admitted::Added)
        );
        check(&p, ctx);
    }
    assert!(!p.senders.contains_key(&poor.address()));
    // Back: a single replacement of a single entry empties and refills the queue.
    p.on_commit(&[], &[(rich.address(), acct(0, 0))]);
    check(&p, ctx);
    assert_eq!(
        admit_checked(&mut p, tx(&poor, 0, 990, 1), &a, now, ctx),
        Ok(Admitted::Added)
    );
    assert_eq!(
        admit_checked(&mut p, tx(&poor, 0, 998, 2), &a, now, ctx),
        Ok(Admitted::Added)
    );
    assert_eq!(p.senders[&poor.address()].cost, 1_000);
    assert_eq!(p.expire(now + Duration::from_secs(3_601)), 1);
    assert!(p.senders.is_empty());
    assert_eq!(
        admit_checked(&mut p, tx(&poor, 0, 999, 1), &a, now, ctx),
        Ok(Admitted::Added)
    );
    assert_eq!(p.senders[&poor.address()].cost, 1_000);
    check(&p, ctx);
}
