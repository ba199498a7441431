// Ledger Explorer: a single-page app over the node's public `/v1` API.
//
// Layout of this file, top to bottom:
//   1. limits and small helpers: DOM building (every string from the node is rendered as text,
//      never parsed as HTML), formatting, copy-to-clipboard;
//   2. the API client (JSON that keeps u64 amounts exact, timeouts, typed errors);
//   3. the live model: a bounded cache of recent blocks fed by `/v1/events` (Server-Sent Events),
//      with polling of `/v1/status` when the stream is unavailable;
//   4. verified reads: the trust root (a genesis, pinned) and the check of account and transaction
//      answers against it (`verify.js`, a port of ledger-core's `light.rs`);
//   5. the hash router (`#/block/12`, `#/tx/<hash>`, `#/account/<addr>`, `#/search/<q>`);
//   6. one function per page.

import * as verify from './verify.js?v=__VERIFY_VERSION__';

// ---------------------------------------------------------------------------------------------
// 1. Limits and helpers

/** Full blocks kept for the dashboard: validator signatures and latest transactions. */
const RECENT_BLOCKS = 30;
/** Blocks shown per validator in the "signed" strip. */
const SIGNED_WINDOW = 20;
/** Light block headers kept (height, time, tx count), enough for the throughput window. */
const HEADS_KEPT = 2000;
const THROUGHPUT_WINDOW_MS = 30_000;
/** The dashboard does not download blocks beyond this many transactions per sync step. */
const SYNC_TX_BUDGET = 5_000;
/** Blocks per `/v1/blocks?from=&to=` request (the API allows at most 100). */
const PAGE_BLOCKS = 50;
/** How far back the dashboard looks for transactions when the chain has been quiet. */
const LATEST_TXS_SCAN_BLOCKS = 500;
const LATEST_ROWS = 10;
/** Bars in the dashboard's activity chart. */
const ACTIVITY_BLOCKS = 60;
/** Transactions per `/v1/accounts/{address}/transactions` page (the API allows 1 to 100). */
const ACCOUNT_TXS_PAGE = 25;
/** Rows the account page keeps; "Show older" stops here. */
const ACCOUNT_ROWS_MAX = 1_000;
/** Transactions of one block rendered at once (more on demand). */
const BLOCK_TX_PAGE = 200;
const REQUEST_TIMEOUT_MS = 10_000;
/** How long a transaction page keeps looking for a hash the node does not know (every ~3 s). */
const MISSING_TX_RETRY_MS = 30_000;
const POLL_MS = 1_500;
const STATUS_REFRESH_MS = 5_000;
const SSE_RETRY_MAX_MS = 30_000;

const SVG_NS = 'http://www.w3.org/2000/svg';
const HEX64 = /^(?:0x)?[0-9a-fA-F]{64}$/;

/**
 * Builds an element. `props`: `class`, `text`, `dataset`, `on<event>` handlers, other keys become
 * attributes. Children: nodes, or anything else as text (never HTML).
 */
function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = String(v);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  appendAll(el, children);
  return el;
}

function appendAll(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** Replaces an element's content with `children` (text or nodes). */
function fill(el, ...children) {
  el.replaceChildren();
  return appendAll(el, children);
}

const ICONS = {
  copy: ['M5.5 5.5h7v8h-7z', 'M3.5 10.5v-8h7'],
  check: ['M3 8.5l3 3 7-7'],
  left: ['M10 3L5 8l5 5'],
  right: ['M6 3l5 5-5 5'],
  arrow: ['M2.5 8h11', 'M9.5 4l4 4-4 4'],
  block: ['M8 1.8l5.5 3v6.4L8 14.2l-5.5-3V4.8z', 'M2.7 4.9L8 7.8l5.3-2.9', 'M8 7.8v6.2'],
  tx: ['M2.5 5.5h10', 'M10 3l2.5 2.5L10 8', 'M13.5 10.5h-10', 'M6 8l-2.5 2.5L6 13'],
  in: ['M12.5 3.5l-9 9', 'M3.5 6v6.5H10'],
  out: ['M3.5 12.5l9-9', 'M6 3.5h6.5V10'],
};

function icon(name) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 16 16');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', 'icon');
  for (const d of ICONS[name]) {
    const p = document.createElementNS(SVG_NS, 'path');
    p.setAttribute('d', d);
    svg.append(p);
  }
  return svg;
}

const intFmt = new Intl.NumberFormat('en-US');
const rateFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1, minimumFractionDigits: 1 });
const pctFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });

/** Integers (numbers or BigInt) with thousands separators; amounts stay exact. */
function fmtInt(v) {
  if (v == null) return '—';
  try {
    return intFmt.format(typeof v === 'bigint' ? v : BigInt(v));
  } catch {
    return String(v);
  }
}

/**
 * An amount in the chain's display unit (`/v1/status` `token`, from the genesis), exactly: BigInt
 * division, every decimal place shown, e.g. "1,000,000.000000 LDG". Base units when the chain
 * names no unit (or before the first status answer).
 */
function fmtAmount(v) {
  const token = live.status && live.status.token;
  if (v == null) return '—';
  if (!token) return `${fmtInt(v)} base units`;
  let n;
  try {
    n = typeof v === 'bigint' ? v : BigInt(v);
  } catch {
    return String(v);
  }
  const d = Number(token.decimals);
  const scale = 10n ** BigInt(d);
  const whole = intFmt.format(n / scale);
  const frac = d > 0 ? `.${(n % scale).toString().padStart(d, '0')}` : '';
  return `${whole}${frac} ${token.symbol}`;
}

/** The base units of an amount, for a tooltip or a second line beside its display form. */
function fmtBase(v) {
  return `${fmtInt(v)} base units`;
}

function toBig(v) {
  try {
    return BigInt(v);
  } catch {
    return 0n;
  }
}

function shortHash(s, head = 8, tail = 6) {
  return s.length > head + tail + 1 ? `${s.slice(0, head)}…${s.slice(-tail)}` : s;
}

function shortAddr(a) {
  return a.length > 18 ? `${a.slice(0, 10)}…${a.slice(-6)}` : a;
}

/** Milliseconds since the Unix epoch, corrected for a skewed local clock (see `refreshStatus`). */
function serverNow() {
  return Date.now() + live.clockOffsetMs;
}

function ago(ms) {
  const s = Math.floor((serverNow() - Number(ms)) / 1000);
  if (s < 1) return 'just now';
  if (s < 60) return `${s}s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s ago`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return `${hr}h ${m % 60}m ago`;
  return `${Math.floor(hr / 24)}d ago`;
}

function fmtTime(ms) {
  const d = new Date(Number(ms));
  return Number.isNaN(d.getTime()) ? '—' : d.toISOString().replace('T', ' ').replace('Z', ' UTC');
}

/** A relative time that the once-a-second ticker keeps current. */
function timeAgo(ms, props = {}) {
  return h('time', { ...props, class: `ago ${props.class || ''}`.trim(), datetime: new Date(Number(ms)).toISOString(), title: fmtTime(ms), dataset: { ts: String(ms) } }, ago(ms));
}

function tick() {
  for (const el of document.querySelectorAll('[data-ts]')) {
    const text = ago(el.dataset.ts);
    if (el.textContent !== text) el.textContent = text;
  }
}

async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // Permission refused: fall through to the legacy path.
  }
  // Plain http on a LAN address is not a secure context and has no clipboard API.
  const ta = h('textarea', { class: 'offscreen', readonly: true, 'aria-hidden': 'true' });
  ta.value = text;
  document.body.append(ta);
  ta.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  ta.remove();
  return ok;
}

function copyButton(value, what) {
  const btn = h('button', { type: 'button', class: 'copy', title: `Copy ${what}`, 'aria-label': `Copy ${what}` }, icon('copy'));
  btn.addEventListener('click', async (e) => {
    e.preventDefault();
    e.stopPropagation();
    const ok = await copyText(value);
    btn.replaceChildren(icon(ok ? 'check' : 'copy'));
    btn.classList.toggle('copied', ok);
    btn.title = ok ? 'Copied' : 'Copy failed';
    setTimeout(() => {
      btn.replaceChildren(icon('copy'));
      btn.classList.remove('copied');
      btn.title = `Copy ${what}`;
    }, 1200);
  });
  return btn;
}

/** A hash or address: truncated (full value on hover), optionally a link, with a copy button. */
function mono(value, { href, what = 'value', full = false, short = shortHash, testid } = {}) {
  const s = String(value);
  const shown = full ? s : short(s);
  const inner = href
    ? h('a', { href, class: 'mono', title: s }, shown)
    : h('span', { class: 'mono', title: s }, shown);
  return h('span', { class: full ? 'hashval full' : 'hashval', 'data-testid': testid }, inner, copyButton(s, what));
}

const blockHref = (height) => `#/block/${encodeURIComponent(String(height))}`;
const txHref = (hash) => `#/tx/${encodeURIComponent(hash)}`;
const accountHref = (addr) => `#/account/${encodeURIComponent(addr)}`;

function addrLink(addr, opts = {}) {
  return mono(addr, { href: accountHref(addr), what: 'address', short: shortAddr, ...opts });
}

function blockLink(height, props = {}) {
  return h('a', { href: blockHref(height), class: 'block-link', ...props }, `#${fmtInt(height)}`);
}

function badge(text, kind, props = {}) {
  return h('span', { class: `badge badge-${kind}`, ...props }, text);
}

function kv(rows) {
  return h(
    'dl',
    { class: 'kv' },
    rows.filter(Boolean).map(([k, v, props]) => h('div', { class: 'kv-row', ...props }, h('dt', null, k), h('dd', null, v))),
  );
}

function card(title, body, { extra, testid, class: cls } = {}) {
  return h(
    'section',
    { class: `card ${cls || ''}`.trim(), 'data-testid': testid },
    title ? h('header', { class: 'card-head' }, h('h2', null, title), extra) : null,
    body,
  );
}

function emptyState(text, props = {}) {
  return h('p', { class: 'empty', ...props }, text);
}

function loading(text = 'Loading…') {
  return h('p', { class: 'loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), text);
}

/** The "not found" page body; the test and users look for its heading. */
function notFound(title, detail, ...extra) {
  return h(
    'section',
    { class: 'card notfound', 'data-testid': 'not-found' },
    h('h1', null, title),
    h('p', { class: 'muted' }, detail),
    extra,
    h('p', null, h('a', { href: '#/' }, '← Back to the dashboard')),
  );
}

function errorBox(err) {
  const msg = err && err.message ? err.message : 'Unknown error';
  return h('section', { class: 'card errorbox', role: 'alert' }, h('h1', null, 'Could not load this page'), h('p', null, msg));
}

function decodeMemo(hex) {
  if (!hex) return null;
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.substr(i * 2, 2), 16);
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    // Show as text only if a person would read it as text.
    return /^[^\u0000-\u0008\u000b-\u001f\u007f]*$/.test(text) ? text : null;
  } catch {
    return null;
  }
}

const TX_ERRORS = {
  wrong_chain: (f) => `Wrong chain: expected ${f.expected}, got ${f.got}`,
  bad_signature: () => 'The signature does not verify',
  too_large: (f) => `Too large: ${fmtInt(f.got)} bytes, the limit is ${fmtInt(f.max)}`,
  memo_too_long: (f) => `Memo too long: ${fmtInt(f.got)} bytes, the limit is ${fmtInt(f.max)}`,
  zero_amount: () => 'The amount must be positive',
  self_transfer: () => 'Sender and recipient are the same account',
  nonce_too_low: (f) => `Nonce too low: expected ${fmtInt(f.expected)}, got ${fmtInt(f.got)}`,
  nonce_too_high: (f) => `Nonce too high: expected ${fmtInt(f.expected)}, got ${fmtInt(f.got)}`,
  insufficient_funds: (f) => `Insufficient funds: has ${fmtInt(f.have)}, needs ${fmtInt(f.need)}`,
  amount_overflow: () => 'Amount plus fee overflows',
  balance_overflow: () => "The recipient's balance would overflow",
  fee_too_low: (f) => `Fee too low: the minimum is ${fmtInt(f.min)}, got ${fmtInt(f.got)}`,
};

function describeTxError(reason) {
  if (!reason || typeof reason !== 'object') return 'Rejected';
  const known = TX_ERRORS[reason.code];
  if (known) return known(reason);
  // A reason this page does not know yet: its code and fields, verbatim.
  const fields = Object.entries(reason)
    .filter(([k]) => k !== 'code')
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return `${String(reason.code || 'rejected').replace(/_/g, ' ')}${fields ? `: ${fields}` : ''}`;
}

/** Why the mempool let go of a valid transaction (status `dropped`), with a link to a replacement. */
function describeDrop(reason) {
  const r = reason && typeof reason === 'object' ? reason : {};
  switch (r.code) {
    case 'evicted':
      return [`Evicted: the mempool was full and a transaction paying a fee of ${fmtAmount(r.by_fee)} needed the room`];
    case 'replaced': {
      const by = String(r.by);
      return ['Replaced by ', h('a', { href: txHref(by), class: 'mono', title: by, 'data-testid': 'tx-replaced-by' }, shortHash(by)), ' (same nonce, higher fee)'];
    }
    case 'expired':
      return [`Expired: pending for longer than ${fmtInt(r.ttl_secs)} s`];
    default:
      // A reason this page does not know yet: its code and fields, verbatim.
      return [r.code ? describeTxError(r) : 'Dropped from the mempool'];
  }
}

// ---------------------------------------------------------------------------------------------
// 2. API client

/** JSON.parse that keeps integers above 2^53 exact (as BigInt) where the browser exposes the source. */
function parseJson(text) {
  try {
    return JSON.parse(text, (_k, v, ctx) =>
      typeof v === 'number' && !Number.isSafeInteger(v) && ctx && typeof ctx.source === 'string' && /^-?\d+$/.test(ctx.source)
        ? BigInt(ctx.source)
        : v,
    );
  } catch {
    return null;
  }
}

function timeoutSignal(signal) {
  const timeout = AbortSignal.timeout ? AbortSignal.timeout(REQUEST_TIMEOUT_MS) : null;
  if (!signal) return timeout || undefined;
  if (!timeout) return signal;
  return AbortSignal.any ? AbortSignal.any([signal, timeout]) : signal;
}

/**
 * GET a `/v1` path. Resolves to `{ok: true, data, res}` or `{ok: false, status, error: {code,
 * message}}` (status 0: the node is unreachable). Rejects only when `signal` aborts (page left).
 */
async function api(path, { signal } = {}) {
  try {
    const res = await fetch(path, { signal: timeoutSignal(signal), headers: { accept: 'application/json' }, cache: 'no-store' });
    const data = parseJson(await res.text());
    if (res.ok && data !== null) return { ok: true, status: res.status, data, res };
    const error = data && typeof data.code === 'string' ? data : { code: `http_${res.status}`, message: `The node answered HTTP ${res.status}.` };
    return { ok: false, status: res.status, error };
  } catch (e) {
    if (signal && signal.aborted) throw e;
    const timedOut = e && e.name === 'TimeoutError';
    return { ok: false, status: 0, error: { code: timedOut ? 'timeout' : 'network', message: timedOut ? 'The node did not answer in time.' : 'Cannot reach the node.' } };
  }
}

class ApiFailure extends Error {
  constructor(r) {
    super(r.error.message);
    this.status = r.status;
    this.code = r.error.code;
  }
}

/** Like `api`, but throws `ApiFailure` on anything but success. */
async function apiData(path, opts) {
  const r = await api(path, opts);
  if (!r.ok) throw new ApiFailure(r);
  return r.data;
}

/** Blocks `from..=to`, split into requests of at most PAGE_BLOCKS. */
async function fetchBlocks(from, to, opts) {
  const out = [];
  for (let a = from; a <= to; a += PAGE_BLOCKS) {
    const b = Math.min(to, a + PAGE_BLOCKS - 1);
    const page = await apiData(`/v1/blocks?from=${a}&to=${b}`, opts);
    if (!Array.isArray(page)) break;
    out.push(...page);
    if (page.length < b - a + 1) break;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// 3. Live model

const live = {
  status: null,
  validators: null,
  peers: null,
  /** height -> {height, hash, timestamp_ms, proposer, tx_count}; light, for throughput and lists. */
  heads: new Map(),
  /** height -> BlockResponse, the newest RECENT_BLOCKS only. */
  blocks: new Map(),
  /** Final transactions, newest first, at most 50: {hash, height, index, from, to, amount, fee, ts}. */
  txs: [],
  headHeight: 0,
  /** Highest height the block sync has handled (fetched, or skipped as too large). */
  synced: 0,
  /** Lowest height the "latest transactions" scan has looked at. */
  scannedDownTo: null,
  conn: 'connecting',
  clockOffsetMs: 0,
  listeners: new Set(),
};

function subscribe(fn) {
  live.listeners.add(fn);
  return () => live.listeners.delete(fn);
}

function emit(kind, detail) {
  for (const fn of [...live.listeners]) {
    try {
      fn(kind, detail);
    } catch (e) {
      reportError(e);
    }
  }
}

function noteHead(head) {
  const height = Number(head.height);
  if (!(height >= 1)) return;
  const prev = live.heads.get(height) || { height };
  for (const k of ['hash', 'timestamp_ms', 'proposer', 'tx_count']) if (head[k] != null) prev[k] = head[k];
  live.heads.set(height, prev);
  if (live.heads.size > HEADS_KEPT) {
    const heights = [...live.heads.keys()].sort((a, b) => a - b);
    for (const k of heights.slice(0, live.heads.size - HEADS_KEPT)) live.heads.delete(k);
  }
  if (height > live.headHeight) live.headHeight = height;
}

function txRows(block) {
  return block.txs.map((t, index) => ({
    hash: t.hash,
    height: Number(block.header.height),
    index,
    from: t.from_address,
    to: t.transaction.tx.to,
    amount: t.transaction.tx.amount,
    fee: t.transaction.tx.fee,
    ts: block.header.timestamp_ms,
  }));
}

function noteTxRows(rows) {
  if (!rows.length) return;
  const seen = new Set(live.txs.map((r) => r.hash));
  for (const r of rows) if (!seen.has(r.hash)) live.txs.push(r);
  live.txs.sort((a, b) => b.height - a.height || b.index - a.index);
  live.txs.length = Math.min(live.txs.length, 50);
}

function noteBlock(block) {
  const hd = block.header;
  noteHead({ height: hd.height, hash: block.hash, timestamp_ms: hd.timestamp_ms, proposer: hd.proposer, tx_count: hd.tx_count });
  live.blocks.set(Number(hd.height), block);
  const keep = live.headHeight - RECENT_BLOCKS;
  for (const k of live.blocks.keys()) if (k <= keep) live.blocks.delete(k);
  noteTxRows(txRows(block));
}

let syncing = false;
let syncAgain = false;

/** Fetches the newest blocks the cache lacks. Coalesced: one sync runs at a time. */
async function syncBlocks() {
  if (syncing) {
    syncAgain = true;
    return;
  }
  syncing = true;
  try {
    do {
      syncAgain = false;
      const target = live.headHeight;
      const lowest = Math.max(1, live.synced + 1, target - RECENT_BLOCKS + 1);
      // Newest first within a transaction budget: a block of 20,000 transfers is megabytes of JSON.
      let from = target + 1;
      let txs = 0;
      for (let hgt = target; hgt >= lowest; hgt--) {
        const n = Number(live.heads.get(hgt)?.tx_count ?? 0);
        if (txs + n > SYNC_TX_BUDGET) break;
        txs += n;
        from = hgt;
      }
      if (from <= target) {
        const r = await api(`/v1/blocks?from=${from}&to=${target}`);
        if (!r.ok) {
          markOffline(r);
          break;
        }
        for (const b of r.data) noteBlock(b);
      }
      live.synced = Math.max(live.synced, target);
      emit('blocks');
    } while (syncAgain);
  } finally {
    syncing = false;
  }
  maybeScanForTxs();
}

let scanning = false;

/** A quiet chain has no transactions in its newest blocks: look further back, within a bound. */
async function maybeScanForTxs() {
  if (scanning || live.txs.length >= LATEST_ROWS || live.headHeight < 1) return;
  scanning = true;
  try {
    const floor = Math.max(1, live.headHeight - LATEST_TXS_SCAN_BLOCKS + 1);
    let top = live.scannedDownTo == null ? Math.min(...live.blocks.keys(), live.headHeight + 1) - 1 : live.scannedDownTo - 1;
    while (top >= floor && live.txs.length < LATEST_ROWS) {
      const from = Math.max(floor, top - PAGE_BLOCKS + 1);
      const r = await api(`/v1/blocks?from=${from}&to=${top}`);
      if (!r.ok) break;
      for (const b of r.data) {
        noteHead({ height: b.header.height, hash: b.hash, timestamp_ms: b.header.timestamp_ms, proposer: b.header.proposer, tx_count: b.header.tx_count });
        noteTxRows(txRows(b));
      }
      live.scannedDownTo = from;
      top = from - 1;
      emit('blocks');
    }
  } finally {
    scanning = false;
  }
}

function setConn(state) {
  if (live.conn === state) return;
  live.conn = state;
  const el = document.getElementById('conn');
  const text = { connecting: 'Connecting…', live: 'Live', polling: 'Polling', offline: 'Offline' }[state];
  const title = {
    connecting: 'Connecting to the node',
    live: 'Receiving new blocks as they are committed (Server-Sent Events)',
    polling: 'The event stream is unavailable; checking the node every few seconds',
    offline: 'The node does not answer; retrying',
  }[state];
  if (el) {
    el.dataset.state = state;
    el.title = title;
    el.querySelector('.conn-text').textContent = text;
  }
  emit('conn');
}

function markOffline(r) {
  if (r.status === 0) setConn('offline');
}

/** Status: head, mempool, peers count. Also estimates the local clock's skew from `Date`. */
async function refreshStatus() {
  const t0 = Date.now();
  const r = await api('/v1/status');
  const t1 = Date.now();
  if (!r.ok) {
    markOffline(r);
    return null;
  }
  if (live.conn === 'offline') setConn(feed.es && feed.es.readyState === 1 ? 'live' : 'polling');
  const date = r.res.headers.get('date');
  if (date) {
    // `Date` has one-second resolution: only correct a skew a person would notice.
    const offset = Date.parse(date) + 500 - (t0 + t1) / 2;
    live.clockOffsetMs = Number.isFinite(offset) && Math.abs(offset) > 2_000 ? offset : 0;
  }
  const s = r.data;
  const first = live.status == null;
  live.status = s;
  if (Number(s.height) >= 1) noteHead({ height: s.height, hash: s.head_hash, timestamp_ms: s.head_time_ms });
  if (first) onFirstStatus(s);
  emit('status');
  if (Number(s.height) > live.synced) syncBlocks();
  return s;
}

/** Resolved by the first status answer: it carries the display unit every amount is shown in. */
let statusReadyResolve;
const statusReady = new Promise((resolve) => {
  statusReadyResolve = resolve;
});

function onFirstStatus(s) {
  statusReadyResolve();
  const badgeEl = document.getElementById('chain-badge');
  badgeEl.textContent = s.chain_id;
  badgeEl.title = `Chain ${s.chain_id} · genesis ${s.genesis_hash}`;
  badgeEl.hidden = false;
  const validator = s.validator ? ` · validator ${shortAddr(s.validator)}` : ' · full node';
  fill(document.getElementById('footer-node'), `ledger-node ${s.version}${validator}`);
}

async function refreshPeers() {
  const r = await api('/v1/peers');
  if (r.ok && Array.isArray(r.data)) {
    live.peers = r.data;
    emit('peers');
  }
}

let validatorsLoaded;
/** Resolves once the validator set is known (it is fixed at genesis: fetched once). */
const validatorsReady = new Promise((resolve) => {
  validatorsLoaded = resolve;
});

async function refreshValidators() {
  const r = await api('/v1/validators');
  if (r.ok && r.data && Array.isArray(r.data.validators)) {
    live.validators = r.data;
    validatorsLoaded();
    emit('validators');
  } else {
    setTimeout(refreshValidators, 5_000);
  }
}

/** Waits a little for the validator set, so a page can show powers; renders without it otherwise. */
function withValidators(view) {
  return Promise.race([validatorsReady, new Promise((resolve) => setTimeout(resolve, 3_000))]).then(() => view.alive);
}

const feed = { es: null, retryMs: 1_000, pollTimer: null, sseTimer: null };

function startPolling() {
  if (feed.pollTimer) return;
  if (live.conn !== 'offline') setConn('polling');
  feed.pollTimer = setInterval(refreshStatus, POLL_MS);
  refreshStatus();
}

function stopPolling() {
  clearInterval(feed.pollTimer);
  feed.pollTimer = null;
}

/**
 * `/v1/events`: `block` and `tx` events as they happen. The browser reconnects by itself after a
 * network error (readyState CONNECTING); an answer that is not an event stream (e.g. 503 when the
 * node has too many subscribers) closes it for good, so we retry with a growing delay. Either way,
 * polling keeps the page current meanwhile.
 */
function connectEvents() {
  if (!('EventSource' in window)) {
    startPolling();
    return;
  }
  clearTimeout(feed.sseTimer);
  const es = new EventSource('/v1/events');
  feed.es = es;
  const slowStart = setTimeout(() => {
    if (es.readyState !== EventSource.OPEN) startPolling();
  }, 4_000);
  es.addEventListener('open', () => {
    clearTimeout(slowStart);
    feed.retryMs = 1_000;
    stopPolling();
    setConn('live');
    // Whatever happened while disconnected: catch up once.
    refreshStatus();
  });
  es.addEventListener('block', (e) => {
    const ev = parseJson(e.data);
    if (!ev || ev.height == null) return;
    noteHead(ev);
    emit('head', ev);
    syncBlocks();
  });
  es.addEventListener('tx', (e) => {
    const ev = parseJson(e.data);
    if (ev && ev.hash) emit('tx', ev);
  });
  es.addEventListener('lagged', () => refreshStatus());
  es.addEventListener('error', () => {
    clearTimeout(slowStart);
    if (es.readyState === EventSource.CLOSED) {
      es.close();
      if (feed.es === es) feed.es = null;
      feed.sseTimer = setTimeout(connectEvents, feed.retryMs);
      feed.retryMs = Math.min(feed.retryMs * 2, SSE_RETRY_MAX_MS);
    }
    startPolling();
  });
}

function startLive() {
  // A page left for another (or kept in the back/forward cache) gives its event stream back: a
  // browser holds at most six connections per server over HTTP/1.1, and a stream left open by
  // each page visited would soon take them all.
  window.addEventListener('pagehide', () => {
    clearTimeout(feed.sseTimer);
    if (feed.es) {
      feed.es.close();
      feed.es = null;
    }
  });
  window.addEventListener('pageshow', (e) => {
    if (e.persisted) connectEvents();
  });
  refreshStatus();
  refreshValidators();
  refreshPeers();
  connectEvents();
  // Mempool size and peers are not in the event stream.
  setInterval(() => {
    if (!document.hidden) {
      refreshStatus();
      refreshPeers();
    }
  }, STATUS_REFRESH_MS);
  setInterval(tick, 1_000);
}

// ---------------------------------------------------------------------------------------------
// 4. Verified reads
//
// The account and transaction pages do not take the node's word: they fetch the value with its
// proof, the header it is proven against and that header's commit certificate, and check all of it
// in the browser against the chain's genesis (the trust root). The genesis is trusted because its
// hash is known: given in the page address (`?genesis=<hash>`), or else pinned in this browser's
// storage, per chain id, on the first visit (trust on first use: a node that later serves another
// genesis under that chain id is reported loudly and not believed). Ed25519 is WebCrypto's where
// the page is a secure context, else the vendored @noble/ed25519 (`?verifier=noble` forces it).

const GENESIS_PIN_PREFIX = 'ledger-explorer/genesis/';
let trustPromise = null;

function pageParams() {
  return new URLSearchParams(location.search);
}

/** The trust root, loaded once per page load: {tools, trust, source: 'url' | 'pinned' | 'first-visit'}. */
function trustRoot() {
  if (!trustPromise) {
    trustPromise = loadTrustRoot().catch((e) => {
      trustPromise = null;
      throw e;
    });
  }
  return trustPromise;
}

async function loadTrustRoot() {
  const params = pageParams();
  const tools = await verify.loadTools({ preferFallback: params.get('verifier') === 'noble' });
  const r = await api('/v1/genesis');
  if (!r.ok) throw new verify.VerifyError('genesis', `the node did not serve its genesis (${r.error.message})`);
  const g = r.data;
  const actual = verify.genesisHash(tools, g);
  const chain = String(g.chain_id);
  const given = params.get('genesis');
  if (given != null) {
    const want = given.trim().toLowerCase().replace(/^0x/, '');
    if (!/^[0-9a-f]{64}$/.test(want)) throw new verify.VerifyError('genesis', `the page address's genesis=${given} is not a hash (64 hex digits)`);
    if (actual !== want) throw new verify.VerifyError('genesis', `the node serves a genesis that hashes to ${actual}, not the ${want} given in the page address`);
    return { tools, trust: verify.trustFromGenesis(tools, g, want), source: 'url' };
  }
  const key = GENESIS_PIN_PREFIX + chain;
  let pinned = null;
  let storage = true;
  try {
    pinned = localStorage.getItem(key);
  } catch {
    storage = false; // storage blocked: trust this page load only
  }
  if (pinned != null) {
    if (pinned !== actual) {
      showGenesisWarning(chain, pinned, actual);
      throw new verify.VerifyError('genesis', `this node serves another genesis for chain ${chain} (hash ${actual}) than the one pinned on your first visit (${pinned})`);
    }
    return { tools, trust: verify.trustFromGenesis(tools, g, pinned), source: 'pinned' };
  }
  if (storage) {
    try {
      localStorage.setItem(key, actual);
    } catch {
      // Full or blocked: trusted for this page load only.
    }
  }
  return { tools, trust: verify.trustFromGenesis(tools, g, actual), source: 'first-visit' };
}

/** A banner that cannot be missed: the node's genesis is not the one this browser pinned. */
function showGenesisWarning(chain, pinned, actual) {
  if (document.querySelector('[data-testid=genesis-warning]')) return;
  const el = h(
    'div',
    { class: 'banner banner-danger', role: 'alert', 'data-testid': 'genesis-warning' },
    h('strong', null, 'Warning: this node serves a different chain. '),
    `On your first visit, this browser pinned the genesis ${shortHash(pinned, 10, 6)} for chain ${chain}; this node now serves a genesis with hash ${shortHash(actual, 10, 6)} under the same chain id. Nothing it shows is verified. If the chain was really reset, open the page with ?genesis=<new hash>, or clear this site's data to pin again.`,
  );
  document.getElementById('banner').after(el);
}

const VERIFIER_NAMES = { webcrypto: 'WebCrypto Ed25519', noble: '@noble/ed25519 (no WebCrypto Ed25519 here)' };
const TRUST_NAMES = { url: 'given in the page address', pinned: 'pinned on first visit', 'first-visit': 'pinned on first visit (now)' };

/**
 * The verification badge of a page. `data-state`: verifying, verified, failed or not-final;
 * `data-verify-ms`: the time of the checks alone (hashing, signatures, proof); `data-total-ms`
 * with the fetches of the proof (and the genesis on the first check).
 */
function verifyBox() {
  const el = h('div', { class: 'verify', 'data-testid': 'verify', dataset: { state: 'verifying' }, role: 'status', 'aria-live': 'polite' });
  const set = (state, icon_, title, detail) => {
    el.dataset.state = state;
    fill(el, h('span', { class: 'verify-icon', 'aria-hidden': 'true' }, icon_), h('div', { class: 'verify-text' }, h('div', { class: 'verify-title', 'data-testid': 'verify-summary' }, title), detail ? h('div', { class: 'verify-detail' }, detail) : null));
  };
  set('verifying', '…', 'Verifying against the chain’s genesis…');
  return {
    el,
    verifying() {
      if (el.dataset.state !== 'verified') set('verifying', '…', 'Verifying against the chain’s genesis…');
    },
    verified(at, root, ms) {
      el.dataset.verifyMs = ms.checks.toFixed(2);
      el.dataset.totalMs = ms.total.toFixed(2);
      el.dataset.verifier = root.tools.verifier;
      el.dataset.height = String(at.height);
      set(
        'verified',
        icon('check'),
        `Verified by ${fmtInt(at.signers)} of ${fmtInt(at.validators)} validators' signatures at height ${fmtInt(at.height)}`,
        [
          `Checked in this browser: the header's certificate (${fmtInt(at.signedPower)} of ${fmtInt(at.totalPower)} voting power) and the proof. Trust root: genesis `,
          h('span', { class: 'mono', title: root.trust.genesisHash, 'data-testid': 'verify-genesis' }, shortHash(root.trust.genesisHash, 8, 4)),
          `, ${TRUST_NAMES[root.source]}. ${VERIFIER_NAMES[root.tools.verifier]}, ${ms.checks.toFixed(1)} ms.`,
        ],
      );
    },
    failed(err, ms) {
      el.dataset.part = (err && err.part) || 'error';
      if (ms) {
        el.dataset.verifyMs = ms.checks.toFixed(2);
        el.dataset.totalMs = ms.total.toFixed(2);
      }
      const what = err && err.message ? err.message : String(err);
      set(
        'failed',
        '!',
        h('span', null, 'Not verified: ', h('span', { 'data-testid': 'verify-reason' }, what)),
        'This node’s answer did not pass the check against the chain’s genesis, so the page does not show it as true. The node may be faulty or lying; ask another node.',
      );
    },
    notFinal(text) {
      delete el.dataset.verifyMs;
      set('not-final', '·', text);
    },
  };
}

/**
 * Fetches `path` (a proof answer) and checks it with `check(tools, trust, answer)`. Resolves to
 * {ok: true, value, root, ms} or {ok: false, error, ms}; never rejects, except when the page is left.
 */
async function fetchVerified(view, path, check) {
  const t0 = performance.now();
  let root;
  try {
    root = await trustRoot();
  } catch (e) {
    return { ok: false, error: e };
  }
  if (!view.alive) return { ok: false, error: new Error('page left') };
  const r = await api(path, { signal: view.signal });
  if (!r.ok) return { ok: false, error: new verify.VerifyError('fetch', `the node did not serve the proof (${r.error.message})`) };
  const t1 = performance.now();
  try {
    const value = await check(root.tools, root.trust, r.data);
    const t2 = performance.now();
    return { ok: true, value, root, ms: { checks: t2 - t1, total: t2 - t0 } };
  } catch (e) {
    const t2 = performance.now();
    if (!(e instanceof verify.VerifyError)) console.error(e);
    return { ok: false, error: e instanceof verify.VerifyError ? e : new verify.VerifyError('error', `the check failed: ${e && e.message ? e.message : e}`), ms: { checks: t2 - t1, total: t2 - t0 } };
  }
}

// ---------------------------------------------------------------------------------------------
// 5. Router

/** A page's lifetime: leaving the page aborts its requests and stops its timers and listeners. */
class View {
  constructor() {
    this.ctl = new AbortController();
    this.cleanups = [];
  }
  get signal() {
    return this.ctl.signal;
  }
  get alive() {
    return !this.ctl.signal.aborted;
  }
  onDispose(fn) {
    this.cleanups.push(fn);
  }
  every(ms, fn) {
    const id = setInterval(fn, ms);
    this.onDispose(() => clearInterval(id));
  }
  listen(fn) {
    this.onDispose(subscribe(fn));
  }
  /** Calls `fn` at most every `ms`, trailing call included. */
  throttle(ms, fn) {
    let last = 0;
    let timer = null;
    this.onDispose(() => clearTimeout(timer));
    return () => {
      if (timer) return;
      const wait = Math.max(0, last + ms - Date.now());
      timer = setTimeout(() => {
        timer = null;
        last = Date.now();
        if (this.alive) fn();
      }, wait);
    };
  }
  dispose() {
    this.ctl.abort();
    for (const fn of this.cleanups) {
      try {
        fn();
      } catch {
        // A failing cleanup must not keep the others from running.
      }
    }
  }
}

const ROUTES = [
  [/^\/?$/, (v) => pageDashboard(v)],
  [/^\/block\/(\d{1,20})$/, (v, m) => pageBlock(v, { height: m[1] })],
  [/^\/block\/([0-9a-fA-F]{64})$/, (v, m) => pageBlock(v, { hash: m[1].toLowerCase() })],
  [/^\/tx\/([0-9a-fA-F]{64})$/, (v, m) => pageTx(v, m[1].toLowerCase())],
  [/^\/account\/([^/]+)$/, (v, m) => pageAccount(v, m[1])],
  [/^\/search\/(.*)$/, (v, m) => pageSearch(v, m[1])],
];

let current = null;

function route() {
  if (current) current.dispose();
  const view = new View();
  current = view;
  let path = location.hash.replace(/^#/, '');
  try {
    path = decodeURIComponent(path);
  } catch {
    // Keep the raw text: the unknown-page message shows it.
  }
  const main = document.getElementById('main');
  main.replaceChildren();
  main.dataset.page = 'loading';
  const match = ROUTES.map(([re, fn]) => [path.match(re), fn]).find(([m]) => m);
  const run = match
    ? match[1](view, match[0])
    : Promise.resolve(setPage('Page not found', 'notfound', notFound('Page not found', `There is no explorer page at “${path}”.`)));
  Promise.resolve(run).catch((e) => {
    if (!view.alive) return;
    if (e instanceof ApiFailure) setPage('Error', 'error', errorBox(e));
    else reportError(e);
  });
  window.scrollTo(0, 0);
}

/** Shows a page's content and names it for the tab title and for tests. */
function setPage(title, page, ...content) {
  const main = document.getElementById('main');
  main.dataset.page = page;
  fill(main, ...content);
  const chain = live.status ? ` · ${live.status.chain_id}` : '';
  document.title = `${title}${chain} · Ledger Explorer`;
}

/** The search box: decides what the text is and goes there. */
function onSearch(e) {
  e.preventDefault();
  const input = document.getElementById('search-input');
  const q = input.value.trim();
  if (!q) return;
  input.blur();
  // The page that opens shows what was found; a stale query in the box would contradict it.
  input.value = '';
  if (/^\d{1,20}$/.test(q)) location.hash = blockHref(BigInt(q));
  else if (/^ldg1/i.test(q)) location.hash = accountHref(q.toLowerCase());
  else location.hash = `#/search/${encodeURIComponent(q)}`;
}

// ---------------------------------------------------------------------------------------------
// 6. Pages

// --- Dashboard ---------------------------------------------------------------------------------

function statCard(label, testid) {
  const value = h('div', { class: 'stat-value', 'data-testid': testid }, '—');
  const sub = h('div', { class: 'stat-sub' });
  const el = h('div', { class: 'stat' }, h('div', { class: 'stat-label' }, label), value, sub);
  return { el, value, sub };
}

/** Transactions per second over the window, from the block headers known contiguously to the head. */
function throughput() {
  const now = serverNow();
  const start = now - THROUGHPUT_WINDOW_MS;
  const run = [];
  for (let hgt = live.headHeight; hgt >= 1 && run.length < HEADS_KEPT; hgt--) {
    const b = live.heads.get(hgt);
    if (!b || b.tx_count == null || b.timestamp_ms == null) break;
    run.push(b);
    if (Number(b.timestamp_ms) <= start) break;
  }
  if (run.length < 2) return null;
  const oldest = run[run.length - 1];
  // The oldest block's transactions arrived before its own timestamp, in an interval we may not
  // know the start of: it bounds the window instead of counting in it.
  const from = Math.max(start, Number(oldest.timestamp_ms));
  const txs = run.slice(0, -1).reduce((n, b) => n + (Number(b.timestamp_ms) > from ? Number(b.tx_count) : 0), 0);
  const spanMs = now - from;
  if (spanMs < 1_000) return null;
  return { tps: txs / (spanMs / 1000), txs, spanMs };
}

function blockRow(head, cache) {
  const key = `${head.height}:${head.hash || ''}:${head.tx_count ?? ''}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const n = head.tx_count;
  const row = h(
    'li',
    { class: 'row', 'data-testid': 'block-row' },
    h('div', { class: 'row-icon', 'aria-hidden': 'true' }, icon('block')),
    h(
      'div',
      { class: 'row-main' },
      h('div', { class: 'row-line' }, blockLink(head.height, { 'data-testid': 'block-link' }), head.hash ? mono(head.hash, { href: blockHref(head.height), what: 'block hash' }) : null),
      h('div', { class: 'row-line muted' }, head.proposer ? ['Proposer ', h('a', { href: accountHref(head.proposer), class: 'mono', title: head.proposer }, shortAddr(head.proposer))] : '—'),
    ),
    h(
      'div',
      { class: 'row-side' },
      h('span', { class: n ? 'pill pill-strong' : 'pill' }, n == null ? '…' : `${fmtInt(n)} tx${Number(n) === 1 ? '' : 's'}`),
      head.timestamp_ms != null ? timeAgo(head.timestamp_ms) : null,
    ),
  );
  cache.set(key, row);
  return row;
}

function txRow(t, cache, { perspective, inBlock = false } = {}) {
  const key = `${t.hash}:${perspective || ''}:${inBlock}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const dir = perspective ? (t.from === perspective ? 'out' : 'in') : null;
  const row = h(
    'li',
    { class: 'row', 'data-testid': 'tx-row' },
    dir ? h('div', { class: `row-icon dir-${dir}`, title: dir === 'out' ? 'Sent' : 'Received' }, icon(dir)) : h('div', { class: 'row-icon', 'aria-hidden': 'true' }, icon('tx')),
    h(
      'div',
      { class: 'row-main' },
      h('div', { class: 'row-line' }, mono(t.hash, { href: txHref(t.hash), what: 'transaction hash', testid: 'tx-link' })),
      h(
        'div',
        { class: 'row-line muted fromto' },
        h('a', { href: accountHref(t.from), class: 'mono', title: t.from }, shortAddr(t.from)),
        icon('arrow'),
        h('a', { href: accountHref(t.to), class: 'mono', title: t.to }, shortAddr(t.to)),
      ),
    ),
    h(
      'div',
      { class: 'row-side' },
      h('span', { class: `amount ${dir ? `amount-${dir}` : ''}`.trim(), title: `${fmtBase(t.amount)} · fee ${fmtAmount(t.fee)}` }, dir === 'out' ? `−${fmtAmount(t.amount)}` : dir === 'in' ? `+${fmtAmount(t.amount)}` : fmtAmount(t.amount)),
      inBlock ? h('span', { class: 'muted small' }, `fee ${fmtAmount(t.fee)}`) : h('span', { class: 'muted small' }, blockLink(t.height), t.ts != null ? [' · ', timeAgo(t.ts)] : null),
    ),
  );
  cache.set(key, row);
  return row;
}

/** Plays a CSS animation again (removing and re-adding the class alone would not). */
function restartAnimation(el, cls) {
  el.classList.remove(cls);
  void el.offsetWidth; // forces a style flush between the two class changes
  el.classList.add(cls);
}

/** Re-renders a list from cached row elements, dropping elements no longer shown (bounded). */
function renderRows(list, rows, cache) {
  const keep = new Set(rows);
  for (const [k, el] of cache) if (!keep.has(el)) cache.delete(k);
  const same = rows.length === list.children.length && rows.every((r, i) => list.children[i] === r);
  if (!same) list.replaceChildren(...rows);
}

function activityChart() {
  const bars = h('div', { class: 'bars', role: 'img', 'aria-label': `Transactions per block, last ${ACTIVITY_BLOCKS} blocks` });
  const scale = h('span', { class: 'muted small' });
  const el = card('Activity', h('div', { class: 'chart' }, bars), { extra: scale, class: 'activity' });
  return {
    el,
    update() {
      const heads = [];
      for (let hgt = live.headHeight; hgt >= 1 && heads.length < ACTIVITY_BLOCKS; hgt--) heads.push(live.heads.get(hgt) || { height: hgt });
      heads.reverse();
      const max = Math.max(1, ...heads.map((b) => Number(b.tx_count || 0)));
      fill(scale, `txs per block · last ${heads.length} blocks · max ${fmtInt(max)}`);
      // A young chain fills the chart from the right, so a bar always has the same width.
      const pad = Array.from({ length: ACTIVITY_BLOCKS - heads.length }, () => h('span', { class: 'bar slot', 'aria-hidden': 'true' }));
      const els = heads.map((b) => {
        const n = b.tx_count;
        const bar = h('a', { class: n == null ? 'bar unknown' : n > 0 ? 'bar' : 'bar zero', href: blockHref(b.height), title: `Block #${b.height}: ${n == null ? 'not loaded' : `${n} tx`}` });
        // CSSOM style writes are allowed by the CSP (style-src 'self'); no style attribute in markup.
        bar.style.setProperty('--h', n ? String(Math.max(0.04, Number(n) / max)) : '0');
        return bar;
      });
      bars.replaceChildren(...pad, ...els);
    },
  };
}

function validatorsCard() {
  const body = h('div', { class: 'table-wrap' });
  const summary = h('span', { class: 'muted small' });
  const el = card('Validators', body, { extra: summary, testid: 'validators' });
  return {
    el,
    update() {
      const set = live.validators;
      if (!set) {
        fill(body, loading());
        return;
      }
      const total = Number(set.total_power) || 1;
      const heights = [];
      for (let hgt = live.headHeight; hgt >= 1 && heights.length < SIGNED_WINDOW; hgt--) heights.unshift(hgt);
      const signers = heights.map((hgt) => {
        const b = live.blocks.get(hgt);
        return b && b.commit ? new Set(b.commit.signatures.map((s) => s.validator)) : null;
      });
      const known = signers.filter(Boolean).length;
      fill(summary, `${set.validators.length} validator${set.validators.length === 1 ? '' : 's'} · total power ${fmtInt(set.total_power)}`);
      const me = live.status && live.status.validator;
      const rows = set.validators.map((v) => {
        const signed = signers.filter((s) => s && s.has(v.address)).length;
        const strip = h(
          'span',
          { class: 'strip', 'aria-label': `Signed ${signed} of the last ${known} blocks` },
          heights.map((hgt, i) => {
            const s = signers[i];
            const state = s == null ? 'unknown' : s.has(v.address) ? 'yes' : 'no';
            const label = state === 'unknown' ? 'not loaded' : state === 'yes' ? 'signed' : 'did not sign';
            return h('a', { class: `sq sq-${state}`, href: blockHref(hgt), title: `Block #${hgt}: ${label}` });
          }),
        );
        return h(
          'tr',
          null,
          h('td', { 'data-label': 'Validator' }, h('div', { class: 'cell-flex' }, addrLink(v.address), me === v.address ? badge('this node', 'info') : null)),
          h('td', { 'data-label': 'Power', class: 'num' }, fmtInt(v.power), h('span', { class: 'muted small' }, ` ${pctFmt.format((Number(v.power) / total) * 100)}%`)),
          h('td', { 'data-label': `Signed last ${heights.length}` }, h('div', { class: 'cell-flex' }, strip, h('span', { class: 'muted small nowrap' }, `${signed}/${known}`))),
        );
      });
      fill(
        body,
        h(
          'table',
          { class: 'table' },
          h('thead', null, h('tr', null, h('th', null, 'Validator'), h('th', { class: 'num' }, 'Power'), h('th', null, `Signed the last ${heights.length} blocks`))),
          h('tbody', null, rows),
        ),
      );
    },
  };
}

function peersCard() {
  const body = h('div', { class: 'table-wrap' });
  const summary = h('span', { class: 'muted small' });
  const el = card('Peers', body, { extra: summary, testid: 'peers' });
  return {
    el,
    update() {
      const peers = live.peers;
      if (!peers) {
        fill(body, loading());
        return;
      }
      fill(summary, `${peers.length} connected`);
      if (!peers.length) {
        const alone = live.validators && live.validators.validators.length === 1;
        fill(body, emptyState(alone ? 'No peers connected. This is a one-validator chain: the node commits blocks on its own.' : 'No peers connected.'));
        return;
      }
      const head = live.headHeight;
      fill(
        body,
        h(
          'table',
          { class: 'table' },
          h('thead', null, h('tr', null, h('th', null, 'Peer'), h('th', null, 'Address'), h('th', { class: 'num' }, 'Height'))),
          h(
            'tbody',
            null,
            peers.map((p) =>
              h(
                'tr',
                null,
                h('td', { 'data-label': 'Peer' }, mono(p.peer_id, { what: 'peer id', short: (s) => shortHash(s, 8, 6) })),
                h('td', { 'data-label': 'Address' }, h('span', { class: 'mono wrap' }, p.address)),
                h(
                  'td',
                  { 'data-label': 'Height', class: 'num' },
                  p.height == null ? h('span', { class: 'muted' }, 'unknown') : [fmtInt(p.height), head - Number(p.height) > 2 ? h('span', { class: 'muted small' }, ` (${fmtInt(head - Number(p.height))} behind)`) : null],
                ),
              ),
            ),
          ),
        ),
      );
    },
  };
}

function pageDashboard(view) {
  const chain = statCard('Chain', 'chain-id');
  chain.value.classList.add('stat-text');
  const height = statCard('Height', 'height');
  const last = statCard('Last block', 'last-block');
  const tps = statCard('Throughput', 'throughput');
  const mempool = statCard('Mempool', 'mempool');
  const peers = statCard('Peers', 'peer-count');
  const stats = h('section', { class: 'stats', 'aria-label': 'Chain status' }, [chain, height, last, tps, mempool, peers].map((s) => s.el));

  const blockList = h('ol', { class: 'rows', 'data-testid': 'latest-blocks' });
  const txList = h('ol', { class: 'rows', 'data-testid': 'latest-txs' });
  const txNote = h('p', { class: 'muted small list-note' });
  const blockCache = new Map();
  const txCache = new Map();
  const activity = activityChart();
  const validators = validatorsCard();
  const peersC = peersCard();

  setPage(
    'Dashboard',
    'dashboard',
    stats,
    activity.el,
    h('div', { class: 'grid2' }, card('Latest blocks', blockList, { testid: 'blocks-card' }), card('Latest transactions', [txList, txNote], { testid: 'txs-card' })),
    h('div', { class: 'grid2 wide-first' }, validators.el, peersC.el),
  );

  let lastHead = null;
  const render = () => {
    const s = live.status;
    if (s) {
      fill(chain.value, s.chain_id);
      chain.value.title = s.chain_id;
      fill(chain.sub, 'genesis ', h('span', { class: 'mono', title: s.genesis_hash }, shortHash(s.genesis_hash, 8, 4)));
      fill(mempool.value, fmtInt(s.mempool_txs));
      fill(mempool.sub, `pending transaction${Number(s.mempool_txs) === 1 ? '' : 's'}`);
      fill(peers.value, fmtInt(live.peers ? live.peers.length : s.peers));
      fill(peers.sub, s.syncing ? badge('syncing', 'warn') : 'in sync');
    }
    const headH = live.headHeight;
    const head = live.heads.get(headH);
    if (head) {
      if (lastHead !== head.hash || height.value.textContent === '—') {
        fill(height.value, blockLink(headH, { 'data-testid': 'height-link' }));
        fill(height.sub, head.hash ? mono(head.hash, { href: blockHref(headH), what: 'head hash', testid: 'head-hash' }) : '');
        if (lastHead !== null) restartAnimation(height.el, 'flash');
        lastHead = head.hash;
      }
      if (head.timestamp_ms != null && last.value.dataset.ts !== String(head.timestamp_ms)) {
        last.value.dataset.ts = String(head.timestamp_ms);
        last.value.textContent = ago(head.timestamp_ms);
        fill(last.sub, h('span', { title: 'Block time (UTC)' }, fmtTime(head.timestamp_ms).slice(11)));
      }
    } else if (s && Number(s.height) === 0) {
      fill(height.value, '0');
      fill(height.sub, 'no block yet');
    }
    const t = throughput();
    fill(tps.value, t ? `${rateFmt.format(t.tps)} tx/s` : '—');
    fill(tps.sub, t ? `${fmtInt(t.txs)} txs in the last ${Math.round(t.spanMs / 1000)} s` : 'measuring…');

    const heads = [];
    for (let hgt = headH; hgt >= 1 && heads.length < LATEST_ROWS; hgt--) heads.push(live.heads.get(hgt) || { height: hgt });
    if (heads.length) renderRows(blockList, heads.map((b) => blockRow(b, blockCache)), blockCache);
    else if (!blockList.children.length) blockList.replaceChildren(emptyState('No blocks yet.'));

    const txs = live.txs.slice(0, LATEST_ROWS);
    if (txs.length) renderRows(txList, txs.map((tx) => txRow(tx, txCache)), txCache);
    const lowest = live.scannedDownTo ?? (live.blocks.size ? Math.min(...live.blocks.keys()) : null);
    if (!txs.length) txList.replaceChildren(h('li', null, emptyState(scanning ? 'Looking for transactions…' : lowest === 1 ? 'No transactions yet.' : 'No transactions in the latest blocks.')));
    fill(txNote, txs.length < LATEST_ROWS && lowest != null ? `Final transactions in blocks #${fmtInt(lowest)}–#${fmtInt(headH)}.` : '');

    activity.update();
    validators.update();
    peersC.update();
  };
  // Coalesce bursts of events (a fast chain commits several blocks a second) into one render.
  let pending = null;
  const schedule = () => {
    if (pending) return;
    pending = setTimeout(() => {
      pending = null;
      if (view.alive) render();
    }, 100);
  };
  view.onDispose(() => clearTimeout(pending));
  view.listen(schedule);
  // Throughput decays while the chain is quiet, and it needs the clock, not an event, to show it.
  view.every(1_000, () => {
    const t = throughput();
    fill(tps.value, t ? `${rateFmt.format(t.tps)} tx/s` : '—');
  });
  render();
}

// --- Block page ---------------------------------------------------------------------------------

async function pageBlock(view, { height, hash }) {
  setPage(height ? `Block #${height}` : 'Block', 'loading', loading(height ? `Loading block #${height}…` : 'Loading block…'));
  const r = await api(height ? `/v1/blocks/${height}` : `/v1/blocks/hash/${hash}`, { signal: view.signal });
  if (!view.alive) return;
  if (!r.ok) {
    if (r.status === 404) {
      const head = live.headHeight || (live.status && Number(live.status.height)) || 0;
      const detail = height
        ? BigInt(height) > BigInt(head)
          ? `Block #${fmtInt(height)} has not been produced yet: the chain is at height ${fmtInt(head)}.`
          : `This node has no block #${fmtInt(height)}.`
        : ['No block with hash ', h('code', { class: 'wrap' }, hash), ' on this node.'];
      setPage('Block not found', 'notfound', notFound('Block not found', detail));
      if (height && BigInt(height) > BigInt(head)) waitForBlock(view, Number(height));
      return;
    }
    if (r.status === 400) {
      setPage('Block not found', 'notfound', notFound('Block not found', r.error.message));
      return;
    }
    throw new ApiFailure(r);
  }
  if (await withValidators(view)) renderBlock(view, r.data);
}

/** A block that does not exist yet: show it as soon as it is committed. */
function waitForBlock(view, height) {
  if (!Number.isSafeInteger(height) || height > live.headHeight + 100) return;
  view.listen(() => {
    if (live.headHeight >= height) route();
  });
}

function renderBlock(view, b) {
  const hd = b.header;
  const hgt = Number(hd.height);
  const set = live.validators;
  const sigs = b.commit ? b.commit.signatures : [];
  const signerSet = new Set(sigs.map((s) => s.validator));

  const nav = h(
    'nav',
    { class: 'pager', 'aria-label': 'Neighbouring blocks' },
    hgt > 1 ? h('a', { href: blockHref(hgt - 1), class: 'btn', 'data-testid': 'prev-block', 'aria-label': 'Previous block' }, icon('left'), h('span', null, 'Prev')) : h('span', { class: 'btn disabled' }, icon('left'), h('span', null, 'Prev')),
    h('a', { href: blockHref(hgt + 1), class: 'btn', 'data-testid': 'next-block', 'aria-label': 'Next block' }, h('span', null, 'Next'), icon('right')),
  );

  const overview = kv([
    ['Height', h('span', { 'data-testid': 'block-height', class: 'strong' }, fmtInt(hgt))],
    ['Hash', mono(b.hash, { full: true, what: 'block hash', testid: 'block-hash' })],
    ['Status', b.commit ? badge('Final', 'ok') : badge('No certificate', 'warn')],
    ['Time', h('span', null, fmtTime(hd.timestamp_ms), ' (', timeAgo(hd.timestamp_ms), ')')],
    ['Proposer', addrLink(hd.proposer, { full: true, testid: 'block-proposer' })],
    ['Transactions', fmtInt(hd.tx_count)],
    ['Previous block', hgt > 1 ? mono(hd.prev_hash, { href: blockHref(hgt - 1), what: 'previous hash', full: true }) : h('span', null, mono(hd.prev_hash, { what: 'genesis hash', full: true }), h('span', { class: 'muted small' }, ' (genesis)'))],
    ['State root', mono(hd.state_root, { what: 'state root', full: true })],
    ['Tx root', mono(hd.tx_root, { what: 'transaction root', full: true })],
    ['Last commit', mono(hd.last_commit_hash, { what: 'last commit hash', full: true })],
    ['Chain', hd.chain_id],
  ]);

  let certBody;
  if (!b.commit) {
    certBody = emptyState('The node returned this block without its commit certificate.');
  } else {
    const total = set ? Number(set.total_power) : null;
    const power = set ? set.validators.filter((v) => signerSet.has(v.address)).reduce((n, v) => n + Number(v.power), 0) : null;
    const pct = total ? (power / total) * 100 : null;
    const rows = (set ? set.validators : sigs.map((s) => ({ address: s.validator, power: null }))).map((v) => {
      const signed = signerSet.has(v.address);
      return h(
        'tr',
        { class: signed ? '' : 'dim' },
        h('td', { 'data-label': 'Validator' }, addrLink(v.address)),
        h('td', { 'data-label': 'Power', class: 'num' }, v.power == null ? '—' : fmtInt(v.power)),
        h('td', { 'data-label': 'Precommit' }, signed ? badge('signed', 'ok') : badge('absent', 'muted')),
      );
    });
    certBody = [
      h(
        'div',
        { class: 'cert-summary' },
        h('span', null, `Round ${b.commit.round}`),
        h('span', { 'data-testid': 'signer-count' }, `${sigs.length}${set ? ` of ${set.validators.length}` : ''} validator${(set ? set.validators.length : sigs.length) === 1 ? '' : 's'} signed`),
        pct != null ? h('span', null, `${fmtInt(power)} of ${fmtInt(total)} power (${pctFmt.format(pct)}%)`) : null,
      ),
      pct != null ? h('div', { class: 'meter', role: 'meter', 'aria-valuenow': String(Math.round(pct)), 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-label': 'Signing power' }, h('span', { class: 'meter-fill' }), h('span', { class: 'meter-mark', title: 'Two thirds' })) : null,
      h(
        'div',
        { class: 'table-wrap' },
        h('table', { class: 'table', 'data-testid': 'signers' }, h('thead', null, h('tr', null, h('th', null, 'Validator'), h('th', { class: 'num' }, 'Power'), h('th', null, 'Precommit'))), h('tbody', null, rows)),
      ),
    ];
    if (pct != null) {
      const fillEl = certBody[1].querySelector('.meter-fill');
      fillEl.style.setProperty('--w', `${Math.min(100, pct)}%`);
    }
  }

  const txList = h('ol', { class: 'rows', 'data-testid': 'block-txs' });
  const more = h('div', { class: 'more' });
  const cache = new Map();
  const rows = txRows(b);
  let shown = 0;
  const showMore = () => {
    const next = rows.slice(shown, shown + BLOCK_TX_PAGE);
    shown += next.length;
    txList.append(...next.map((t) => txRow(t, cache, { inBlock: true })));
    fill(more, shown < rows.length ? [h('span', { class: 'muted small' }, `Showing ${fmtInt(shown)} of ${fmtInt(rows.length)}. `), h('button', { type: 'button', class: 'btn', onclick: showMore }, `Show ${fmtInt(Math.min(BLOCK_TX_PAGE, rows.length - shown))} more`)] : '');
  };
  showMore();

  setPage(
    `Block #${hgt}`,
    'block',
    h('div', { class: 'page-head' }, h('h1', null, 'Block ', h('span', { class: 'mono-num' }, `#${fmtInt(hgt)}`)), nav),
    card('Overview', overview),
    card('Commit certificate', certBody, { testid: 'certificate' }),
    card(`Transactions (${fmtInt(rows.length)})`, rows.length ? [txList, more] : emptyState('This block has no transactions.'), { testid: 'block-txs-card' }),
  );
}

// --- Transaction page ------------------------------------------------------------------------

function stepper(status) {
  const steps = [
    ['submitted', 'Submitted'],
    ['pending', 'Pending'],
    ['final', 'Final'],
  ];
  const reached = { pending: 2, final: 3, rejected: 1, dropped: 2 }[status] || 0;
  return h(
    'ol',
    { class: `stepper ${status === 'rejected' ? 'rejected' : ''}`, 'aria-label': 'Progress' },
    steps.map(([k, label], i) => {
      const done = i < reached;
      const active = status === 'pending' && k === 'pending';
      return h('li', { class: `step ${done ? 'done' : ''} ${active ? 'active' : ''}`.trim() }, h('span', { class: 'step-dot', 'aria-hidden': 'true' }, done && !active ? icon('check') : null), label);
    }),
    status === 'rejected' ? h('li', { class: 'step failed' }, h('span', { class: 'step-dot', 'aria-hidden': 'true' }), 'Rejected') : null,
    status === 'dropped' ? h('li', { class: 'step dropped' }, h('span', { class: 'step-dot', 'aria-hidden': 'true' }), 'Dropped') : null,
  );
}

async function pageTx(view, hash) {
  setPage('Transaction', 'loading', loading('Loading transaction…'));
  let lastStatus = null;
  let busy = false;
  const load = async () => {
    if (busy) return;
    busy = true;
    try {
      await loadOnce();
    } finally {
      busy = false;
    }
  };
  const loadOnce = async () => {
    const r = await api(`/v1/transactions/${hash}`, { signal: view.signal });
    if (!view.alive) return;
    if (!r.ok) {
      if (r.status === 404) {
        if (lastStatus === 'missing') return; // still unknown: the page already says so
        setPage(
          'Transaction not found',
          'notfound',
          notFound('Transaction not found', ['No transaction with hash ', h('code', { class: 'wrap' }, hash), ' on this node. It was never submitted here, or it was rejected long ago.'], h('p', { class: 'muted small' }, 'The page keeps looking for half a minute, in case it is still on its way from another node.')),
        );
        lastStatus = 'missing';
        return;
      }
      if (lastStatus && lastStatus !== 'missing') return; // keep showing what we have; the next poll retries
      throw new ApiFailure(r);
    }
    const t = r.data;
    if (t.status === 'final') {
      if (lastStatus === 'final') return;
      // A final transaction is shown only as its proof answer shows it, once that is verified:
      // content, sender, block and time all come from the checked answer, not from `t`.
      const out = await fetchVerified(view, `/v1/transactions/${hash}/proof`, (tools, trust, answer) => verify.verifyTx(tools, trust, hash, answer));
      if (!view.alive) return;
      const flash = lastStatus === 'pending';
      if (out.ok) {
        const v = out.value;
        renderTx({ hash, status: 'final', transaction: v.transaction, from_address: v.from, height: v.height, index: v.index }, { blockTime: v.at.header.timestamp_ms, flash, check: out });
      } else {
        renderTx({ hash, status: 'final' }, { flash, check: out });
      }
      lastStatus = 'final';
      return;
    }
    if (lastStatus !== t.status) renderTx(t, { flash: false });
    lastStatus = t.status;
    if (t.status === 'pending' && t.transaction) explainPending(view, t);
  };
  const opened = Date.now();
  await load();
  // Pending: follow it live (the `tx` event says when it is final; polling covers a lost stream).
  // Unknown: it may still arrive by gossip from the node it was sent to; look again for a while.
  let ticks = 0;
  view.every(1_000, () => {
    ticks += 1;
    if (lastStatus === 'pending') load();
    else if (lastStatus === 'missing' && ticks % 3 === 0 && Date.now() - opened < MISSING_TX_RETRY_MS) load();
  });
  view.listen((kind, ev) => {
    if (kind === 'tx' && ev.hash === hash && lastStatus !== 'final') load();
  });
}

/** A pending transfer whose nonce is ahead of the sender's waits for the ones before it: say so. */
async function explainPending(view, t) {
  const tx = t.transaction.tx;
  const a = await api(`/v1/accounts/${encodeURIComponent(t.from_address)}`, { signal: view.signal });
  const el = document.querySelector('[data-testid="tx-hint"]');
  if (!view.alive || !a.ok || !el) return;
  const next = toBig(a.data.nonce);
  const mine = toBig(tx.nonce);
  const text = mine > next ? ` · it follows the sender's nonce${mine - next > 1n ? `s ${fmtInt(next)}–${fmtInt(mine - 1n)}` : ` ${fmtInt(next)}`}, which ${mine - next > 1n ? 'are' : 'is'} not final yet` : '';
  if (el.textContent !== text) el.textContent = text;
}

function renderTx(t, { blockTime, flash, check }) {
  const unverified = t.status === 'final' && !(check && check.ok);
  const tx = unverified ? null : t.transaction && t.transaction.tx;
  const box = verifyBox();
  if (t.status !== 'final') box.notFinal(`Not final${t.status === 'pending' ? ' yet' : ''}: there is no proof to check, so what follows is this node's word.`);
  else if (check && check.ok) box.verified(check.value.at, check.root, check.ms);
  else box.failed(check ? check.error : new verify.VerifyError('error', 'not checked'), check && check.ms);
  const statusBadge = unverified ? badge('Not verified', 'err', { 'data-testid': 'tx-status' }) : {
    pending: badge('Pending', 'warn', { 'data-testid': 'tx-status' }),
    final: badge('Final', 'ok', { 'data-testid': 'tx-status' }),
    rejected: badge('Rejected', 'err', { 'data-testid': 'tx-status' }),
    dropped: badge('Dropped', 'muted', { 'data-testid': 'tx-status' }),
  }[t.status] || badge(String(t.status), 'muted', { 'data-testid': 'tx-status' });

  let statusLine;
  if (unverified) {
    statusLine = h('span', { class: 'err-text', 'data-testid': 'tx-reason' }, 'The node says this transaction is final, but its answer failed verification');
  } else if (t.status === 'final') {
    statusLine = h('span', { 'data-testid': 'tx-height' }, 'In block ', blockLink(t.height, { 'data-testid': 'tx-block-link' }), ` at position ${fmtInt(t.index)}`);
  } else if (t.status === 'pending') {
    statusLine = h('span', { class: 'muted' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), ' Waiting to be included in a block', h('span', { class: 'pending-hint', 'data-testid': 'tx-hint' }));
  } else if (t.status === 'rejected') {
    statusLine = h('span', { class: 'err-text', 'data-testid': 'tx-reason' }, describeTxError(t.reason));
  } else if (t.status === 'dropped') {
    statusLine = h('span', { class: 'muted', 'data-testid': 'tx-reason' }, ...describeDrop(t.reason));
  }

  const memoText = tx ? decodeMemo(tx.memo) : null;
  const rows = [
    ['Hash', mono(t.hash, { full: true, what: 'transaction hash', testid: 'tx-hash' })],
    ['Status', h('div', { class: 'cell-flex' }, statusBadge, statusLine)],
    t.status === 'final' && blockTime != null ? ['Block time', h('span', null, fmtTime(blockTime), ' (', timeAgo(blockTime), ')')] : null,
    t.from_address ? ['From', addrLink(t.from_address, { full: true, testid: 'tx-from' }), { 'data-testid': 'tx-from-row' }] : null,
    tx ? ['To', addrLink(tx.to, { full: true, testid: 'tx-to' })] : null,
    tx ? ['Amount', h('span', { class: 'strong', 'data-testid': 'tx-amount', title: fmtBase(tx.amount) }, fmtAmount(tx.amount))] : null,
    tx ? ['Fee', h('span', { title: fmtBase(tx.fee) }, fmtAmount(tx.fee))] : null,
    tx ? ['Total cost', fmtAmount(toBig(tx.amount) + toBig(tx.fee))] : null,
    tx ? ['Nonce', fmtInt(tx.nonce)] : null,
    tx ? ['Memo', tx.memo ? h('div', { class: 'memo' }, memoText != null ? h('div', { class: 'memo-text' }, memoText) : null, h('div', { class: 'mono wrap muted small' }, `0x${tx.memo}`)) : h('span', { class: 'muted' }, 'none')] : null,
    tx ? ['Chain', tx.chain_id] : null,
    tx ? ['Public key', mono(tx.from, { full: true, what: 'public key' })] : null,
    t.transaction ? ['Signature', mono(t.transaction.signature, { full: true, what: 'signature' })] : null,
  ];
  const content = [
    h('div', { class: 'page-head' }, h('h1', null, 'Transaction')),
    card(null, [box.el, unverified ? null : stepper(t.status), kv(rows)], { class: flash ? 'flash' : '', testid: 'tx-card' }),
  ];
  if (!tx && !unverified) content.push(emptyState(`The node no longer holds the content of this ${t.status === 'dropped' ? 'dropped' : 'rejected'} transaction.`));
  setPage('Transaction', unverified ? 'tx-unverified' : `tx-${t.status}`, ...content);
}

// --- Account page ----------------------------------------------------------------------------

async function pageAccount(view, raw) {
  const addr = raw.trim().toLowerCase();
  setPage('Account', 'loading', loading('Loading account…'));
  const r = await api(`/v1/accounts/${encodeURIComponent(addr)}`, { signal: view.signal });
  if (!view.alive) return;
  if (!r.ok) {
    if (r.status === 400) {
      setPage('Invalid address', 'notfound', notFound('Not a valid address', `“${raw}” is not an address of this chain. Addresses start with ldg1 and carry a checksum, so a mistyped one is refused. (${r.error.message})`));
      return;
    }
    throw new ApiFailure(r);
  }

  const balance = statCard('Balance', 'account-balance');
  balance.value.classList.add('stat-amount');
  const nonce = statCard('Nonce', 'account-nonce');
  const pending = statCard('Pending', 'account-pending');
  const validatorInfo = h('div', { class: 'cell-flex' });
  const rows = h('ol', { class: 'rows', 'data-testid': 'account-txs' });
  const note = h('p', { class: 'muted small list-note' });
  const moreBtn = h('button', { type: 'button', class: 'btn', 'data-testid': 'account-more' }, 'Show older transactions');
  const more = h('div', { class: 'more' });
  const cache = new Map();

  // Balance and nonce are shown only as verified (from the proof answer); the pending count is the
  // mempool's, which no proof covers, from the plain answer.
  const showPending = (a) => {
    const p = toBig(a.next_nonce) - toBig(a.nonce);
    fill(pending.value, fmtInt(p > 0n ? p : 0n));
    fill(pending.sub, 'in the mempool (not verifiable)');
  };
  const showVerified = (v) => {
    const shown = fmtAmount(v.balance);
    fill(balance.value, shown);
    balance.value.classList.toggle('stat-long', shown.length > 20);
    fill(balance.sub, live.status && live.status.token ? fmtBase(v.balance) : '');
    fill(nonce.value, fmtInt(v.nonce));
    fill(nonce.sub, `${fmtInt(v.nonce)} transaction${v.nonce === 1n ? '' : 's'} sent`);
  };
  const showUnverified = () => {
    balance.value.classList.remove('stat-long');
    fill(balance.value, h('span', { class: 'unverified' }, 'Not verified'));
    fill(balance.sub, 'the node’s answer failed the check');
    fill(nonce.value, h('span', { class: 'unverified' }, 'Not verified'));
    fill(nonce.sub, '');
  };
  fill(balance.value, h('span', { class: 'muted' }, 'Verifying…'));
  fill(nonce.value, h('span', { class: 'muted' }, 'Verifying…'));
  showPending(r.data);
  const check = verifyBox();
  let verified = null; // the last verified {balance, nonce}
  const runVerify = async () => {
    check.verifying();
    const out = await fetchVerified(view, `/v1/accounts/${encodeURIComponent(addr)}/proof`, (tools, trust, answer) => verify.verifyAccount(tools, trust, addr, answer));
    if (!view.alive) return;
    if (out.ok) {
      verified = out.value;
      showVerified(out.value);
      check.verified(out.value.at, out.root, out.ms);
    } else {
      verified = null;
      showUnverified();
      check.failed(out.error, out.ms);
    }
  };
  const unused = toBig(r.data.balance) === 0n && toBig(r.data.nonce) === 0n;
  const showValidator = () => {
    const v = live.validators && live.validators.validators.find((x) => x.address === addr);
    fill(validatorInfo, v ? [badge('Validator', 'info'), h('span', { class: 'muted small' }, `voting power ${fmtInt(v.power)} of ${fmtInt(live.validators.total_power)}`)] : null);
  };
  showValidator();

  setPage(
    'Account',
    'account',
    h('div', { class: 'page-head' }, h('h1', null, 'Account'), validatorInfo),
    card(null, [h('div', { class: 'account-addr' }, mono(addr, { full: true, what: 'address', testid: 'account-address' })), check.el, h('section', { class: 'stats stats-3' }, balance.el, nonce.el, pending.el)]),
    card('Transactions', [rows, note, more], { testid: 'account-txs-card' }),
  );

  // The node indexes every account's final transactions: page through them, newest first.
  const found = []; // rows, newest first
  const seen = new Set(); // their hashes
  let loaded = false; // the first page has arrived
  let older = false; // the node has transactions older than the last row
  let busy = false;
  let failure = null;
  const pagePath = (before) => `/v1/accounts/${encodeURIComponent(addr)}/transactions?limit=${ACCOUNT_TXS_PAGE}${before ? `&before=${encodeURIComponent(before)}` : ''}`;
  const toRow = (t) => ({
    hash: t.hash,
    height: Number(t.height),
    index: Number(t.index),
    from: t.from_address,
    to: t.transaction.tx.to,
    amount: t.transaction.tx.amount,
    fee: t.transaction.tx.fee,
    ts: t.timestamp_ms,
  });
  const render = () => {
    if (found.length) renderRows(rows, found.map((t) => txRow(t, cache, { perspective: addr })), cache);
    else rows.replaceChildren(h('li', null, emptyState(!loaded ? 'Loading transactions…' : 'No transactions yet.')));
    let text = '';
    if (failure) text = `Loading transactions failed: ${failure}`;
    else if (loaded && !found.length && unused) text = 'This address holds nothing and has sent nothing yet.';
    else if (older && found.length >= ACCOUNT_ROWS_MAX) text = `Showing the newest ${fmtInt(ACCOUNT_ROWS_MAX)}.`;
    fill(note, text);
    fill(more, older && found.length < ACCOUNT_ROWS_MAX ? moreBtn : '');
    moreBtn.disabled = busy;
  };
  /** One page before the last row (the newest page first), appended. */
  const loadOlder = async () => {
    if (busy) return;
    busy = true;
    failure = null;
    render();
    try {
      const last = found[found.length - 1];
      const page = await apiData(pagePath(loaded && last ? `${last.height}-${last.index}` : null), { signal: view.signal });
      if (!view.alive) return;
      let capped = false;
      for (const t of page.txs.map(toRow)) {
        if (seen.has(t.hash)) continue;
        if (found.length >= ACCOUNT_ROWS_MAX) {
          capped = true;
          break;
        }
        seen.add(t.hash);
        found.push(t);
      }
      loaded = true;
      older = capped || page.next != null;
    } catch (e) {
      if (!view.alive) return;
      failure = e.message;
    } finally {
      busy = false;
      if (view.alive) render();
    }
  };
  /** The newest page, put in front of the rows. When all of it is new and more exist, the rows
   *  would have a gap: start over from it instead. */
  const loadNewer = async () => {
    if (busy || !loaded) return;
    busy = true;
    try {
      const r = await api(pagePath(null), { signal: view.signal });
      if (!view.alive || !r.ok) return;
      const fresh = r.data.txs.map(toRow).filter((t) => !seen.has(t.hash));
      if (!fresh.length) return;
      if (fresh.length === r.data.txs.length && r.data.next != null && found.length) {
        found.length = 0;
        seen.clear();
        older = true;
      }
      for (const t of fresh) seen.add(t.hash);
      found.unshift(...fresh);
      if (found.length > ACCOUNT_ROWS_MAX) {
        for (const t of found.splice(ACCOUNT_ROWS_MAX)) seen.delete(t.hash);
        older = true;
      }
    } finally {
      busy = false;
      if (view.alive) render();
    }
  };
  moreBtn.addEventListener('click', () => loadOlder());

  // Live: new blocks may touch this account; refresh the balance and add its new transactions.
  // A changed balance is checked again before it is shown.
  const refresh = view.throttle(1_000, async () => {
    const a = await api(`/v1/accounts/${encodeURIComponent(addr)}`, { signal: view.signal });
    if (view.alive && a.ok) {
      showPending(a.data);
      if (!verified || toBig(a.data.balance) !== verified.balance || toBig(a.data.nonce) !== verified.nonce) await runVerify();
    }
    await loadNewer();
  });
  view.listen((kind) => {
    if (kind === 'blocks' || kind === 'head') refresh();
    if (kind === 'validators') showValidator();
  });
  await Promise.all([runVerify(), loadOlder()]);
}

// --- Search ----------------------------------------------------------------------------------

async function pageSearch(view, q) {
  const query = q.trim();
  if (HEX64.test(query)) {
    const hash = query.replace(/^0x/, '').toLowerCase();
    setPage('Search', 'loading', loading('Looking for a block or transaction with this hash…'));
    // A 64-hex string is a block hash or a transaction hash; blocks are the cheaper lookup.
    const b = await api(`/v1/blocks/hash/${hash}`, { signal: view.signal });
    if (!view.alive) return;
    if (b.ok) {
      location.replace(blockHref(hash));
      return;
    }
    const t = await api(`/v1/transactions/${hash}`, { signal: view.signal });
    if (!view.alive) return;
    if (t.ok) {
      location.replace(txHref(hash));
      return;
    }
    if (b.status === 404 && t.status === 404) {
      setPage('Not found', 'notfound', notFound('Not found', ['No block and no transaction with hash ', h('code', { class: 'wrap' }, hash), ' on this node.']));
      return;
    }
    throw new ApiFailure(b.status === 404 ? t : b);
  }
  setPage(
    'Search',
    'notfound',
    notFound(
      'Nothing to search for',
      `“${query}” is not a block height, a hash or an address.`,
      h('ul', { class: 'help' }, h('li', null, 'A block height: ', h('code', null, '42')), h('li', null, 'A block or transaction hash: 64 hex characters'), h('li', null, 'An address: ', h('code', null, 'ldg1…'))),
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// Start

function reportError(e) {
  if (e && e.name === 'AbortError') return;
  console.error(e);
  const banner = document.getElementById('banner');
  if (!banner) return;
  fill(banner, h('span', { 'data-testid': 'page-error' }, `Something went wrong on this page: ${e && e.message ? e.message : e}. `), h('a', { href: '', onclick: () => location.reload() }, 'Reload'));
  banner.hidden = false;
}

window.addEventListener('error', (e) => reportError(e.error || new Error(e.message)));
window.addEventListener('unhandledrejection', (e) => reportError(e.reason));

function start() {
  document.getElementById('search').addEventListener('submit', onSearch);
  window.addEventListener('hashchange', route);
  startLive();
  // The first page waits a little for the chain's display unit; it renders without it otherwise.
  Promise.race([statusReady, new Promise((resolve) => setTimeout(resolve, 3_000))]).then(route);
}

start();
