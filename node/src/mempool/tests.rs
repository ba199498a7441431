//! One test per mempool rule.

use super::*;
use ledger_core::{Keypair, Transaction};

fn chain() -> ChainId {
    ChainId::new("test-chain").expect("valid")
}

fn cfg() -> MempoolConfig {
    MempoolConfig {
        max_txs: 100,
        max_bytes: 1 << 20,
        max_txs_per_account: 50,
        nonce_window: 10,
        min_fee: 1,
        tx_ttl_secs: 60,
        rejected_cache_len: 100,
    }
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

#[test]
fn admits_a_valid_transaction_once() {
    let mut p = Pool::new(cfg());
    let k = Keypair::dev("a", 0);
    let t = tx(&k, 0, 10, 1);
    let now = Instant::now();
    assert_eq!(p.admit(t.clone(), &acct(100, 0), now), Ok(Admitted::Added));
    assert_eq!(
        p.admit(t.clone(), &acct(100, 0), now),
        Ok(Admitted::AlreadyPending)
    );
    assert_eq!(p.stats().txs, 1);
    assert!(matches!(p.status(&t.hash()), PoolStatus::Pending(_)));
}

#[test]
fn nonce_below_the_account_is_too_low_and_beyond_the_window_too_high() {
    let mut p = Pool::new(cfg());
    let k = Keypair::dev("a", 0);
    let now = Instant::now();
    assert_eq!(
        p.admit(tx(&k, 4, 10, 1), &acct(100, 5), now),
        Err(AdmitError::Tx(TxError::NonceTooLow {
            expected: Nonce(5),
            got: Nonce(4)
        }))
    );
    assert_eq!(
        p.admit(tx(&k, 16, 10, 1), &acct(100, 5), now),
        Err(AdmitError::Tx(TxError::NonceTooHigh {
            expected: Nonce(5),
            got: Nonce(16)
        }))
    );
    // The window's edge is inside.
    assert_eq!(
        p.admit(tx(&k, 15, 10, 1), &acct(100, 5), now),
        Ok(Admitted::Added)
    );
}

#[test]
fn balance_must_cover_all_pending_transactions_of_the_sender() {
    let mut p = Pool::new(cfg());
    let k = Keypair::dev("a", 0);
    let now = Instant::now();
    let a = acct(25, 0);
    assert!(p.admit(tx(&k, 0, 10, 1), &a, now).is_ok());
    assert!(p.admit(tx(&k, 1, 10, 1), &a, now).is_ok());
    let t = tx(&k, 2, 10, 1);
    assert_eq!(
        p.admit(t.clone(), &a, now),
        Err(AdmitError::Tx(TxError::InsufficientFunds {
            have: Amount(25),
            need: Amount(33)
        }))
    );
    // And the rejection is remembered for the status query.
    assert_eq!(
        p.status(&t.hash()),
        PoolStatus::Rejected(TxError::InsufficientFunds {
            have: Amount(25),
            need: Amount(33)
        })
    );
}

#[test]
fn fee_below_the_minimum_is_refused() {
    let mut p = Pool::new(MempoolConfig {
        min_fee: 5,
        ..cfg()
    });
    let k = Keypair::dev("a", 0);
    assert_eq!(
        p.admit(tx(&k, 0, 10, 4), &acct(100, 0), Instant::now()),
        Err(AdmitError::Tx(TxError::FeeTooLow {
            min: Amount(5),
            got: Amount(4)
        }))
    );
}

#[test]
fn same_nonce_with_a_higher_fee_replaces_and_with_a_lower_fee_is_refused() {
    let mut p = Pool::new(cfg());
    let k = Keypair::dev("a", 0);
    let now = Instant::now();
    let a = acct(100, 0);
    let first = tx(&k, 0, 10, 2);
    assert!(p.admit(first.clone(), &a, now).is_ok());
    assert_eq!(
        p.admit(tx(&k, 0, 11, 2), &a, now),
        Err(AdmitError::Tx(TxError::FeeTooLow {
            min: Amount(3),
            got: Amount(2)
        }))
    );
    let better = tx(&k, 0, 10, 5);
    assert_eq!(p.admit(better.clone(), &a, now), Ok(Admitted::Added));
    assert_eq!(p.stats().txs, 1);
    // The first one was valid: dropped (not rejected), naming its replacement.
    assert_eq!(
        p.status(&first.hash()),
        PoolStatus::Dropped(DropReason::Replaced { by: better.hash() })
    );
    assert_eq!(p.candidates(10, 1 << 20)[0].hash(), better.hash());
    assert_eq!(p.check_invariants(), Ok(()));
}

#[test]
fn replacement_balance_check_excludes_the_replaced_transaction() {
    let mut p = Pool::new(cfg());
    let k = Keypair::dev("a", 0);
    let now = Instant::now();
    let a = acct(20, 0);
    assert!(p.admit(tx(&k, 0, 10, 1), &a, now).is_ok());
    // 10 + 8 = 18 <= 20 once the first one (11) no longer counts.
    assert_eq!(p.admit(tx(&k, 0, 10, 8), &a, now), Ok(Admitted::Added));
}

#[test]
fn full_pool_evicts_the_lowest_fee_tail_for_a_higher_fee() {
    let mut p = Pool::new(MempoolConfig {
        max_txs: 3,
        ..cfg()
    });
    let now = Instant::now();
    let (a, b, c, d) = (
        Keypair::dev("a", 0),
        Keypair::dev("b", 0),
        Keypair::dev("c", 0),
        Keypair::dev("d", 0),
    );
    let rich = acct(1000, 0);
    assert!(p.admit(tx(&a, 0, 10, 5), &rich, now).is_ok());
    let cheap_tail = tx(&a, 1, 10, 2);
    assert!(p.admit(cheap_tail.clone(), &rich, now).is_ok());
    assert!(p.admit(tx(&b, 0, 10, 3), &rich, now).is_ok());
    // Not better than the cheapest tail (a's nonce 1 at fee 2): refused as full.
    assert!(matches!(
        p.admit(tx(&c, 0, 10, 2), &rich, now),
        Err(AdmitError::Full { .. })
    ));
    // Better: evicts a's tail (nonce 1), never a's nonce 0 in front of it.
    assert_eq!(p.admit(tx(&d, 0, 10, 4), &rich, now), Ok(Admitted::Added));
    assert_eq!(p.stats().txs, 3);
    // Dropped with the fee that needed the room; the one refused as full is not remembered.
    assert_eq!(
        p.status(&cheap_tail.hash()),
        PoolStatus::Dropped(DropReason::Evicted { by_fee: Amount(4) })
    );
    assert_eq!(p.status(&tx(&c, 0, 10, 2).hash()), PoolStatus::Unknown);
    let cands = p.candidates(10, 1 << 20);
    assert_eq!(cands.len(), 3);
    assert_eq!(p.check_invariants(), Ok(()));
}

#[test]
fn an_evicted_transaction_sent_again_is_pending_again() {
    let mut p = Pool::new(MempoolConfig {
        max_txs: 1,
        ..cfg()
    });
    let now = Instant::now();
    let (a, b) = (Keypair::dev("a", 0), Keypair::dev("b", 0));
    let rich = acct(1000, 0);
    let cheap = tx(&a, 0, 10, 1);
    assert!(p.admit(cheap.clone(), &rich, now).is_ok());
    let dear = tx(&b, 0, 10, 9);
    assert!(p.admit(dear.clone(), &rich, now).is_ok());
    assert_eq!(
        p.status(&cheap.hash()),
        PoolStatus::Dropped(DropReason::Evicted { by_fee: Amount(9) })
    );
    // Room again once the dearer one is committed: the same bytes are admitted afresh.
    p.on_commit(&[dear.hash()], &[(b.address(), acct(990, 1))]);
    assert_eq!(p.admit(cheap.clone(), &rich, now), Ok(Admitted::Added));
    assert!(matches!(p.status(&cheap.hash()), PoolStatus::Pending(_)));
}

#[test]
fn byte_cap_is_enforced() {
    let k = Keypair::dev("a", 0);
    let size = tx(&k, 0, 10, 1).encoded_len();
    let mut p = Pool::new(MempoolConfig {
        max_bytes: size * 2,
        ..cfg()
    });
    let now = Instant::now();
    let rich = acct(1000, 0);
    assert!(p.admit(tx(&k, 0, 10, 1), &rich, now).is_ok());
    assert!(p.admit(tx(&k, 1, 10, 1), &rich, now).is_ok());
    assert!(matches!(
        p.admit(tx(&k, 2, 10, 1), &rich, now),
        Err(AdmitError::Full { .. })
    ));
    assert!(p.stats().bytes <= size * 2);
}

#[test]
fn per_sender_cap_is_enforced() {
    let mut p = Pool::new(MempoolConfig {
        max_txs_per_account: 2,
        ..cfg()
    });
    let k = Keypair::dev("a", 0);
    let now = Instant::now();
    let rich = acct(1000, 0);
    assert!(p.admit(tx(&k, 0, 10, 1), &rich, now).is_ok());
    assert!(p.admit(tx(&k, 1, 10, 1), &rich, now).is_ok());
    assert_eq!(
        p.admit(tx(&k, 2, 10, 1), &rich, now),
        Err(AdmitError::SenderFull { max: 2 })
    );
}

#[test]
fn candidates_keep_nonce_order_per_sender_and_stop_at_gaps() {
    let mut p = Pool::new(cfg());
    let now = Instant::now();
    let (a, b) = (Keypair::dev("a", 0), Keypair::dev("b", 0));
    let rich = acct(1000, 0);
    // a: nonces 0 (fee 1), 1 (fee 9); b: nonce 0 (fee 5), nonce 2 (gap at 1).
    for t in [
        tx(&a, 1, 10, 9),
        tx(&a, 0, 10, 1),
        tx(&b, 0, 10, 5),
        tx(&b, 2, 10, 50),
    ] {
        assert!(p.admit(t, &rich, now).is_ok());
    }
    let c = p.candidates(10, 1 << 20);
    let order: Vec<(Address, u64)> = c.iter().map(|t| (t.sender(), t.tx().nonce.0)).collect();
    // b's nonce 0 (fee 5) beats a's head (fee 1); a's nonce 1 comes after a's nonce 0; b's nonce 2
    // waits for the gap.
    assert_eq!(
        order,
        vec![(b.address(), 0), (a.address(), 0), (a.address(), 1)]
    );
    assert_eq!(p.candidates(2, 1 << 20).len(), 2);
    assert_eq!(p.next_nonce(&a.address()), Some(Nonce(2)));
    assert_eq!(p.next_nonce(&b.address()), Some(Nonce(1)));
    assert_eq!(p.next_nonce(&Keypair::dev("z", 0).address()), None);
}

#[test]
fn commit_drops_included_and_stale_and_unaffordable_transactions() {
    let mut p = Pool::new(cfg());
    let now = Instant::now();
    let k = Keypair::dev("a", 0);
    let a = acct(100, 0);
    let t0 = tx(&k, 0, 10, 1);
    let t1 = tx(&k, 1, 10, 1);
    let t2 = tx(&k, 2, 10, 1);
    let t3 = tx(&k, 3, 10, 1);
    for t in [&t0, &t1, &t2, &t3] {
        assert!(p.admit(t.clone(), &a, now).is_ok());
    }
    // Block includes t0 only; another tx (not ours) used nonce 1 and drained the balance to 15.
    let dropped = p.on_commit(&[t0.hash()], &[(k.address(), acct(15, 2))]);
    // t1 is stale (nonce 1 < 2); t2 fits (11 <= 15); t3 does not (22 > 15).
    assert_eq!(dropped.len(), 2);
    assert!(matches!(
        p.status(&t1.hash()),
        PoolStatus::Rejected(TxError::NonceTooLow { .. })
    ));
    assert!(matches!(
        p.status(&t3.hash()),
        PoolStatus::Rejected(TxError::InsufficientFunds { .. })
    ));
    assert!(matches!(p.status(&t2.hash()), PoolStatus::Pending(_)));
    assert_eq!(p.status(&t0.hash()), PoolStatus::Unknown);
    assert_eq!(p.candidates(10, 1 << 20).len(), 1);
}

#[test]
fn a_transaction_block_building_finds_invalid_stays_rejected() {
    let mut p = Pool::new(cfg());
    let k = Keypair::dev("a", 0);
    let t = tx(&k, 0, 10, 1);
    assert!(p.admit(t.clone(), &acct(100, 0), Instant::now()).is_ok());
    let reason = TxError::NonceTooLow {
        expected: Nonce(1),
        got: Nonce(0),
    };
    p.drop_invalid(&t.hash(), reason.clone());
    assert_eq!(p.status(&t.hash()), PoolStatus::Rejected(reason));
    assert_eq!(p.stats(), PoolStats::default());
}

#[test]
fn expired_transactions_leave() {
    let mut p = Pool::new(MempoolConfig {
        tx_ttl_secs: 10,
        ..cfg()
    });
    let (k, j) = (Keypair::dev("a", 0), Keypair::dev("b", 0));
    let t0 = Instant::now();
    // One waits behind a nonce gap, the other is next in line but never made it into a block.
    let gap = tx(&k, 1, 10, 1);
    let next = tx(&j, 0, 10, 1);
    assert!(p.admit(gap.clone(), &acct(100, 0), t0).is_ok());
    assert!(p.admit(next.clone(), &acct(100, 0), t0).is_ok());
    assert_eq!(p.expire(t0 + Duration::from_secs(5)), 0);
    assert_eq!(p.expire(t0 + Duration::from_secs(11)), 2);
    assert_eq!(p.stats(), PoolStats::default());
    for t in [&gap, &next] {
        assert_eq!(
            p.status(&t.hash()),
            PoolStatus::Dropped(DropReason::Expired { ttl_secs: 10 })
        );
    }
    assert_eq!(p.check_invariants(), Ok(()));
}

#[test]
fn rejection_memory_is_bounded() {
    let mut p = Pool::new(MempoolConfig {
        rejected_cache_len: 3,
        ..cfg()
    });
    let hashes: Vec<Hash> = (0..5u8).map(|i| Hash::digest(&[i])).collect();
    for h in &hashes {
        p.record_rejected(*h, TxError::BadSignature);
    }
    assert_eq!(p.status(&hashes[0]), PoolStatus::Unknown);
    assert_eq!(
        p.status(&hashes[4]),
        PoolStatus::Rejected(TxError::BadSignature)
    );
    assert!(p.rejected.map.len() <= 3);
    // Drops share the same bound.
    let dropped = Hash::digest(b"dropped");
    p.rejected
        .note_dropped(dropped, DropReason::Expired { ttl_secs: 60 });
    assert_eq!(p.status(&hashes[2]), PoolStatus::Unknown);
    assert!(matches!(p.status(&dropped), PoolStatus::Dropped(_)));
    assert!(p.rejected.map.len() <= 3);
}

#[test]
fn candidates_respect_the_byte_budget() {
    let mut p = Pool::new(cfg());
    let k = Keypair::dev("a", 0);
    let now = Instant::now();
    let rich = acct(1000, 0);
    let size = tx(&k, 0, 10, 1).encoded_len();
    for n in 0..5 {
        assert!(p.admit(tx(&k, n, 10, 1), &rich, now).is_ok());
    }
    assert_eq!(p.candidates(100, size * 3).len(), 3);
}

#[test]
fn batch_verification_reports_bad_signatures_in_place() {
    let k = Keypair::dev("a", 0);
    let mut txs: Vec<SignedTransaction> = (0..20).map(|n| tx(&k, n, 10, 1).into_signed()).collect();
    txs[7].tx.amount = Amount(999);
    let out = verify_batch(txs, &chain());
    assert_eq!(out.iter().filter(|r| r.is_err()).count(), 1);
    assert!(matches!(out[7], Err((_, TxError::BadSignature))));
}

/// Random admit / commit / expire / evict / drop sequences over a small pool (so the caps and
/// the eviction and replacement paths are hit often); after every step the pool's indexes agree
/// with each other ([`Pool::check_invariants`]). Seeded: `LEDGER_TEST_SEED` replays a failure.
#[test]
fn random_admit_commit_evict_expire_sequences_keep_every_index_consistent() {
    use rand::{RngExt, SeedableRng};
    let seed = std::env::var("LEDGER_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(7, |d| d.as_nanos() as u64)
        });
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let small = MempoolConfig {
        max_txs: 24,
        max_txs_per_account: 8,
        nonce_window: 6,
        // Long enough that expiry seldom clears the age queue's front: the queue must stay
        // bounded by compaction, whatever the removals behind its front.
        tx_ttl_secs: 3_600,
        rejected_cache_len: 16,
        ..cfg()
    };
    let mut p = Pool::new(small);
    let keys: Vec<Keypair> = (0..6).map(|i| Keypair::dev("mempool-prop", i)).collect();
    // What the "chain" says about each account.
    let mut accounts: Vec<Account> = (0..keys.len()).map(|_| acct(1_000, 0)).collect();
    let start = Instant::now();
    let mut now = start;
    for step in 0..3_000 {
        let who = rng.random_range(0..keys.len());
        match rng.random_range(0..10) {
            0..=5 => {
                let nonce = accounts[who].nonce.0 + rng.random_range(0..8);
                let fee = rng.random_range(1..6);
                let amount = rng.random_range(1..300);
                let _ = p.admit(tx(&keys[who], nonce, amount, fee), &accounts[who], now);
            }
            6 => {
                // A block: the next nonces of some senders, as the candidates give them.
                let block = p.candidates(rng.random_range(1..10), usize::MAX);
                let mut changed = Vec::new();
                for t in &block {
                    let i = keys
                        .iter()
                        .position(|k| k.address() == t.sender())
                        .expect("a test key");
                    let a = &mut accounts[i];
                    a.nonce = Nonce(a.nonce.0 + 1);
                    a.balance = Amount(a.balance.0.saturating_sub(t.tx().amount.0 + t.tx().fee.0));
                    changed.push((t.sender(), *a));
                }
                let hashes: Vec<Hash> = block.iter().map(VerifiedTransaction::hash).collect();
                p.on_commit(&hashes, &changed);
            }
            7 => {
                now += Duration::from_millis(rng.random_range(0..600_000));
                p.expire(now);
            }
            8 => {
                // Another sender's account changes under the pool (a transfer paid to it).
                accounts[who].balance = Amount(rng.random_range(0..2_000));
                p.on_commit(&[], &[(keys[who].address(), accounts[who])]);
            }
            _ => {
                if let Some(t) = p.candidates(1, usize::MAX).first() {
                    p.drop_invalid(&t.hash(), TxError::BadSignature);
                }
            }
        }
        if let Err(e) = p.check_invariants() {
            panic!("step {step}: {e} (replay with LEDGER_TEST_SEED={seed})");
        }
    }
}

/// The checker can fail: each corruption of one index is reported.
#[test]
fn the_invariant_checker_reports_a_corrupted_index() {
    let corrupted = |corrupt: &dyn Fn(&mut Pool)| {
        let mut p = Pool::new(cfg());
        let now = Instant::now();
        for i in 0..3 {
            let k = Keypair::dev("a", i);
            for n in 0..3 {
                assert!(p.admit(tx(&k, n, 10, 1), &acct(1_000, 0), now).is_ok());
            }
        }
        assert_eq!(p.check_invariants(), Ok(()));
        corrupt(&mut p);
        p.check_invariants()
    };
    assert!(corrupted(&|p| p.bytes += 1).is_err(), "bytes");
    assert!(
        corrupted(&|p| {
            let q = p.senders.values_mut().next().expect("a sender");
            q.cost -= 1;
        })
        .is_err(),
        "a sender's queued cost"
    );
    assert!(
        corrupted(&|p| {
            p.tails.pop_first();
        })
        .is_err(),
        "tails"
    );
    assert!(
        corrupted(&|p| {
            p.by_age.pop_back();
        })
        .is_err(),
        "age queue"
    );
    assert!(
        corrupted(&|p| {
            let h = *p.entries.keys().next().expect("an entry");
            p.entries.remove(&h);
        })
        .is_err(),
        "entries"
    );
    assert!(
        corrupted(&|p| {
            for _ in 0..300 {
                p.by_age.push_back((u64::MAX, Hash::ZERO));
            }
        })
        .is_err(),
        "an unbounded age queue"
    );
    assert!(
        corrupted(&|p| {
            let h = *p.entries.keys().next().expect("an entry");
            p.rejected
                .note_dropped(h, DropReason::Expired { ttl_secs: 60 });
        })
        .is_err(),
        "a pending transaction remembered as dropped"
    );
}
