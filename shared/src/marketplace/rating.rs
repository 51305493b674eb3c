//! Ratings: 1–5 stars per user and plugin, and the exact running tally behind `avg_rating`.
//!
//! The tally keeps the integer `sum` of stars and the `count` of ratings, never a float, so
//! adding, changing and withdrawing ratings in any order gives exactly the average of the
//! ratings present. A valid tally always has `count ≤ sum ≤ 5 × count`; an operation that would
//! break this (removing a rating that cannot be in the tally) is refused and changes nothing.

use crate::error::FieldError;

/// A star rating, 1–5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stars(u8);

impl Stars {
    /// The lowest rating.
    pub const MIN: u8 = 1;
    /// The highest rating.
    pub const MAX: u8 = 5;

    /// Parses a submitted rating.
    ///
    /// # Errors
    /// A [`FieldError`] on `field` unless it is an integer 1–5.
    pub fn parse(raw: i64, field: &str) -> Result<Self, FieldError> {
        u8::try_from(raw)
            .ok()
            .filter(|s| (Self::MIN..=Self::MAX).contains(s))
            .map(Self)
            .ok_or_else(|| FieldError::new(field, "must be an integer from 1 to 5"))
    }

    /// The number of stars.
    pub fn get(self) -> u8 {
        self.0
    }
}

/// The ratings of one plugin: sum of stars and number of ratings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RatingTally {
    /// Sum of all stars.
    pub sum: u64,
    /// Number of ratings.
    pub count: u64,
}

/// A tally operation that cannot match the ratings present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the rating is not part of this tally")]
pub struct TallyMismatch;

impl RatingTally {
    /// Whether `count ≤ sum ≤ 5 × count`.
    pub fn is_consistent(self) -> bool {
        self.count <= self.sum && u128::from(self.sum) <= u128::from(self.count) * 5
    }

    /// Adds a new rating.
    pub fn add(&mut self, stars: Stars) {
        self.sum = self.sum.saturating_add(u64::from(stars.get()));
        self.count = self.count.saturating_add(1);
    }

    /// Withdraws a rating that is in the tally.
    ///
    /// # Errors
    /// [`TallyMismatch`] (nothing changed) when no tally holding that rating could give this
    /// one.
    pub fn remove(&mut self, stars: Stars) -> Result<(), TallyMismatch> {
        let next = Self {
            sum: self
                .sum
                .checked_sub(u64::from(stars.get()))
                .ok_or(TallyMismatch)?,
            count: self.count.checked_sub(1).ok_or(TallyMismatch)?,
        };
        if !next.is_consistent() {
            return Err(TallyMismatch);
        }
        *self = next;
        Ok(())
    }

    /// Changes a user's rating from `old` to `new` (the count stays).
    ///
    /// # Errors
    /// As [`Self::remove`] for `old`; nothing changed.
    pub fn replace(&mut self, old: Stars, new: Stars) -> Result<(), TallyMismatch> {
        let mut next = *self;
        next.remove(old)?;
        next.add(new);
        *self = next;
        Ok(())
    }

    /// The mean rating, `None` without ratings.
    #[allow(clippy::cast_precision_loss)] // exact below 2^53 ratings
    pub fn average(self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / self.count as f64)
    }

    /// The mean in hundredths of a star, rounded half up (e.g. 433 for 4.333…): an exact integer
    /// for storage and display. `None` without ratings.
    pub fn average_hundredths(self) -> Option<u64> {
        (self.count > 0).then(|| {
            let n = u128::from(self.sum) * 100 + u128::from(self.count) / 2;
            // ≤ 500 for a consistent tally.
            u64::try_from(n / u128::from(self.count)).unwrap_or(u64::MAX)
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn s(n: u8) -> Stars {
        Stars::parse(i64::from(n), "stars").unwrap()
    }

    #[test]
    fn one_to_five_stars_are_accepted_and_anything_else_is_refused_on_the_field() {
        for n in 1..=5 {
            assert_eq!(s(n).get(), n);
        }
        for bad in [0, 6, -1, 256, 261, i64::MAX, i64::MIN] {
            let e = Stars::parse(bad, "stars").unwrap_err();
            assert_eq!(e.field, "stars", "{bad}");
        }
    }

    #[test]
    fn an_empty_tally_has_no_average() {
        let t = RatingTally::default();
        assert_eq!(t.average(), None);
        assert_eq!(t.average_hundredths(), None);
    }

    #[test]
    fn adding_ratings_gives_their_exact_mean() {
        let mut t = RatingTally::default();
        for n in [5, 4, 4] {
            t.add(s(n));
        }
        assert_eq!(t, RatingTally { sum: 13, count: 3 });
        assert_eq!(t.average(), Some(13.0 / 3.0));
        assert_eq!(t.average_hundredths(), Some(433));
    }

    #[test]
    fn replacing_a_rating_keeps_the_count_and_moves_the_sum() {
        let mut t = RatingTally::default();
        t.add(s(1));
        t.add(s(3));
        t.replace(s(1), s(5)).unwrap();
        assert_eq!(t, RatingTally { sum: 8, count: 2 });
        assert_eq!(t.average(), Some(4.0));
    }

    #[test]
    fn removing_the_last_rating_leaves_no_average() {
        let mut t = RatingTally::default();
        t.add(s(4));
        t.remove(s(4)).unwrap();
        assert_eq!(t, RatingTally::default());
        assert_eq!(t.average(), None);
    }

    #[test]
    fn removing_from_an_empty_tally_is_refused() {
        let mut t = RatingTally::default();
        assert_eq!(t.remove(s(1)), Err(TallyMismatch));
        assert_eq!(t, RatingTally::default());
    }

    #[test]
    fn removing_a_rating_that_cannot_be_present_is_refused_and_changes_nothing() {
        // One rating of 2: removing a 5 would leave sum -3; removing a 1 would leave 1 star
        // over zero ratings.
        let mut t = RatingTally::default();
        t.add(s(2));
        assert_eq!(t.remove(s(5)), Err(TallyMismatch));
        assert_eq!(t.remove(s(1)), Err(TallyMismatch));
        assert_eq!(t.replace(s(1), s(5)), Err(TallyMismatch));
        assert_eq!(t, RatingTally { sum: 2, count: 1 });
    }

    #[test]
    fn hundredths_round_half_up() {
        // 4.5 → 450; 1.125 (9/8) → 112.5 → 113; 2/3 of the way: 5/3 → 166.67 → 167.
        assert_eq!(
            RatingTally { sum: 9, count: 2 }.average_hundredths(),
            Some(450)
        );
        assert_eq!(
            RatingTally { sum: 9, count: 8 }.average_hundredths(),
            Some(113)
        );
        assert_eq!(
            RatingTally { sum: 5, count: 3 }.average_hundredths(),
            Some(167)
        );
    }

    proptest! {
        #[test]
        fn any_sequence_of_adds_replaces_and_removes_matches_recomputing_from_scratch(
            ops in proptest::collection::vec((0u8..3, 1u8..=5, any::<prop::sample::Index>()), 0..200)
        ) {
            let mut ratings: Vec<u8> = Vec::new();
            let mut t = RatingTally::default();
            for (op, stars, idx) in ops {
                match op {
                    0 => {
                        ratings.push(stars);
                        t.add(s(stars));
                    }
                    1 if !ratings.is_empty() => {
                        let i = idx.index(ratings.len());
                        t.replace(s(ratings[i]), s(stars)).unwrap();
                        ratings[i] = stars;
                    }
                    _ if !ratings.is_empty() => {
                        let i = idx.index(ratings.len());
                        t.remove(s(ratings.swap_remove(i))).unwrap();
                    }
                    _ => {}
                }
                let sum: u64 = ratings.iter().map(|&r| u64::from(r)).sum();
                prop_assert_eq!(t, RatingTally { sum, count: ratings.len() as u64 });
                prop_assert!(t.is_consistent());
            }
        }
    }
}
