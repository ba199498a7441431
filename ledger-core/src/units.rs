//! The display unit of a chain: amounts are integers of base units everywhere (state, encoding,
//! JSON), and people read and type them in a display unit of `10^decimals` base units, e.g.
//! `1,000,000.000000 LDG` for `1000000000000` base units with 6 decimals.
//!
//! The unit is part of the genesis (`"token": {"symbol": "LDG", "decimals": 6}`) and served by
//! `GET /v1/status`, so the wallet and the explorer show what the chain says. Conversion is exact
//! integer arithmetic on the decimal digits: no floating point, no rounding (an amount with more
//! fractional digits than the unit has is refused, not rounded).

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::types::Amount;

/// The most decimals a unit may have: `u64::MAX` has 20 digits, so 19 leaves one whole digit.
pub const MAX_DECIMALS: u8 = 19;
/// The longest symbol.
pub const MAX_SYMBOL_LEN: usize = 11;

/// A chain's display unit: its symbol and how many decimal places one unit has in base units.
/// Every way in (JSON, the canonical encoding) checks it like [`Token::new`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, Serialize, Deserialize)]
#[serde(try_from = "TokenWire")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Token {
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Z][A-Z0-9]{0,10}$"))]
    symbol: String,
    #[cfg_attr(feature = "openapi", schema(maximum = 19))]
    decimals: u8,
}

#[derive(BorshDeserialize, Deserialize)]
struct TokenWire {
    symbol: String,
    decimals: u8,
}

impl TryFrom<TokenWire> for Token {
    type Error = TokenError;
    fn try_from(w: TokenWire) -> Result<Token, TokenError> {
        Token::new(&w.symbol, w.decimals)
    }
}

impl BorshDeserialize for Token {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        Token::try_from(TokenWire::deserialize_reader(reader)?)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
    }
}

/// Why a unit was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error(
        "symbol '{got}': 1 to {MAX_SYMBOL_LEN} characters, A-Z and 0-9, starting with a letter"
    )]
    BadSymbol { got: String },
    #[error("decimals {got}: at most {MAX_DECIMALS}")]
    TooManyDecimals { got: u8 },
}

/// Why a typed amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseAmountError {
    #[error("'{got}' is not an amount: expected base units (1500000) or {symbol} (1.5{symbol})")]
    Malformed { got: String, symbol: String },
    #[error(
        "'{got}': a decimal amount needs its unit ({got}{symbol}); a plain integer is base units"
    )]
    DecimalWithoutUnit { got: String, symbol: String },
    #[error("'{got}': {symbol} has {decimals} decimals, this has more")]
    TooPrecise {
        got: String,
        symbol: String,
        decimals: u8,
    },
    #[error("'{got}' is more than the largest amount, {max} base units")]
    TooLarge { got: String, max: u64 },
}

impl Token {
    pub fn new(symbol: &str, decimals: u8) -> Result<Token, TokenError> {
        let mut chars = symbol.chars();
        let ok = symbol.len() <= MAX_SYMBOL_LEN
            && chars.next().is_some_and(|c| c.is_ascii_uppercase())
            && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if !ok {
            return Err(TokenError::BadSymbol {
                got: symbol.to_owned(),
            });
        }
        if decimals > MAX_DECIMALS {
            return Err(TokenError::TooManyDecimals { got: decimals });
        }
        Ok(Token {
            symbol: symbol.to_owned(),
            decimals,
        })
    }

    /// The dev chain's unit: 1 LDG = 10^6 base units.
    pub fn dev() -> Token {
        Token {
            symbol: "LDG".to_owned(),
            decimals: 6,
        }
    }

    pub fn symbol(&self) -> &str {
        &self.symbol
    }

    pub fn decimals(&self) -> u8 {
        self.decimals
    }

    /// `1,000,000.000000 LDG`: every decimal place shown, thousands grouped.
    pub fn format(&self, amount: Amount) -> String {
        format!("{} {}", self.format_number(amount), self.symbol)
    }

    /// [`Token::format`] without the symbol.
    pub fn format_number(&self, amount: Amount) -> String {
        let digits = amount.0.to_string();
        let d = usize::from(self.decimals);
        let padded = format!("{digits:0>width$}", width = d + 1);
        let (whole, frac) = padded.split_at(padded.len() - d);
        let grouped = group_thousands(whole);
        if d == 0 {
            grouped
        } else {
            format!("{grouped}.{frac}")
        }
    }

    /// An amount as a person types it: base units (`1500000`), or display units with the symbol
    /// (`1.5LDG`, `1.5 LDG`, `1,000 ldg`). Commas and `_` group digits and are ignored.
    pub fn parse(&self, text: &str) -> Result<Amount, ParseAmountError> {
        let malformed = || ParseAmountError::Malformed {
            got: text.to_owned(),
            symbol: self.symbol.clone(),
        };
        let t = text.trim();
        let (number, display) = match strip_suffix_ignore_case(t, &self.symbol) {
            Some(n) => (n.trim_end(), true),
            None => (t, false),
        };
        let (grouped, frac) = match number.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (number, None),
        };
        // Grouping marks only between groups of three digits of the whole part (`1,000,000`,
        // `1_500_000`): `1,5` may mean one and a half (a decimal comma), so it is refused rather
        // than read as fifteen.
        let whole = ungroup(grouped).ok_or_else(malformed)?;
        let whole = whole.as_str();
        let is_digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
        if !is_digits(whole)
            || !frac.is_none_or(is_digits)
            || (whole.is_empty() && frac.is_none_or(str::is_empty))
        {
            return Err(malformed());
        }
        if !display {
            if frac.is_some() {
                return Err(ParseAmountError::DecimalWithoutUnit {
                    got: t.to_owned(),
                    symbol: self.symbol.clone(),
                });
            }
            return whole.parse::<u64>().map(Amount).map_err(|_| {
                if whole.is_empty() {
                    malformed()
                } else {
                    ParseAmountError::TooLarge {
                        got: t.to_owned(),
                        max: u64::MAX,
                    }
                }
            });
        }
        let frac = frac.unwrap_or("").trim_end_matches('0');
        let d = usize::from(self.decimals);
        if frac.len() > d {
            return Err(ParseAmountError::TooPrecise {
                got: t.to_owned(),
                symbol: self.symbol.clone(),
                decimals: self.decimals,
            });
        }
        let digits = format!("{whole}{frac:0<d$}");
        let digits = digits.trim_start_matches('0');
        if digits.is_empty() {
            return Ok(Amount(0));
        }
        digits
            .parse::<u64>()
            .map(Amount)
            .map_err(|_| ParseAmountError::TooLarge {
                got: t.to_owned(),
                max: u64::MAX,
            })
    }
}

/// An amount as people read it: in the unit with the base units beside
/// (`1.500000 LDG (1500000 base units)`), or base units alone when the chain names no unit.
pub fn describe(amount: Amount, token: Option<&Token>) -> String {
    let base = match amount.0 {
        1 => "1 base unit".to_owned(),
        n => format!("{n} base units"),
    };
    match token {
        Some(t) => format!("{} ({base})", t.format(amount)),
        None => base,
    }
}

/// The digits of a whole part written with or without grouping marks: every mark (`,` or `_`, one
/// kind throughout) follows a group of one to three digits and precedes exactly three; `None` if a
/// mark stands anywhere else.
fn ungroup(text: &str) -> Option<String> {
    let Some(mark) = text.chars().find(|c| matches!(c, ',' | '_')) else {
        return Some(text.to_owned());
    };
    let mut groups = text.split(mark);
    let first = groups.next()?;
    let is_digits = |g: &str| g.bytes().all(|b| b.is_ascii_digit());
    if first.is_empty() || first.len() > 3 || !is_digits(first) {
        return None;
    }
    let mut out = first.to_owned();
    for g in groups {
        if g.len() != 3 || !is_digits(g) {
            return None;
        }
        out.push_str(g);
    }
    Some(out)
}

fn strip_suffix_ignore_case<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = s.len().checked_sub(suffix.len())?;
    let (head, tail) = (s.get(..cut)?, s.get(cut..)?);
    tail.eq_ignore_ascii_case(suffix).then_some(head)
}

fn group_thousands(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_every_decimal_and_groups_thousands() {
        let t = Token::dev();
        assert_eq!(t.format(Amount(1_000_000_000_000)), "1,000,000.000000 LDG");
        assert_eq!(t.format(Amount(0)), "0.000000 LDG");
        assert_eq!(t.format(Amount(1)), "0.000001 LDG");
        assert_eq!(t.format(Amount(999_999_912_323)), "999,999.912323 LDG");
        assert_eq!(t.format(Amount(u64::MAX)), "18,446,744,073,709.551615 LDG");
        let whole = Token::new("X", 0).expect("valid");
        assert_eq!(whole.format(Amount(1234)), "1,234 X");
        let max = Token::new("Y", MAX_DECIMALS).expect("valid");
        assert_eq!(max.format_number(Amount(u64::MAX)), "1.8446744073709551615");
    }

    #[test]
    fn parses_base_units_and_display_units_exactly() {
        let t = Token::dev();
        assert_eq!(t.parse("1500000"), Ok(Amount(1_500_000)));
        assert_eq!(t.parse("1.5LDG"), Ok(Amount(1_500_000)));
        assert_eq!(t.parse("1.5 ldg"), Ok(Amount(1_500_000)));
        assert_eq!(t.parse("1,000,000 LDG"), Ok(Amount(1_000_000_000_000)));
        assert_eq!(t.parse("0.000001LDG"), Ok(Amount(1)));
        assert_eq!(t.parse(".5LDG"), Ok(Amount(500_000)));
        assert_eq!(t.parse("2.LDG"), Ok(Amount(2_000_000)));
        assert_eq!(t.parse("0LDG"), Ok(Amount(0)));
        assert_eq!(
            t.parse("1.100000000LDG"),
            Ok(Amount(1_100_000)),
            "trailing zeros are exact"
        );
        assert_eq!(t.parse("18446744073709.551615LDG"), Ok(Amount(u64::MAX)));
        assert_eq!(t.parse(&u64::MAX.to_string()), Ok(Amount(u64::MAX)));
    }

    #[test]
    fn refuses_what_it_would_have_to_guess_or_round() {
        let t = Token::dev();
        assert!(matches!(
            t.parse("1.5"),
            Err(ParseAmountError::DecimalWithoutUnit { .. })
        ));
        assert!(matches!(
            t.parse("0.0000001LDG"),
            Err(ParseAmountError::TooPrecise { .. })
        ));
        assert!(matches!(
            t.parse("18446744073709.551616LDG"),
            Err(ParseAmountError::TooLarge { .. })
        ));
        assert!(matches!(
            t.parse("18446744073709551616"),
            Err(ParseAmountError::TooLarge { .. })
        ));
        for bad in [
            "", "LDG", ".LDG", "-1", "1e6", "1.5 BTC", "abc", "1..2LDG", " . ",
        ] {
            assert!(
                matches!(t.parse(bad), Err(ParseAmountError::Malformed { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn every_amount_round_trips_through_its_display_form() {
        let t = Token::dev();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..10_000 {
            // xorshift: a deterministic spread over the whole u64 range.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            for a in [x, x >> 20, x >> 40, x % 1000] {
                let shown = t.format(Amount(a));
                assert_eq!(t.parse(&shown), Ok(Amount(a)), "{shown}");
            }
        }
    }

    #[test]
    fn described_amounts_show_the_unit_and_the_base_units() {
        let t = Token::dev();
        assert_eq!(
            describe(Amount(1_500_000), Some(&t)),
            "1.500000 LDG (1500000 base units)"
        );
        assert_eq!(describe(Amount(1), Some(&t)), "0.000001 LDG (1 base unit)");
        assert_eq!(describe(Amount(7), None), "7 base units");
    }

    #[test]
    fn decoding_checks_like_new() {
        assert!(serde_json::from_str::<Token>(r#"{"symbol":"LDG","decimals":6}"#).is_ok());
        assert!(serde_json::from_str::<Token>(r#"{"symbol":"l d","decimals":6}"#).is_err());
        assert!(serde_json::from_str::<Token>(r#"{"symbol":"LDG","decimals":25}"#).is_err());
        let bad = borsh::to_vec(&TokenWireOut {
            symbol: "no".into(),
            decimals: 1,
        })
        .expect("encodes");
        assert!(borsh::from_slice::<Token>(&bad).is_err());
        let good = borsh::to_vec(&Token::dev()).expect("encodes");
        assert_eq!(borsh::from_slice::<Token>(&good).ok(), Some(Token::dev()));
    }

    /// Found in review: a comma is ignored wherever it stands, so the European decimal comma
    /// `1,5LDG` (one and a half) is read as 15 LDG, ten times the amount meant, and `1,5` as 15
    /// base units. A grouping separator that is not between groups of three digits is ambiguous
    /// and must be refused, like `1.5` without a unit is.
    #[test]
    fn a_comma_that_is_not_a_thousands_separator_is_refused() {
        let t = Token::dev();
        for ambiguous in [
            "1,5LDG",
            "1,5 LDG",
            "0,000001LDG",
            "1,5",
            "1.5,5LDG",
            "12,34,567 LDG",
        ] {
            let got = t.parse(ambiguous);
            assert!(
                got.is_err(),
                "{ambiguous:?} is ambiguous (decimal comma? misplaced group?) but parsed as {got:?}"
            );
        }
        // What grouping means stays accepted.
        assert_eq!(t.parse("1,000,000 LDG"), Ok(Amount(1_000_000_000_000)));
        assert_eq!(t.parse("1_500_000"), Ok(Amount(1_500_000)));
    }

    #[derive(BorshSerialize)]
    struct TokenWireOut {
        symbol: String,
        decimals: u8,
    }

    #[test]
    fn symbols_and_decimals_are_checked() {
        assert!(Token::new("LDG", 6).is_ok());
        assert!(Token::new("A1", 0).is_ok());
        for bad in ["", "ldg", "1AB", "TOOLONGSYMBOL", "L-G", "LDG "] {
            assert!(
                matches!(Token::new(bad, 6), Err(TokenError::BadSymbol { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(
            Token::new("LDG", 20),
            Err(TokenError::TooManyDecimals { got: 20 })
        );
    }
}
