//! Parsers that turn argument text into typed values at the boundary (clap `value_parser`s), each
//! with an error that says what is wrong with the text.

use std::fmt;
use std::str::FromStr;

use ledger_core::tx::MAX_MEMO_BYTES;
use ledger_core::types::AddressError;
use ledger_core::units::Token;
use ledger_core::{Address, Amount, Hash};

/// Why an address argument was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid address '{input}': {reason}")]
pub struct BadAddress {
    input: String,
    reason: String,
}

pub fn address(s: &str) -> Result<Address, BadAddress> {
    // A pasted address often brings a space or a line break; the address itself has none.
    s.trim().parse::<Address>().map_err(|e| BadAddress {
        input: s.to_string(),
        reason: match e {
            AddressError::Checksum(detail) if detail.contains("checksum") => {
                "checksum mismatch (a character is mistyped, missing or swapped)".to_string()
            }
            AddressError::Checksum(detail) => format!("not a bech32m address ({detail})"),
            AddressError::WrongPrefix { expected, got } => {
                format!("must start with '{expected}1', not '{got}1'")
            }
            AddressError::NotCanonical { canonical } => {
                format!("is not the canonical form of an address; did you mean {canonical}?")
            }
            AddressError::WrongLength { expected, got } => {
                format!("holds {got} bytes instead of {expected}")
            }
        },
    })
}

/// Why an amount argument was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadAmount {
    #[error("invalid amount '{0}': expected a whole number of base units")]
    NotWhole(String),
    #[error("invalid amount '{0}': larger than the maximum {max}", max = u64::MAX)]
    TooLarge(String),
    #[error("invalid amount '{0}': must be positive")]
    Zero(String),
    #[error(
        "invalid amount '{0}': a decimal amount needs the chain's unit (e.g. {0}LDG); a plain integer is base units"
    )]
    DecimalWithoutUnit(String),
}

/// A non-negative whole number of base units; `_` may group digits (`1_000_000`).
pub fn amount(s: &str) -> Result<Amount, BadAmount> {
    let digits: String = s.chars().filter(|&c| c != '_').collect();
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || s.starts_with('_')
        || s.ends_with('_')
    {
        return Err(BadAmount::NotWhole(s.to_string()));
    }
    // All digits, so the only possible parse failure is overflow.
    digits
        .parse::<u64>()
        .map(Amount)
        .map_err(|_| BadAmount::TooLarge(s.to_string()))
}

/// An amount as typed: whole base units (`1500000`, checked now), or display units with the
/// chain's symbol (`1.5LDG`), converted exactly once the node has said what its unit is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmountArg {
    Base(Amount),
    Display(String),
}

impl AmountArg {
    /// The amount in base units, given the chain's display unit (if it has one).
    pub fn resolve(&self, token: Option<&Token>) -> Result<Amount, String> {
        match (self, token) {
            (AmountArg::Base(a), _) => Ok(*a),
            (AmountArg::Display(text), Some(t)) => t.parse(text).map_err(|e| e.to_string()),
            (AmountArg::Display(text), None) => Err(format!(
                "'{text}': this chain names no display unit; give the amount in base units"
            )),
        }
    }
}

/// [`amount`], or a number followed by a unit symbol (letters) for [`AmountArg::Display`].
pub fn amount_arg(s: &str) -> Result<AmountArg, BadAmount> {
    if let Ok(a) = amount(s) {
        return Ok(AmountArg::Base(a));
    }
    let t = s.trim();
    // A symbol is trailing letters (`LDG`); what precedes it must look like a number.
    let symbol_len = t
        .chars()
        .rev()
        .take_while(char::is_ascii_alphabetic)
        .count();
    let number = t[..t.len() - symbol_len].trim_end();
    let numeric = !number.is_empty()
        && number.chars().any(|c| c.is_ascii_digit())
        && number
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | '_'));
    if symbol_len > 0 && numeric {
        return Ok(AmountArg::Display(t.to_string()));
    }
    if numeric && number.contains('.') {
        return Err(BadAmount::DecimalWithoutUnit(s.to_string()));
    }
    amount(s).map(AmountArg::Base)
}

/// [`amount_arg`], and not zero base units.
pub fn positive_amount_arg(s: &str) -> Result<AmountArg, BadAmount> {
    match amount_arg(s)? {
        AmountArg::Base(Amount(0)) => Err(BadAmount::Zero(s.to_string())),
        a => Ok(a),
    }
}

/// Why a transaction hash argument was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid transaction hash '{input}': {reason}")]
pub struct BadHash {
    input: String,
    reason: ledger_core::hash::ParseHashError,
}

pub fn tx_hash(s: &str) -> Result<Hash, BadHash> {
    s.trim().parse::<Hash>().map_err(|reason| BadHash {
        input: s.to_string(),
        reason,
    })
}

/// A transfer's memo: free text, at most [`MAX_MEMO_BYTES`] bytes of UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Memo(pub Vec<u8>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("memo is {got} bytes, the limit is {max}", max = MAX_MEMO_BYTES)]
pub struct BadMemo {
    got: usize,
}

pub fn memo(s: &str) -> Result<Memo, BadMemo> {
    if s.len() > MAX_MEMO_BYTES {
        return Err(BadMemo { got: s.len() });
    }
    Ok(Memo(s.as_bytes().to_vec()))
}

/// The base URL of a node's HTTP API: `http://host:port`, without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeUrl(String);

/// Why a node URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadNodeUrl {
    #[error("invalid node URL '{0}': expected http://host:port")]
    Malformed(String),
    #[error(
        "invalid node URL '{0}': https is not supported by this wallet build; use http:// (behind a TLS proxy if the node is remote)"
    )]
    Https(String),
}

impl NodeUrl {
    /// The URL of an API path such as `/v1/status`.
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }

    /// Whether the host is this machine (`localhost`, 127.0.0.0/8, `[::1]`).
    pub fn is_loopback(&self) -> bool {
        let rest = self.0.strip_prefix("http://").unwrap_or(&self.0);
        let authority = rest.split('/').next().unwrap_or_default();
        let host = match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
        };
        host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for NodeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for NodeUrl {
    type Err = BadNodeUrl;

    /// Accepts `http://host:port[/prefix]`, and `host:port` as a shorthand for it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.starts_with("https://") {
            return Err(BadNodeUrl::Https(s.to_string()));
        }
        let rest = match t.strip_prefix("http://") {
            Some(rest) => rest,
            None if !t.contains("://") => t,
            None => return Err(BadNodeUrl::Malformed(s.to_string())),
        };
        let rest = rest.trim_end_matches('/');
        let host = rest.split('/').next().unwrap_or_default();
        let ok = !host.is_empty()
            && !rest.contains(['?', '#', ' ', '@'])
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.:[]_".contains(c));
        if !ok {
            return Err(BadNodeUrl::Malformed(s.to_string()));
        }
        Ok(NodeUrl(format!("http://{rest}")))
    }
}

pub fn node_url(s: &str) -> Result<NodeUrl, BadNodeUrl> {
    s.parse()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger_core::Keypair;

    #[test]
    fn loopback_hosts_are_told_apart_from_remote_ones() {
        for local in [
            "127.0.0.1:8700",
            "http://127.0.0.1:8700/prefix",
            "http://127.8.9.10:1",
            "localhost:8700",
            "http://LOCALHOST:8700",
            "http://[::1]:8700",
        ] {
            let url: NodeUrl = local.parse().expect("a node URL");
            assert!(url.is_loopback(), "{local}");
        }
        for remote in [
            "http://10.0.0.1:8700",
            "node.example:8700",
            "http://[2001:db8::1]:8700",
            "http://127.0.0.1.example:8700",
        ] {
            let url: NodeUrl = remote.parse().expect("a node URL");
            assert!(!url.is_loopback(), "{remote}");
        }
    }

    #[test]
    fn amounts_are_whole_base_units() {
        assert_eq!(amount("12"), Ok(Amount(12)));
        assert_eq!(amount("1_000_000"), Ok(Amount(1_000_000)));
        assert_eq!(amount("0"), Ok(Amount(0)));
        assert_eq!(amount("18446744073709551615"), Ok(Amount(u64::MAX)));
        for bad in [
            "1.5", "", "-3", "+3", "1e6", "_1", "1_", "12 ", "0x10", "ten",
        ] {
            assert_eq!(amount(bad), Err(BadAmount::NotWhole(bad.into())), "{bad:?}");
        }
        assert_eq!(
            amount("18446744073709551616"),
            Err(BadAmount::TooLarge("18446744073709551616".into()))
        );
    }

    #[test]
    fn amount_errors_read_plainly() {
        assert_eq!(
            positive_amount_arg("1.5").map_err(|e| e.to_string()),
            Err("invalid amount '1.5': a decimal amount needs the chain's unit (e.g. 1.5LDG); a plain integer is base units".into())
        );
        assert_eq!(
            positive_amount_arg("0").map_err(|e| e.to_string()),
            Err("invalid amount '0': must be positive".into())
        );
        assert_eq!(
            positive_amount_arg("abc").map_err(|e| e.to_string()),
            Err("invalid amount 'abc': expected a whole number of base units".into())
        );
        assert_eq!(positive_amount_arg("7"), Ok(AmountArg::Base(Amount(7))));
    }

    #[test]
    fn a_mistyped_address_names_the_checksum() {
        let good = Keypair::dev("account", 1).address().to_string();
        assert_eq!(address(&good), Ok(Keypair::dev("account", 1).address()));
        let mut chars: Vec<char> = good.chars().collect();
        let i = chars.len() - 3;
        chars[i] = if chars[i] == 'q' { 'p' } else { 'q' };
        let typo: String = chars.into_iter().collect();
        let msg = address(&typo).expect_err("refused").to_string();
        assert!(
            msg.starts_with(&format!("invalid address '{typo}': checksum")),
            "{msg}"
        );
    }

    #[test]
    fn an_address_of_another_kind_is_named() {
        let msg = address("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq")
            .expect_err("refused")
            .to_string();
        assert!(msg.starts_with("invalid address 'bc1q"), "{msg}");
        let msg = address("hello").expect_err("refused").to_string();
        assert!(
            msg.starts_with("invalid address 'hello': not a bech32m address"),
            "{msg}"
        );
    }

    #[test]
    fn hashes_parse_with_or_without_0x() {
        let h = Hash::digest(b"x");
        assert_eq!(tx_hash(&h.to_hex()), Ok(h));
        assert_eq!(tx_hash(&format!("0x{h}")), Ok(h));
        let msg = tx_hash("abc").expect_err("refused").to_string();
        assert_eq!(
            msg,
            "invalid transaction hash 'abc': hash must be 64 hex characters, got 3"
        );
    }

    #[test]
    fn memo_is_bounded() {
        assert_eq!(memo("hi"), Ok(Memo(b"hi".to_vec())));
        assert!(memo(&"x".repeat(MAX_MEMO_BYTES)).is_ok());
        assert_eq!(
            memo(&"x".repeat(MAX_MEMO_BYTES + 1)).map_err(|e| e.to_string()),
            Err(format!(
                "memo is {} bytes, the limit is {MAX_MEMO_BYTES}",
                MAX_MEMO_BYTES + 1
            ))
        );
    }

    #[test]
    fn node_urls_are_normalised() {
        let u = |s: &str| node_url(s).map(|u| u.to_string());
        assert_eq!(
            u("http://127.0.0.1:8700/"),
            Ok("http://127.0.0.1:8700".into())
        );
        assert_eq!(u("localhost:8700"), Ok("http://localhost:8700".into()));
        assert_eq!(u("http://[::1]:8700"), Ok("http://[::1]:8700".into()));
        assert_eq!(
            u("http://node.example:80/api"),
            Ok("http://node.example:80/api".into())
        );
        assert!(matches!(node_url("https://x:1"), Err(BadNodeUrl::Https(_))));
        assert!(matches!(
            node_url("ftp://x:1"),
            Err(BadNodeUrl::Malformed(_))
        ));
        assert!(matches!(node_url("http://"), Err(BadNodeUrl::Malformed(_))));
        assert!(matches!(
            node_url("http://a b"),
            Err(BadNodeUrl::Malformed(_))
        ));
        assert_eq!(
            node_url("http://a:1").map(|u| u.join("/v1/status")),
            Ok("http://a:1/v1/status".into())
        );
    }
}
