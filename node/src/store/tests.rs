use super::*;
use ledger_core::vote::CommitSig;
use ledger_core::{
    Amount, BlockHeader, ChainId, Keypair, Nonce, Round, Signature, TimestampMs, Transaction,
};

fn cfg() -> StoreConfig {
    StoreConfig::default()
}

fn chain() -> ChainId {
    ChainId::new("store-test").expect("valid")
}

fn block(height: u64, prev: Hash, txs: Vec<ledger_core::SignedTransaction>) -> Block {
    Block {
        header: BlockHeader {
            chain_id: chain(),
            height: Height(height),
            prev_hash: prev,
            timestamp_ms: TimestampMs(height * 1000),
            proposer: Keypair::dev("v", 0).address(),
            tx_root: Hash::ZERO,
            tx_count: txs.len() as u32,
            state_root: Hash::digest(&height.to_le_bytes()),
            last_commit_hash: Hash::ZERO,
        },
        last_commit: None,
        txs,
    }
}

fn cert(height: u64, hash: Hash) -> CommitCertificate {
    CommitCertificate {
        height: Height(height),
        round: Round(0),
        block_hash: hash,
        signatures: vec![CommitSig {
            validator: Keypair::dev("v", 0).address(),
            signature: Signature([7; 64]),
        }],
    }
}

fn transfer(n: u64) -> ledger_core::SignedTransaction {
    let k = Keypair::dev("s", 0);
    Transaction {
        chain_id: chain(),
        from: k.public(),
        to: Keypair::dev("r", 0).address(),
        amount: Amount(1),
        fee: Amount(1),
        nonce: Nonce(n),
        memo: vec![],
    }
    .sign(&k)
}

fn acct(b: u64, n: u64) -> Account {
    Account {
        balance: Amount(b),
        nonce: Nonce(n),
    }
}

fn commit(
    store: &Store,
    height: u64,
    prev: Hash,
    txs: Vec<ledger_core::SignedTransaction>,
) -> Hash {
    let b = block(height, prev, txs);
    let hash = b.hash();
    let tx_hashes: Vec<Hash> = b.txs.iter().map(|t| t.hash()).collect();
    let c = cert(height, hash);
    let accounts = vec![(Keypair::dev("s", 0).address(), acct(100 - height, height))];
    store
        .commit_block(&BlockCommit {
            block: &b,
            hash,
            commit: &c,
            tx_hashes: &tx_hashes,
            accounts: &accounts,
        })
        .expect("commits");
    hash
}

#[test]
fn commit_then_reopen_reads_everything_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let genesis = Hash::digest(b"genesis");
    let sender = Keypair::dev("s", 0).address();
    {
        let s = Store::open(dir.path(), &cfg()).expect("opens");
        assert!(
            s.init_genesis(genesis, &[(sender, acct(100, 0))])
                .expect("init")
        );
        assert_eq!(s.head_height().expect("head"), Height(0));
        let h1 = commit(&s, 1, genesis, vec![transfer(0)]);
        commit(&s, 2, h1, vec![transfer(1), transfer(2)]);
    }
    let s = Store::open(dir.path(), &cfg()).expect("reopens");
    assert!(!s.init_genesis(genesis, &[]).expect("already initialised"));
    assert_eq!(s.head_height().expect("head"), Height(2));
    let b2 = s
        .committed_block(Height(2))
        .expect("reads")
        .expect("present");
    assert_eq!(b2.block.txs.len(), 2);
    assert_eq!(b2.commit.block_hash, b2.block.hash());
    assert_eq!(
        s.height_of_hash(&b2.block.hash()).expect("reads"),
        Some(Height(2))
    );
    let t = transfer(2);
    let (stored, loc) = s.transaction(&t.hash()).expect("reads").expect("present");
    assert_eq!(stored, t);
    assert_eq!(
        loc,
        TxLocation {
            height: Height(2),
            index: 1
        }
    );
    assert_eq!(s.account(&sender).expect("reads"), Some(acct(98, 2)));
    assert_eq!(
        s.all_accounts().expect("reads"),
        vec![(sender, acct(98, 2))]
    );
    assert_eq!(s.block(Height(3)).expect("reads"), None);
}

#[test]
fn only_the_next_height_can_be_committed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Store::open(dir.path(), &cfg()).expect("opens");
    s.init_genesis(Hash::ZERO, &[]).expect("init");
    let b = block(2, Hash::ZERO, vec![]);
    let c = cert(2, b.hash());
    let e = s
        .commit_block(&BlockCommit {
            block: &b,
            hash: b.hash(),
            commit: &c,
            tx_hashes: &[],
            accounts: &[],
        })
        .expect_err("height 2 on head 0");
    assert!(matches!(e, StoreError::NotNext { .. }));
}

#[test]
fn another_chains_genesis_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Store::open(dir.path(), &cfg()).expect("opens");
    s.init_genesis(Hash::digest(b"a"), &[]).expect("init");
    assert!(matches!(
        s.init_genesis(Hash::digest(b"b"), &[]),
        Err(StoreError::GenesisMismatch { .. })
    ));
}

#[test]
fn undecodable_values_are_corruption_not_absence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Store::open(dir.path(), &cfg()).expect("opens");
    s.init_genesis(Hash::ZERO, &[]).expect("init");
    let h1 = commit(&s, 1, Hash::ZERO, vec![transfer(0)]);
    s.db.put_cf(s.cf(Table::Blocks), height_key(Height(1)), b"garbage")
        .expect("put");
    match s.block(Height(1)) {
        Err(StoreError::Corruption { table, key, .. }) => {
            assert_eq!(table, "blocks");
            assert_eq!(key, hex::encode(height_key(Height(1))));
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    s.db.put_cf(s.cf(Table::BlockHashes), h1.0, b"xyz")
        .expect("put");
    assert!(matches!(
        s.height_of_hash(&h1),
        Err(StoreError::Corruption {
            table: "block_hashes",
            ..
        })
    ));
    s.db.put_cf(s.cf(Table::Accounts), [1u8; 20], b"\x01")
        .expect("put");
    assert!(matches!(
        s.all_accounts(),
        Err(StoreError::Corruption {
            table: "accounts",
            ..
        })
    ));
    s.db.put_cf(s.cf(Table::Accounts), [1u8; 3], codec::encode(&acct(1, 1)))
        .expect("put");
    s.db.delete_cf(s.cf(Table::Accounts), [1u8; 20])
        .expect("delete");
    assert!(matches!(
        s.all_accounts(),
        Err(StoreError::Corruption {
            table: "accounts",
            ..
        })
    ));
}

#[test]
fn missing_certificate_of_a_stored_block_is_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Store::open(dir.path(), &cfg()).expect("opens");
    s.init_genesis(Hash::ZERO, &[]).expect("init");
    commit(&s, 1, Hash::ZERO, vec![]);
    s.db.delete_cf(s.cf(Table::Certs), height_key(Height(1)))
        .expect("delete");
    assert!(matches!(
        s.committed_block(Height(1)),
        Err(StoreError::Corruption { table: "certs", .. })
    ));
}

#[test]
fn wal_entries_are_per_height_in_order_and_pruned_by_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Store::open(dir.path(), &cfg()).expect("opens");
    s.init_genesis(Hash::ZERO, &[]).expect("init");
    s.wal_append(Height(1), 0, &7u64).expect("append");
    s.wal_append(Height(1), 1, &8u64).expect("append");
    s.wal_append(Height(2), 0, &9u64).expect("append");
    assert_eq!(
        s.wal_entries::<u64>(Height(1)).expect("reads"),
        vec![(0, 7), (1, 8)]
    );
    commit(&s, 1, Hash::ZERO, vec![]);
    assert!(s.wal_entries::<u64>(Height(1)).expect("reads").is_empty());
    assert_eq!(
        s.wal_entries::<u64>(Height(2)).expect("reads"),
        vec![(0, 9)]
    );
    s.wal_append(Height(2), 1, &vec![1u8, 2]).expect("append");
    assert!(matches!(
        s.wal_entries::<u64>(Height(2)),
        Err(StoreError::Corruption {
            table: "consensus_wal",
            ..
        })
    ));
}

#[test]
fn emptied_accounts_are_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Store::open(dir.path(), &cfg()).expect("opens");
    let a = Keypair::dev("s", 0).address();
    s.init_genesis(Hash::ZERO, &[(a, acct(5, 0))])
        .expect("init");
    let b = block(1, Hash::ZERO, vec![]);
    let c = cert(1, b.hash());
    s.commit_block(&BlockCommit {
        block: &b,
        hash: b.hash(),
        commit: &c,
        tx_hashes: &[],
        accounts: &[(a, Account::EMPTY)],
    })
    .expect("commits");
    assert!(s.all_accounts().expect("reads").is_empty());
}
