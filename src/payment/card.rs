//! Card details as submitted at checkout, and their validation. The number is held only
//! in memory for the duration of the request; `Debug` never prints it.

use serde::Deserialize;
use std::fmt;

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardDetails {
    pub card_number: String,
    pub exp_month: u32,
    pub exp_year: u32,
    pub cvc: String,
}

impl fmt::Debug for CardDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardDetails")
            .field("last4", &self.last4())
            .field("exp_month", &self.exp_month)
            .field("exp_year", &self.exp_year)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    #[error("card_number must be 12 to 19 digits")]
    NumberFormat,
    #[error("card_number fails the Luhn check")]
    Luhn,
    #[error("exp_month must be 1 to 12")]
    Month,
    #[error("the card has expired")]
    Expired,
    #[error("cvc must be 3 or 4 digits")]
    Cvc,
    #[error("the payment method store failed: {0}")]
    Store(String),
}

impl CardDetails {
    /// The digits of the number, spaces and dashes removed.
    pub fn digits(&self) -> String {
        self.card_number
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .collect()
    }

    pub fn last4(&self) -> String {
        let d = self.digits();
        d.chars()
            .skip(d.chars().count().saturating_sub(4))
            .collect()
    }

    /// Checks the number (format and Luhn), the expiry against `now`, and the cvc.
    pub fn validate(&self, now_year: u32, now_month: u32) -> Result<(), CardError> {
        let d = self.digits();
        if !(12..=19).contains(&d.len()) || !d.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CardError::NumberFormat);
        }
        if !luhn(&d) {
            return Err(CardError::Luhn);
        }
        if !(1..=12).contains(&self.exp_month) {
            return Err(CardError::Month);
        }
        let year = if self.exp_year < 100 {
            2000 + self.exp_year
        } else {
            self.exp_year
        };
        if (year, self.exp_month) < (now_year, now_month) {
            return Err(CardError::Expired);
        }
        if !(3..=4).contains(&self.cvc.len()) || !self.cvc.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CardError::Cvc);
        }
        Ok(())
    }
}

fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(n: &str) -> CardDetails {
        CardDetails {
            card_number: n.into(),
            exp_month: 12,
            exp_year: 2030,
            cvc: "123".into(),
        }
    }

    #[test]
    fn validates_test_cards_and_hides_the_number() {
        for n in [
            "4242424242424242",
            "4000000000000002",
            "4000000000009995",
            "4000000000000119",
            "4242 4242 4242 4242",
        ] {
            assert_eq!(card(n).validate(2026, 11), Ok(()), "{n}");
        }
        assert_eq!(
            card("4242424242424241").validate(2026, 11),
            Err(CardError::Luhn)
        );
        assert_eq!(card("42").validate(2026, 11), Err(CardError::NumberFormat));
        let mut c = card("4242424242424242");
        c.exp_year = 2020;
        assert_eq!(c.validate(2026, 11), Err(CardError::Expired));
        assert!(!format!("{:?}", card("4242424242424242")).contains("424242424242"));
        assert_eq!(card("4242424242424242").last4(), "4242");
    }
}
