use super::*;
use ledger_core::vote::CommitSig;
use ledger_core::{
    Amount, BlockHeader, ChainId, Keypair, Nonce, Round, Signature, TimestampMs, Transaction,
};

fn cfg() -> StoreConfig {
    StoreConfig::default()
}

/// The state writes of a block that changes `accounts` (its tree part empty: these tests are
/// about the block tables; the tree has its own tests).
fn writes(height: u64, accounts: &[(Address, Account)]) -> StateWrites {
    StateWrites {
        height: Height(height),
        version: height,
        root: Hash::ZERO,
        accounts: accounts.to_vec(),
        tree: Default::default(),
    }
}

/// Initialises `s` with `accounts` at genesis, as the node does (`false`: it already was).
fn init(s: &Store, genesis: Hash, accounts: &[(Address, Account)]) -> Result<bool, StoreError> {
    if s.check_genesis(genesis)? {
        return Ok(false);
    }
    StateStore::write(s, &writes(0, accounts)).map_err(|e| StoreError::Corruption {
        table: "state",
        key: String::new(),
        reason: e.to_string(),
    })?;
    s.init_genesis(genesis, 0)?;
    Ok(true)
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
    let accounts = writes(
        height,
        &[(Keypair::dev("s", 0).address(), acct(100 - height, height))],
    );
    store
        .commit_block(&BlockCommit {
            block: &b,
            hash,
            commit: &c,
            tx_hashes: &tx_hashes,
            state: &accounts,
        })
        .expect("commits");
    hash
}

#[test]
fn cache_only_account_reads_answer_from_memory_or_say_they_need_io() {
    let dir = tempfile::tempdir().expect("tempdir");
    let genesis = Hash::digest(b"genesis");
    let sender = Keypair::dev("s", 0).address();
    let stranger = Keypair::dev("never-funded", 0).address();
    {
        let s = Store::open(dir.path(), &cfg()).expect("opens");
        init(&s, genesis, &[(sender, acct(100, 0))]).expect("init");
        commit(&s, 1, genesis, vec![transfer(0)]);
        // Fresh writes sit in the memtable: answered without I/O, present or absent.
        assert_eq!(
            s.account_if_cached(&sender).expect("reads"),
            Some(Some(acct(99, 1)))
        );
        assert_eq!(s.account_if_cached(&stranger).expect("reads"), Some(None));
        // Into a table file, so the reopened store must read it from disk.
        s.db.flush_cf(s.cf(Table::Accounts)).expect("flush");
    }
    let s = Store::open(dir.path(), &cfg()).expect("reopens");
    // A cold block cache: the cache-only read refuses instead of doing I/O ...
    assert_eq!(s.account_if_cached(&sender).expect("reads"), None);
    // ... the full read does it and warms the cache ...
    assert_eq!(s.account(&sender).expect("reads"), Some(acct(99, 1)));
    // ... after which memory answers.
    assert_eq!(
        s.account_if_cached(&sender).expect("reads"),
        Some(Some(acct(99, 1)))
    );
}

#[test]
fn commit_then_reopen_reads_everything_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let genesis = Hash::digest(b"genesis");
    let sender = Keypair::dev("s", 0).address();
    {
        let s = Store::open(dir.path(), &cfg()).expect("opens");
        assert!(init(&s, genesis, &[(sender, acct(100, 0))]).expect("init"));
        assert_eq!(s.head_height().expect("head"), Height(0));
        let h1 = commit(&s, 1, genesis, vec![transfer(0)]);
        commit(&s, 2, h1, vec![transfer(1), transfer(2)]);
    }
    let s = Store::open(dir.path(), &cfg()).expect("reopens");
    assert!(!init(&s, genesis, &[]).expect("already initialised"));
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
    init(&s, Hash::ZERO, &[]).expect("init");
    let b = block(2, Hash::ZERO, vec![]);
    let c = cert(2, b.hash());
    let e = s
        .commit_block(&BlockCommit {
            block: &b,
            hash: b.hash(),
            commit: &c,
            tx_hashes: &[],
            state: &writes(2, &[]),
        })
        .expect_err("height 2 on head 0");
    assert!(matches!(e, StoreError::NotNext { .. }));
}

#[test]
fn another_chains_genesis_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Store::open(dir.path(), &cfg()).expect("opens");
    init(&s, Hash::digest(b"a"), &[]).expect("init");
    assert!(matches!(
        init(&s, Hash::digest(b"b"), &[]),
        Err(StoreError::GenesisMismatch { .. })
    ));
}

#[test]
fn undecodable_values_are_corruption_not_absence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Store::open(dir.path(), &cfg()).expect("opens");
    init(&s, Hash::ZERO, &[]).expect("init");
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
    init(&s, Hash::ZERO, &[]).expect("init");
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
    init(&s, Hash::ZERO, &[]).expect("init");
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
fn wal_entries_of_committed_heights_are_dropped_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let s = Store::open(dir.path(), &cfg()).expect("opens");
        init(&s, Hash::ZERO, &[]).expect("init");
        commit(&s, 1, Hash::ZERO, vec![]);
        // As a crash of a version that pruned differently could leave them: below the head.
        s.wal_append(Height(1), 0, &1u64).expect("append");
        s.wal_append(Height(2), 0, &2u64).expect("append");
    }
    let s = Store::open(dir.path(), &cfg()).expect("reopens");
    assert!(s.wal_entries::<u64>(Height(1)).expect("reads").is_empty());
    assert_eq!(
        s.wal_entries::<u64>(Height(2)).expect("reads"),
        vec![(0, 2)],
        "the height being decided keeps its entries"
    );
}

#[test]
fn emptied_accounts_are_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Store::open(dir.path(), &cfg()).expect("opens");
    let a = Keypair::dev("s", 0).address();
    init(&s, Hash::ZERO, &[(a, acct(5, 0))]).expect("init");
    let b = block(1, Hash::ZERO, vec![]);
    let c = cert(1, b.hash());
    s.commit_block(&BlockCommit {
        block: &b,
        hash: b.hash(),
        commit: &c,
        tx_hashes: &[],
        state: &writes(1, &[(a, Account::EMPTY)]),
    })
    .expect("commits");
    assert!(s.all_accounts().expect("reads").is_empty());
}

fn transfer_between(from: &Keypair, to: Address, nonce: u64) -> ledger_core::SignedTransaction {
    Transaction {
        chain_id: chain(),
        from: from.public(),
        to,
        amount: Amount(1),
        fee: Amount(1),
        nonce: Nonce(nonce),
        memo: vec![],
    }
    .sign(from)
}

fn locations(page: &AccountTxPage<AccountTxRef>) -> Vec<(u64, u32)> {
    page.txs
        .iter()
        .map(|t| (t.location.height.0, t.location.index))
        .collect()
}

fn at(height: u64, index: u32) -> Option<TxLocation> {
    Some(TxLocation {
        height: Height(height),
        index,
    })
}

#[test]
fn account_index_lists_newest_first_and_pages_with_a_cursor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Store::open(dir.path(), &cfg()).expect("opens");
    init(&s, Hash::ZERO, &[]).expect("init");
    let (alice, bob, carol) = (
        Keypair::dev("s", 0),
        Keypair::dev("r", 0),
        Keypair::dev("c", 0),
    );
    let self_transfer = transfer_between(&alice, alice.address(), 1);
    let h1 = commit(
        &s,
        1,
        Hash::ZERO,
        vec![
            transfer_between(&alice, bob.address(), 0),
            self_transfer.clone(),
        ],
    );
    let h2 = commit(&s, 2, h1, vec![]);
    let carol_to_bob = transfer_between(&carol, bob.address(), 0);
    commit(
        &s,
        3,
        h2,
        vec![
            carol_to_bob.clone(),
            transfer_between(&alice, carol.address(), 2),
        ],
    );

    let all = s.account_txs(&alice.address(), None, 10).expect("reads");
    // Newest first; the transfer to herself is listed once.
    assert_eq!(locations(&all), vec![(3, 1), (1, 1), (1, 0)]);
    assert_eq!(all.next, None);
    assert_eq!(all.txs[1].hash, self_transfer.hash());
    let bob_page = s.account_txs(&bob.address(), None, 10).expect("reads");
    assert_eq!(locations(&bob_page), vec![(3, 0), (1, 0)]);
    assert_eq!(bob_page.txs[0].hash, carol_to_bob.hash());
    let carol_page = s.account_txs(&carol.address(), None, 10).expect("reads");
    assert_eq!(locations(&carol_page), vec![(3, 1), (3, 0)]);
    let nobody = Keypair::dev("nobody", 0).address();
    assert!(
        s.account_txs(&nobody, None, 10)
            .expect("reads")
            .txs
            .is_empty()
    );

    // Pages of two: the cursor is the last entry shown, exclusive.
    let first = s.account_txs(&alice.address(), None, 2).expect("reads");
    assert_eq!(locations(&first), vec![(3, 1), (1, 1)]);
    assert_eq!(first.next, at(1, 1));
    let second = s
        .account_txs(&alice.address(), first.next, 2)
        .expect("reads");
    assert_eq!(locations(&second), vec![(1, 0)]);
    assert_eq!(second.next, None);
    // A page that ends exactly at the oldest entry says there is no more.
    let exact = s.account_txs(&alice.address(), None, 3).expect("reads");
    assert_eq!((exact.txs.len(), exact.next), (3, None));
    // Any position works as a cursor, also one between or past the entries.
    let mid = s
        .account_txs(&alice.address(), at(3, 0), 10)
        .expect("reads");
    assert_eq!(locations(&mid), vec![(1, 1), (1, 0)]);
    let past = s
        .account_txs(&alice.address(), at(99, 0), 10)
        .expect("reads");
    assert_eq!(locations(&past), locations(&all));
    assert!(
        s.account_txs(&alice.address(), at(1, 0), 10)
            .expect("reads")
            .txs
            .is_empty()
    );

    // With contents: the block's transaction and time.
    let full = s
        .account_transactions(&alice.address(), None, 10)
        .expect("reads");
    assert_eq!(full.txs.len(), 3);
    assert_eq!(full.txs[1].tx, self_transfer);
    assert_eq!(full.txs[1].timestamp_ms, TimestampMs(1000));
    assert_eq!(full.txs[0].timestamp_ms, TimestampMs(3000));
    assert!(full.txs.iter().all(|t| t.tx.hash() == t.hash));
}

#[test]
fn account_index_pages_are_capped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Store::open(dir.path(), &cfg()).expect("opens");
    init(&s, Hash::ZERO, &[]).expect("init");
    let n = MAX_ACCOUNT_TXS as u64 + 5;
    commit(&s, 1, Hash::ZERO, (0..n).map(transfer).collect());
    let sender = Keypair::dev("s", 0).address();
    let page = s.account_txs(&sender, None, usize::MAX).expect("reads");
    assert_eq!(page.txs.len(), MAX_ACCOUNT_TXS);
    assert_eq!(page.next, at(1, 5));
    let rest = s
        .account_txs(&sender, page.next, usize::MAX)
        .expect("reads");
    assert_eq!(
        locations(&rest),
        (0..5).rev().map(|i| (1, i)).collect::<Vec<_>>()
    );
    assert!(
        s.account_txs(&sender, None, 0)
            .expect("reads")
            .txs
            .is_empty()
    );
}

#[test]
fn account_index_entries_that_do_not_match_are_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Store::open(dir.path(), &cfg()).expect("opens");
    init(&s, Hash::ZERO, &[]).expect("init");
    commit(&s, 1, Hash::ZERO, vec![transfer(0)]);
    let sender = Keypair::dev("s", 0).address();
    let key = tables::account_tx_key(&sender, Height(1), 0);
    s.db.put_cf(s.cf(Table::AccountTxs), key, [9u8; 32])
        .expect("put");
    assert!(matches!(
        s.account_transactions(&sender, None, 10),
        Err(StoreError::Corruption {
            table: "account_txs",
            ..
        })
    ));
    s.db.put_cf(s.cf(Table::AccountTxs), key, b"short")
        .expect("put");
    assert!(matches!(
        s.account_txs(&sender, None, 10),
        Err(StoreError::Corruption {
            table: "account_txs",
            ..
        })
    ));
    // An entry pointing at a block that is not there.
    let ahead = tables::account_tx_key(&sender, Height(7), 0);
    s.db.put_cf(s.cf(Table::AccountTxs), ahead, transfer(0).hash().0)
        .expect("put");
    assert!(matches!(
        s.account_transactions(&sender, None, 1),
        Err(StoreError::Corruption {
            table: "account_txs",
            ..
        })
    ));
}

#[test]
fn a_data_dir_without_the_account_index_is_indexed_when_opened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sender = Keypair::dev("s", 0).address();
    let recipient = Keypair::dev("r", 0).address();
    {
        let mut s = Store::open(dir.path(), &cfg()).expect("opens");
        init(&s, Hash::ZERO, &[]).expect("init");
        let h1 = commit(&s, 1, Hash::ZERO, vec![transfer(0)]);
        let h2 = commit(&s, 2, h1, vec![]);
        commit(&s, 3, h2, vec![transfer(1), transfer(2)]);
        // What a node from before the index left behind: no table, no progress marker.
        s.db.delete_cf(s.cf(Table::Meta), tables::META_ACCOUNT_TXS_HEIGHT)
            .expect("delete");
        s.db.drop_cf(Table::AccountTxs.name()).expect("drop");
    }
    let cfs = DB::list_cf(&Options::default(), dir.path()).expect("lists");
    assert!(
        !cfs.iter().any(|c| c == Table::AccountTxs.name()),
        "{cfs:?}"
    );

    let s = Store::open(dir.path(), &cfg()).expect("reopens and indexes");
    let page = s.account_txs(&sender, None, 10).expect("reads");
    assert_eq!(locations(&page), vec![(3, 1), (3, 0), (1, 0)]);
    assert_eq!(page.txs[0].hash, transfer(2).hash());
    let page = s.account_txs(&recipient, None, 10).expect("reads");
    assert_eq!(locations(&page), vec![(3, 1), (3, 0), (1, 0)]);
    assert_eq!(
        s.get_meta(tables::META_ACCOUNT_TXS_HEIGHT).expect("reads"),
        Some(height_key(Height(3)).to_vec())
    );
    // And new blocks keep it up to date.
    let h3 = s.block(Height(3)).expect("reads").expect("present").hash();
    commit(&s, 4, h3, vec![transfer(3)]);
    let page = s.account_txs(&sender, None, 1).expect("reads");
    assert_eq!((locations(&page), page.next), (vec![(4, 0)], at(4, 0)));
}
