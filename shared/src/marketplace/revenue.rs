//! Revenue split, earnings periods and payout idempotency keys.
//!
//! ## Split
//! A paid install of `amount` cents gives the developer `floor(amount × 70 / 100)` cents and the
//! platform the rest, so the two parts always sum to `amount` exactly and the developer never
//! gets more than 70 %: the platform keeps the sub-cent remainder (at most 0.9 cent above an
//! exact 30 %). Computed in `u128`, so no amount overflows.
//!
//! ## Periods
//! Earnings are grouped by calendar month in UTC, written `YYYY-MM`. A revenue event belongs to
//! the period of its `created_at`; a period covers `[start_ms, end_ms)`.
//!
//! ## Payouts
//! One payout per developer and period: the Stripe idempotency key
//! `payout:{developer}:{period}` makes a retried or concurrent payout a no-op.

use std::fmt;

use crate::domain::UserId;
use crate::error::FieldError;

/// The developer's share (percent).
pub const DEVELOPER_SHARE_PERCENT: u64 = 70;

/// Splits `amount_cents` into `(developer_cents, platform_cents)`: the developer gets
/// `floor(amount × 70 / 100)`, the platform the rest.
pub fn split(amount_cents: u64) -> (u64, u64) {
    let developer = u128::from(amount_cents) * u128::from(DEVELOPER_SHARE_PERCENT) / 100;
    // developer ≤ amount_cents, so it fits back into a u64.
    let developer = u64::try_from(developer).unwrap_or(amount_cents);
    (developer, amount_cents - developer)
}

const MS_PER_DAY: i64 = 86_400_000;

/// A calendar month in UTC: an earnings period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    year: i64,
    month: u8,
}

/// `(year, month, day)` of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Both are in small ranges by construction.
    (
        year,
        u8::try_from(month).unwrap_or(1),
        u8::try_from(day).unwrap_or(1),
    )
}

/// Days since 1970-01-01 of `year`-`month`-01 (Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u8) -> i64 {
    let m = i64::from(month);
    let y = if m <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5; // day 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl Period {
    /// The period containing the instant `ms` (epoch milliseconds, UTC).
    pub fn of(ms: i64) -> Self {
        let (year, month, _) = civil_from_days(ms.div_euclid(MS_PER_DAY));
        Self { year, month }
    }

    /// Parses `YYYY-MM` (four-digit year, month `01`–`12`).
    ///
    /// # Errors
    /// A [`FieldError`] on `field` for anything else.
    pub fn parse(raw: &str, field: &str) -> Result<Self, FieldError> {
        let bad = || FieldError::new(field, "must be a month as YYYY-MM (e.g. 2025-03)");
        let b = raw.as_bytes();
        let shape =
            b.len() == 7 && b[4] == b'-' && b[..4].iter().chain(&b[5..]).all(u8::is_ascii_digit);
        if !shape {
            return Err(bad());
        }
        let year: i64 = raw[..4].parse().map_err(|_| bad())?;
        let month: u8 = raw[5..].parse().map_err(|_| bad())?;
        if !(1..=12).contains(&month) {
            return Err(bad());
        }
        Ok(Self { year, month })
    }

    /// The year.
    pub fn year(self) -> i64 {
        self.year
    }

    /// The month, 1–12.
    pub fn month(self) -> u8 {
        self.month
    }

    /// The first instant of the period (epoch ms, inclusive).
    pub fn start_ms(self) -> i64 {
        days_from_civil(self.year, self.month).saturating_mul(MS_PER_DAY)
    }

    /// The first instant after the period (epoch ms, exclusive).
    pub fn end_ms(self) -> i64 {
        self.next().start_ms()
    }

    /// The following month.
    #[must_use]
    pub fn next(self) -> Self {
        if self.month == 12 {
            Self {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Self {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// Whether the instant `ms` lies in this period.
    pub fn contains(self, ms: i64) -> bool {
        (self.start_ms()..self.end_ms()).contains(&ms)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// The earnings period (`YYYY-MM`, UTC) of the instant `ms`.
pub fn period_of(ms: i64) -> String {
    Period::of(ms).to_string()
}

/// The idempotency key of the payout to `developer` for `period`: `payout:{developer}:{period}`.
pub fn payout_idempotency_key(developer: UserId, period: Period) -> String {
    format!("payout:{developer}:{period}")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_developer_gets_seventy_percent_of_round_amounts() {
        assert_eq!(split(1000), (700, 300));
        assert_eq!(split(99_999), (69_999, 30_000));
        assert_eq!(split(100), (70, 30));
    }

    #[test]
    fn the_platform_keeps_the_sub_cent_remainder() {
        assert_eq!(split(99), (69, 30)); // 69.3
        assert_eq!(split(1), (0, 1)); // 0.7
        assert_eq!(split(3), (2, 1)); // 2.1
        assert_eq!(split(0), (0, 0));
    }

    #[test]
    fn the_largest_amount_does_not_overflow() {
        let (d, p) = split(u64::MAX);
        assert_eq!(d + p, u64::MAX);
        assert_eq!(u128::from(d), u128::from(u64::MAX) * 70 / 100);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn the_parts_always_sum_to_the_amount_and_the_developer_gets_floor_seventy_percent(
            amount in any::<u64>()
        ) {
            let (d, p) = split(amount);
            prop_assert_eq!(u128::from(d) + u128::from(p), u128::from(amount));
            // d = floor(0.7 × amount): d × 100 ≤ 70 × amount < (d + 1) × 100.
            prop_assert!(u128::from(d) * 100 <= u128::from(amount) * 70);
            prop_assert!(u128::from(amount) * 70 < (u128::from(d) + 1) * 100);
        }

        #[test]
        fn the_split_is_monotonic_in_the_amount(amount in 0u64..u64::MAX) {
            let (d0, p0) = split(amount);
            let (d1, p1) = split(amount + 1);
            prop_assert!(d1 >= d0 && p1 >= p0);
        }

        #[test]
        fn every_instant_lies_in_its_own_period(ms in -62_135_596_800_000i64..253_402_300_799_999) {
            let p = Period::of(ms);
            prop_assert!(p.contains(ms));
            prop_assert_eq!(p.next().start_ms(), p.end_ms());
            prop_assert_eq!(Period::parse(&p.to_string(), "period").unwrap(), p);
        }
    }

    #[test]
    fn periods_are_utc_calendar_months() {
        assert_eq!(period_of(0), "1970-01");
        assert_eq!(period_of(-1), "1969-12");
        // 2024-02-29T23:59:59.999Z and the next millisecond.
        assert_eq!(period_of(1_709_251_199_999), "2024-02");
        assert_eq!(period_of(1_709_251_200_000), "2024-03");
        // 2025-12-31T23:59:59.999Z and 2026-01-01T00:00:00Z.
        assert_eq!(period_of(1_767_225_599_999), "2025-12");
        assert_eq!(period_of(1_767_225_600_000), "2026-01");
    }

    #[test]
    fn a_period_spans_its_whole_month() {
        let feb = Period::parse("2024-02", "period").unwrap();
        assert_eq!(feb.start_ms(), 1_706_745_600_000);
        assert_eq!(feb.end_ms(), 1_709_251_200_000);
        assert_eq!(feb.end_ms() - feb.start_ms(), 29 * MS_PER_DAY);
        let dec = Period::parse("2025-12", "period").unwrap();
        assert_eq!(dec.next(), Period::parse("2026-01", "period").unwrap());
        assert_eq!((dec.year(), dec.month()), (2025, 12));
    }

    #[test]
    fn malformed_periods_are_refused_on_the_named_field() {
        for s in [
            "",
            "2025",
            "2025-1",
            "2025-00",
            "2025-13",
            "25-01",
            "2025/01",
            "2025-01-01",
            "+025-01",
            "２０２５-01",
        ] {
            let e = Period::parse(s, "period").unwrap_err();
            assert_eq!(e.field, "period", "{s:?}");
        }
    }

    #[test]
    fn periods_order_chronologically() {
        let a = Period::parse("2024-12", "p").unwrap();
        let b = Period::parse("2025-01", "p").unwrap();
        assert!(a < b);
    }

    #[test]
    fn the_payout_key_names_the_developer_and_the_period() {
        let dev = UserId(uuid::Uuid::from_u128(7));
        let key = payout_idempotency_key(dev, Period::of(1_767_225_600_000));
        assert_eq!(key, "payout:00000000-0000-0000-0000-000000000007:2026-01");
        assert!(
            key.len() <= 255,
            "Stripe idempotency keys are at most 255 characters"
        );
    }
}
