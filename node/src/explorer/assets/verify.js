// Ledger Explorer: the light-client check, in the browser.
//
// A port of ledger-core's `light.rs` (the Rust reference of every check here): an answer of the
// node is believed only when
//   1. its header is of the trusted chain, and its commit certificate carries valid precommit
//      signatures over that very header's hash from validators holding more than two thirds of the
//      genesis' voting power;
//   2. its proof shows the value under that header: an account's balance and nonce (or absence)
//      under `state_root` (a Jellyfish Merkle proof, jmt 0.12), a transaction at its position
//      under `tx_root` (RFC 6962 audit path, `ledger-core/src/merkle.rs`).
// The trust root is a genesis whose hash the caller trusts (`trustFromGenesis`); the validator set
// is fixed at genesis, so one set checks every height.
//
// Hashing and encoding are re-done here from the JSON, byte for byte as borsh lays them out (see
// `docs/WIRE.md`); nothing the node computed (a header hash, a tx hash, a value hash) is taken from
// it. Cryptography is not hand-written: SHA-256 is @noble/hashes, bech32m is @scure/base, and
// Ed25519 is WebCrypto (`crypto.subtle`, present in secure contexts) or, where that is missing
// (a remote node over plain http), @noble/ed25519. All three are vendored under `vendor/` at
// pinned versions (their SHA-256 is checked by a unit test of `node/src/explorer/mod.rs`).
//
// Pure apart from loading those modules: no DOM, no network. Every failure is a `VerifyError`
// whose message names what failed, in the words of `light.rs`'s `LightError`.

/** `ledger_core::api::PROOF_FORMAT`. */
export const PROOF_FORMAT = 1;
/** `ledger_core::api::MAX_STATE_PROOF_BYTES`: 256 siblings of 65 bytes, a leaf, the count. */
export const MAX_STATE_PROOF_BYTES = 4 + 256 * 65 + 65;
/** jmt's bound on a proof's siblings (one per bit of the key). */
const MAX_STATE_SIBLINGS = 256;
/** `ledger_core::merkle::MAX_PROOF_SIBLINGS`. */
const MAX_TX_SIBLINGS = 64;
const U64_MAX = (1n << 64n) - 1n;
const ADDRESS_HRP = 'ldg';

const VENDOR = {
  sha2: './vendor/noble-hashes-2.4.0/sha2.js',
  ed25519: './vendor/noble-ed25519-3.2.0/index.js',
  base: './vendor/scure-base-2.4.0/index.js',
};

const enc = new TextEncoder();
const ascii = (s) => enc.encode(s);
const VOTE_DOMAIN = ascii('ledger/v1/vote\0');
const JMT_LEAF = ascii('JMT::LeafNode');
const JMT_INTERNAL = ascii('JMT::IntrnalNode');
const JMT_PLACEHOLDER = ascii('SPARSE_MERKLE_PLACEHOLDER_HASH__');
/** `VoteKind::Precommit`'s borsh tag. */
const PRECOMMIT = 1;

/** RFC 8032, section 7.1, TEST 1: the probe that WebCrypto Ed25519 really works here. */
const PROBE_KEY = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';
const PROBE_SIG =
  'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b';

/** Why an answer is not believed. `part`: what failed (genesis, header, certificate, proof, ...). */
export class VerifyError extends Error {
  constructor(part, message) {
    super(message);
    this.name = 'VerifyError';
    this.part = part;
  }
}

// ---------------------------------------------------------------------------------------------
// Tools: the vendored modules and WebCrypto, loaded once.

let toolsPromise = null;

/**
 * SHA-256 (sync), bech32m and an Ed25519 verifier. `preferFallback` skips WebCrypto (a page can ask
 * for it with `?verifier=noble`, so the fallback is exercised where WebCrypto exists too).
 */
export function loadTools({ preferFallback = false } = {}) {
  if (!toolsPromise) {
    toolsPromise = buildTools(preferFallback).catch((e) => {
      toolsPromise = null;
      throw new VerifyError('verifier', `the verifier could not be loaded: ${e && e.message ? e.message : e}`);
    });
  }
  return toolsPromise;
}

async function buildTools(preferFallback) {
  const [sha2, base] = await Promise.all([import(VENDOR.sha2), import(VENDOR.base)]);
  const tools = { sha256: (bytes) => sha2.sha256(bytes), bech32m: base.bech32m, verifier: null, ed25519: null };
  if (!preferFallback && (await webCryptoEd25519Works())) {
    tools.verifier = 'webcrypto';
    tools.ed25519 = async (publicKey, message, signature) => {
      const key = await crypto.subtle.importKey('raw', publicKey, { name: 'Ed25519' }, false, ['verify']);
      return crypto.subtle.verify({ name: 'Ed25519' }, key, signature, message);
    };
  } else {
    const ed = await import(VENDOR.ed25519);
    // The synchronous API needs a SHA-512; the async one would ask crypto.subtle, which a page
    // that is not a secure context does not have.
    ed.hashes.sha512 = sha2.sha512;
    tools.verifier = 'noble';
    // `zip215: false`: RFC 8032's strict rule (canonical encodings), the nearest to the node's
    // `verify_strict`.
    tools.ed25519 = async (publicKey, message, signature) => {
      try {
        return ed.verify(signature, message, publicKey, { zip215: false });
      } catch {
        return false;
      }
    };
  }
  return tools;
}

async function webCryptoEd25519Works() {
  try {
    if (!globalThis.isSecureContext || !globalThis.crypto || !crypto.subtle) return false;
    const key = await crypto.subtle.importKey('raw', hexBytes(PROBE_KEY, 32, 'probe key'), { name: 'Ed25519' }, false, ['verify']);
    return await crypto.subtle.verify({ name: 'Ed25519' }, key, hexBytes(PROBE_SIG, 64, 'probe signature'), new Uint8Array(0));
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Bytes: parsing the JSON forms, and borsh.

function malformed(what) {
  return new VerifyError('malformed', `the answer's ${what} is malformed`);
}

/** Hex of exactly `len` bytes (lower or upper case, no prefix), as the node writes it. */
function hexBytes(s, len, what) {
  if (typeof s !== 'string' || !/^[0-9a-fA-F]*$/.test(s) || s.length % 2 !== 0 || (len != null && s.length !== len * 2)) throw malformed(what);
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.substr(i * 2, 2), 16);
  return out;
}

export function toHex(bytes) {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

function eq(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function compareBytes(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** A JSON integer (a number, or a BigInt where it was above 2^53) in `0..=max`, as a BigInt. */
function uint(v, max, what) {
  let n;
  if (typeof v === 'bigint') n = v;
  else if (typeof v === 'number' && Number.isSafeInteger(v)) n = BigInt(v);
  else throw malformed(what);
  if (n < 0n || n > max) throw malformed(what);
  return n;
}
const u64 = (v, what) => uint(v, U64_MAX, what);
const u32 = (v, what) => Number(uint(v, 0xffff_ffffn, what));
const u8 = (v, what) => Number(uint(v, 0xffn, what));

/** An address's 20 bytes from its one canonical text, `ldg1…` (bech32m). */
function addressBytes(tools, text, what) {
  if (typeof text !== 'string') throw malformed(what);
  let bytes;
  try {
    const { prefix, words } = tools.bech32m.decode(text, 90);
    if (prefix !== ADDRESS_HRP) throw new Error('prefix');
    bytes = tools.bech32m.fromWords(words);
  } catch {
    throw malformed(what);
  }
  if (bytes.length !== 20 || tools.bech32m.encode(ADDRESS_HRP, tools.bech32m.toWords(bytes)) !== text) throw malformed(what);
  return Uint8Array.from(bytes);
}

/** borsh, writing: little-endian integers, `u32` lengths, raw fixed arrays. */
class Writer {
  constructor() {
    this.parts = [];
    this.len = 0;
  }
  bytes(b) {
    this.parts.push(b);
    this.len += b.length;
    return this;
  }
  u8(n) {
    return this.bytes(Uint8Array.of(n));
  }
  u32(n) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, n, true);
    return this.bytes(b);
  }
  u64(n) {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, n, true);
    return this.bytes(b);
  }
  /** A borsh `String` or `Vec<u8>`: length, then the bytes. */
  vec(b) {
    return this.u32(b.length).bytes(b);
  }
  str(s) {
    return this.vec(enc.encode(s));
  }
  option(v, write) {
    if (v == null) return this.u8(0);
    this.u8(1);
    write(v);
    return this;
  }
  done() {
    const out = new Uint8Array(this.len);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

/** borsh, reading, strictly: every read is bounded, and `end` refuses trailing bytes. */
class Reader {
  constructor(bytes, what) {
    this.b = bytes;
    this.at = 0;
    this.what = what;
  }
  take(n) {
    if (this.at + n > this.b.length) throw new VerifyError('proof', `${this.what} cannot be decoded: it ends early`);
    const out = this.b.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  u8() {
    return this.take(1)[0];
  }
  u32() {
    const b = this.take(4);
    return (b[0] | (b[1] << 8) | (b[2] << 16)) + b[3] * 2 ** 24;
  }
  end() {
    if (this.at !== this.b.length) throw new VerifyError('proof', `${this.what} cannot be decoded: ${this.b.length - this.at} bytes are left over`);
  }
}

function chainIdText(v, what) {
  // ChainId: 1 to 64 characters of [a-z0-9._-] (ledger-core/src/types.rs).
  if (typeof v !== 'string' || !/^[a-z0-9._-]{1,64}$/.test(v)) throw malformed(what);
  return v;
}

// ---------------------------------------------------------------------------------------------
// The trust root: a genesis.

/**
 * The genesis' hash: SHA-256 of the borsh encoding of `GenesisWire` (ledger-core/src/genesis.rs),
 * with validators and accounts in the JSON's order (the node writes validators in address order,
 * the canonical one).
 */
export function genesisHash(tools, g) {
  if (!g || typeof g !== 'object') throw new VerifyError('genesis', 'the genesis is not a JSON object');
  const known = ['chain_id', 'genesis_time_ms', 'description', 'consensus_params', 'validators', 'accounts', 'token'];
  for (const k of Object.keys(g)) if (!known.includes(k)) throw new VerifyError('genesis', `the genesis has a field this page does not know: ${k}`);
  const p = g.consensus_params || {};
  const w = new Writer();
  w.str(chainIdText(g.chain_id, 'genesis chain_id'));
  w.u64(u64(g.genesis_time_ms, 'genesis_time_ms'));
  w.option(g.description, (d) => {
    if (typeof d !== 'string') throw malformed('genesis description');
    w.str(d);
  });
  // ConsensusParams, field by field in declaration order (ledger-core/src/params.rs).
  for (const [k, size] of [
    ['timeout_propose_ms', 64],
    ['timeout_prevote_ms', 64],
    ['timeout_precommit_ms', 64],
    ['timeout_delta_ms', 64],
    ['block_fill_pause_ms', 64],
    ['empty_block_interval_ms', 64],
    ['max_block_txs', 32],
    ['max_block_bytes', 64],
    ['max_clock_drift_ms', 64],
  ]) {
    if (size === 32) w.u32(u32(p[k], `consensus_params.${k}`));
    else w.u64(u64(p[k], `consensus_params.${k}`));
  }
  if (Object.keys(p).length !== 9) throw new VerifyError('genesis', 'the genesis consensus_params have fields this page does not know');
  if (!Array.isArray(g.validators) || !Array.isArray(g.accounts)) throw malformed('genesis validators or accounts');
  w.u32(g.validators.length);
  for (const v of g.validators) {
    w.bytes(addressBytes(tools, v && v.address, 'genesis validator address'));
    w.bytes(hexBytes(v.public_key, 32, 'genesis validator public_key'));
    w.u64(u64(v.power, 'genesis validator power'));
  }
  w.u32(g.accounts.length);
  for (const a of g.accounts) {
    w.bytes(addressBytes(tools, a && a.address, 'genesis account address'));
    w.u64(u64(a.balance, 'genesis account balance'));
  }
  w.option(g.token, (t) => {
    if (typeof t !== 'object' || typeof t.symbol !== 'string') throw malformed('genesis token');
    w.str(t.symbol);
    w.u8(u8(t.decimals, 'genesis token decimals'));
  });
  return toHex(tools.sha256(w.done()));
}

/**
 * What a light client trusts, from a genesis whose hash is `expectedHash` (hex): its chain id, its
 * hash and its validator set in address order. Throws when the genesis does not hash to it.
 */
export function trustFromGenesis(tools, g, expectedHash) {
  const hash = genesisHash(tools, g);
  if (expectedHash != null && hash !== String(expectedHash).toLowerCase()) {
    throw new VerifyError('genesis', `the node's genesis hashes to ${hash}, not the trusted ${String(expectedHash).toLowerCase()}`);
  }
  const validators = g.validators
    .map((v) => ({ address: v.address, bytes: addressBytes(tools, v.address, 'validator address'), publicKey: hexBytes(v.public_key, 32, 'validator key'), power: u64(v.power, 'validator power') }))
    .sort((a, b) => compareBytes(a.bytes, b.bytes));
  for (let i = 1; i < validators.length; i++) {
    if (eq(validators[i - 1].bytes, validators[i].bytes)) throw new VerifyError('genesis', `the genesis lists validator ${validators[i].address} twice`);
  }
  if (!validators.length) throw new VerifyError('genesis', 'the genesis has no validators');
  const totalPower = validators.reduce((n, v) => n + v.power, 0n);
  return { chainId: g.chain_id, genesisHash: hash, validators, totalPower, index: new Map(validators.map((v, i) => [v.address, i])) };
}

// ---------------------------------------------------------------------------------------------
// Header and certificate.

function headerBytes(tools, hd) {
  if (!hd || typeof hd !== 'object') throw malformed('header');
  return new Writer()
    .str(chainIdText(hd.chain_id, 'header chain_id'))
    .u64(u64(hd.height, 'header height'))
    .bytes(hexBytes(hd.prev_hash, 32, 'header prev_hash'))
    .u64(u64(hd.timestamp_ms, 'header timestamp_ms'))
    .bytes(addressBytes(tools, hd.proposer, 'header proposer'))
    .bytes(hexBytes(hd.tx_root, 32, 'header tx_root'))
    .u32(u32(hd.tx_count, 'header tx_count'))
    .bytes(hexBytes(hd.state_root, 32, 'header state_root'))
    .bytes(hexBytes(hd.last_commit_hash, 32, 'header last_commit_hash'))
    .done();
}

/** The bytes a validator's precommit signature covers (`Vote::signing_bytes`, Domain::Vote). */
function precommitSigningBytes(trust, height, round, blockHash, validatorBytes) {
  const chain = enc.encode(trust.chainId);
  const vote = new Writer().u8(PRECOMMIT).u64(height).u32(round).u8(1).bytes(blockHash).bytes(validatorBytes).done();
  return new Writer().bytes(VOTE_DOMAIN).u8(chain.length).bytes(chain).bytes(vote).done();
}

/**
 * `TrustedChain::verify_header`: the header is of this chain, and the certificate made it final.
 * Resolves to {hash, height, signers, signedPower, validators, totalPower}.
 */
export async function verifyHeader(tools, trust, hd, commit) {
  if (hd == null || hd.chain_id !== trust.chainId) throw new VerifyError('header', `the header is for chain ${hd && hd.chain_id}, not ${trust.chainId}`);
  const hash = tools.sha256(headerBytes(tools, hd));
  const height = u64(hd.height, 'header height');
  if (!commit || typeof commit !== 'object' || !Array.isArray(commit.signatures)) throw malformed('certificate');
  const certHeight = u64(commit.height, 'certificate height');
  if (certHeight !== height) throw new VerifyError('certificate', `the certificate is for height ${certHeight}, the header is at height ${height}`);
  const certBlock = hexBytes(commit.block_hash, 32, 'certificate block_hash');
  if (!eq(certBlock, hash)) throw new VerifyError('certificate', `the certificate signs block ${toHex(certBlock)}, the header hashes to ${toHex(hash)}`);
  const sigs = commit.signatures;
  if (sigs.length > trust.validators.length) throw new VerifyError('certificate', `the certificate has ${sigs.length} signatures and the chain only ${trust.validators.length} validators`);
  const round = u32(commit.round, 'certificate round');
  let power = 0n;
  let last = -1;
  const checks = [];
  for (const s of sigs) {
    const i = s && trust.index.get(s.validator);
    if (i == null) throw new VerifyError('certificate', `the certificate is signed by ${s && s.validator}, which is not a validator of this chain`);
    if (i <= last) throw new VerifyError('certificate', "the certificate's signers are not unique and in validator-set order");
    last = i;
    const v = trust.validators[i];
    power += v.power;
    checks.push({ v, message: precommitSigningBytes(trust, height, round, hash, v.bytes), signature: hexBytes(s.signature, 64, 'certificate signature') });
  }
  if (!(3n * power > 2n * trust.totalPower)) {
    throw new VerifyError('certificate', `the certificate carries ${power} of ${trust.totalPower} voting power; more than two thirds are needed`);
  }
  const results = await Promise.all(checks.map((c) => tools.ed25519(c.v.publicKey, c.message, c.signature).catch(() => false)));
  const bad = results.indexOf(false);
  if (bad >= 0) throw new VerifyError('certificate', `the certificate's signature of ${checks[bad].v.address} does not verify`);
  return { hash: toHex(hash), header: hd, height, signers: sigs.length, signedPower: power, validators: trust.validators.length, totalPower: trust.totalPower };
}

function checkEnvelope(trust, answer) {
  if (!answer || typeof answer !== 'object') throw malformed('body');
  if (answer.format !== PROOF_FORMAT) throw new VerifyError('format', `the answer has proof format ${answer.format}; this page reads format ${PROOF_FORMAT}`);
  if (answer.chain_id !== trust.chainId) throw new VerifyError('chain', `the answer is for chain ${answer.chain_id}, not ${trust.chainId}`);
  if (String(answer.genesis_hash).toLowerCase() !== trust.genesisHash) throw new VerifyError('genesis', `the answer is for the chain with genesis ${answer.genesis_hash}, not ${trust.genesisHash}`);
}

function checkHeight(answer) {
  const h = u64(answer.height, 'height');
  const hh = u64(answer.header && answer.header.height, 'header height');
  if (h !== hh) throw new VerifyError('header', `the answer says height ${h}, its header is at height ${hh}`);
}

// ---------------------------------------------------------------------------------------------
// Accounts: the state proof.

function jmtLeaf(tools, key, valueHash) {
  return tools.sha256(new Writer().bytes(JMT_LEAF).bytes(key).bytes(valueHash).done());
}

function jmtInternal(tools, left, right) {
  return tools.sha256(new Writer().bytes(JMT_INTERNAL).bytes(left).bytes(right).done());
}

/** Bit `i` of a 32-byte key, most significant bit of byte 0 first. */
const bitAt = (key, i) => (key[i >> 3] >> (7 - (i & 7))) & 1;

function commonPrefixBits(a, b) {
  let n = 0;
  while (n < 256 && bitAt(a, n) === bitAt(b, n)) n++;
  return n;
}

/**
 * jmt 0.12's `SparseMerkleProof::verify` over SHA-256: `value` (bytes, or null for an absent key)
 * under `key` (32 bytes) leads to `root`. `proof`: its borsh encoding — `Option<leaf>` then the
 * siblings from the leaf up, each `0` (placeholder), `1 left right` (internal) or `2 key value`
 * (leaf).
 */
export function verifyStateProof(tools, root, key, value, proof) {
  if (proof.length > MAX_STATE_PROOF_BYTES) throw new VerifyError('proof', `the state proof is ${proof.length} bytes, more than the ${MAX_STATE_PROOF_BYTES} a proof can be`);
  const r = new Reader(proof, 'the state proof');
  const tag = r.u8();
  if (tag > 1) throw new VerifyError('proof', 'the state proof cannot be decoded: bad leaf tag');
  const leaf = tag === 1 ? { key: r.take(32), valueHash: r.take(32) } : null;
  const n = r.u32();
  if (n > MAX_STATE_SIBLINGS) throw new VerifyError('proof', `the state proof has ${n} siblings, more than ${MAX_STATE_SIBLINGS}`);
  const siblings = [];
  for (let i = 0; i < n; i++) {
    const t = r.u8();
    if (t === 0) siblings.push(JMT_PLACEHOLDER);
    else if (t === 1) siblings.push(jmtInternal(tools, r.take(32), r.take(32)));
    else if (t === 2) siblings.push(jmtLeaf(tools, r.take(32), r.take(32)));
    else throw new VerifyError('proof', 'the state proof cannot be decoded: bad sibling tag');
  }
  r.end();
  const mismatch = (why) => new VerifyError('value', `the balance does not match the state proof: ${why}`);
  if (value && leaf) {
    if (!eq(leaf.key, key)) throw mismatch("the proof's leaf is another account's");
    if (!eq(tools.sha256(value), leaf.valueHash)) throw mismatch('the proof holds another balance and nonce for this account');
  } else if (value && !leaf) {
    throw mismatch('the proof shows the account does not exist');
  } else if (!value && leaf) {
    if (eq(leaf.key, key)) throw mismatch('the proof shows the account exists, the answer says it is empty');
    if (commonPrefixBits(key, leaf.key) < n) throw new VerifyError('proof', 'the state proof is not a valid proof of absence for this account');
  }
  let hash = leaf ? jmtLeaf(tools, leaf.key, leaf.valueHash) : JMT_PLACEHOLDER;
  for (let i = 0; i < n; i++) {
    hash = bitAt(key, n - 1 - i) ? jmtInternal(tools, siblings[i], hash) : jmtInternal(tools, hash, siblings[i]);
  }
  if (!eq(hash, root)) throw new VerifyError('proof', "the state proof does not lead to the header's state root");
}

/**
 * `TrustedChain::verify_account` for the address `asked` (its text). Resolves to {balance, nonce
 * (BigInt), at: the verified header}.
 */
export async function verifyAccount(tools, trust, asked, answer) {
  checkEnvelope(trust, answer);
  if (answer.address !== asked) throw new VerifyError('key', `the answer is about ${answer.address}, the question was about ${asked}`);
  const address = addressBytes(tools, asked, 'address');
  checkHeight(answer);
  const at = await verifyHeader(tools, trust, answer.header, answer.commit);
  const balance = u64(answer.balance, 'balance');
  const nonce = u64(answer.nonce, 'nonce');
  // The account's state value: borsh(Account { balance, nonce }); the empty account is absent.
  const value = balance === 0n && nonce === 0n ? null : new Writer().u64(balance).u64(nonce).done();
  verifyStateProof(tools, hexBytes(answer.header.state_root, 32, 'header state_root'), tools.sha256(address), value, hexBytes(answer.proof, null, 'state proof'));
  return { balance, nonce, at };
}

// ---------------------------------------------------------------------------------------------
// Transactions: the hash and the inclusion proof.

/** SHA-256 of the borsh `SignedTransaction` (docs/WIRE.md, sections 3 and 5). */
export function txHash(tools, stx) {
  const tx = stx && stx.tx;
  if (!tx || typeof tx !== 'object') throw malformed('transaction');
  const bytes = new Writer()
    .str(chainIdText(tx.chain_id, 'transaction chain_id'))
    .bytes(hexBytes(tx.from, 32, 'transaction from'))
    .bytes(addressBytes(tools, tx.to, 'transaction to'))
    .u64(u64(tx.amount, 'transaction amount'))
    .u64(u64(tx.fee, 'transaction fee'))
    .u64(u64(tx.nonce, 'transaction nonce'))
    .vec(hexBytes(tx.memo == null ? '' : tx.memo, null, 'transaction memo'))
    .bytes(hexBytes(stx.signature, 64, 'transaction signature'))
    .done();
  return tools.sha256(bytes);
}

/** The address text of a public key (hex): SHA-256("ledger/v1/address" || 0x00 || key)[..20]. */
export function addressOf(tools, publicKeyHex) {
  const digest = tools.sha256(new Writer().bytes(ascii('ledger/v1/address\0')).bytes(hexBytes(publicKeyHex, 32, 'public key')).done());
  return tools.bech32m.encode(ADDRESS_HRP, tools.bech32m.toWords(digest.subarray(0, 20)));
}

const mLeaf = (tools, h) => tools.sha256(new Writer().u8(0).bytes(h).done());
const mNode = (tools, l, r) => tools.sha256(new Writer().u8(1).bytes(l).bytes(r).done());

/** `merkle::expected_siblings`: the audit path's length for leaf `index` of `total`. */
function expectedSiblings(index, total) {
  let fn = index;
  let sn = total - 1;
  let count = 0;
  while (sn !== 0) {
    if (fn % 2 === 0 && fn === sn) {
      while (fn % 2 === 0 && fn !== 0) {
        fn /= 2;
        sn = Math.floor(sn / 2);
      }
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
    count++;
  }
  return count;
}

/** `merkle::verify_inclusion`: RFC 6962's audit path, the root binding the count. */
export function verifyInclusion(tools, root, leaf, proof) {
  const index = Number(u64(proof.index, 'proof index'));
  const total = Number(u64(proof.total, 'proof total'));
  if (!Array.isArray(proof.siblings) || proof.siblings.length > MAX_TX_SIBLINGS) throw malformed('inclusion proof');
  if (index >= total) throw new VerifyError('proof', `the inclusion proof's leaf index ${index} is not below the leaf count ${total}`);
  const expected = expectedSiblings(index, total);
  if (proof.siblings.length !== expected) throw new VerifyError('proof', `the inclusion proof for leaf ${index} of ${total} needs ${expected} siblings, has ${proof.siblings.length}`);
  let fn = index;
  let sn = total - 1;
  let hash = mLeaf(tools, leaf);
  for (const s of proof.siblings) {
    const sib = hexBytes(s, 32, 'inclusion proof sibling');
    if (fn % 2 === 1 || fn === sn) {
      hash = mNode(tools, sib, hash);
      while (fn % 2 === 0 && fn !== 0) {
        fn /= 2;
        sn = Math.floor(sn / 2);
      }
    } else {
      hash = mNode(tools, hash, sib);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  const computed = tools.sha256(new Writer().u8(2).u64(BigInt(total)).bytes(hash).done());
  if (!eq(computed, root)) throw new VerifyError('proof', "the transaction is not in the block under the header's tx_root: the inclusion proof leads elsewhere");
}

/**
 * `TrustedChain::verify_tx` for the hash `asked` (hex). Resolves to {transaction, height, index,
 * at: the verified header}.
 */
export async function verifyTx(tools, trust, asked, answer) {
  checkEnvelope(trust, answer);
  const want = String(asked).toLowerCase();
  if (String(answer.hash).toLowerCase() !== want) throw new VerifyError('key', `the answer is about ${answer.hash}, the question was about ${want}`);
  const computed = toHex(txHash(tools, answer.transaction));
  if (computed !== want) throw new VerifyError('transaction', `the transaction hashes to ${computed}, the answer says ${want}: its content is not the transaction asked for`);
  checkHeight(answer);
  const at = await verifyHeader(tools, trust, answer.header, answer.commit);
  const index = u32(answer.index, 'index');
  const proof = answer.proof || {};
  if (u64(proof.index, 'proof index') !== BigInt(index)) throw new VerifyError('proof', `the answer puts the transaction at index ${index}, its proof at ${proof.index}`);
  const count = u32(answer.header.tx_count, 'header tx_count');
  if (u64(proof.total, 'proof total') !== BigInt(count)) throw new VerifyError('proof', `the proof counts ${proof.total} transactions in the block, the header ${count}`);
  verifyInclusion(tools, hexBytes(answer.header.tx_root, 32, 'header tx_root'), hexBytes(want, 32, 'hash'), proof);
  return { transaction: answer.transaction, from: addressOf(tools, answer.transaction.tx.from), height: at.height, index, at };
}
