//! Review of ZIP-215 batch admission (commit 4cbb9f9): `mempool::verify_batch` gives each
//! transaction its own verdict, aligned with the input, when some fail the stateless prechecks
//! before the signatures are batched and others carry bad or hostile signatures.

use ledger_core::crypto::{Keypair, PublicKey, Signature};
use ledger_core::{Amount, ChainId, Nonce, SignedTransaction, Transaction};
use node::mempool::verify_batch;

fn chain() -> ChainId {
    ChainId::new("batch-review").expect("valid")
}

fn tx(i: usize, chain_id: &ChainId) -> SignedTransaction {
    let key = Keypair::dev("batch-review", (i % 5) as u32);
    Transaction {
        chain_id: chain_id.clone(),
        from: key.public(),
        to: Keypair::dev("recipient", 0).address(),
        amount: Amount(1 + i as u64),
        fee: Amount(1),
        nonce: Nonce(i as u64),
        memo: vec![],
    }
    .sign(&key)
}

#[test]
fn batch_review_verify_batch_keeps_verdicts_aligned_with_prechecks_and_bad_signatures() {
    let other = ChainId::new("other-chain").expect("valid");
    let n = 200;
    let mut txs: Vec<SignedTransaction> = (0..n).map(|i| tx(i, &chain())).collect();
    for i in (0..n).step_by(9) {
        txs[i] = tx(i, &other); // fails the precheck (wrong chain)
    }
    for i in [1usize, 63, 64, 65, 100, 127, 128, 199] {
        txs[i].signature.0[50] ^= 4;
    }
    txs[70].tx.from = PublicKey([0xff; 32]); // a key that does not decode
    txs[71].signature = Signature([0; 64]);
    let expected: Vec<Result<_, _>> = txs
        .iter()
        .map(|t| t.clone().verify(&chain()).map_err(|e| (t.hash(), e)))
        .collect();
    for _ in 0..3 {
        let got = verify_batch(txs.clone(), &chain());
        assert_eq!(got.len(), n);
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(g, e, "verdict {i}");
        }
    }
    assert_eq!(verify_batch(vec![], &chain()), vec![]);
    let one = verify_batch(vec![txs[2].clone()], &chain());
    assert!(one[0].is_ok());
}
