//! Vectors: one dimension per user, sizes counted towards cloud storage, and — with the local
//! backend — the vectors themselves, searched exactly (cosine) with the scorer of
//! [`crate::vector_index`]. With Vectorize, the home keeps the metadata and the worker calls
//! the index.

use shared::home::ops::{DeleteVectors, Done, SearchVectors, Searched, UpsertVectors, Upserted};
use shared::ports::VectorMatch;
use shared::tiers::{check_feature, Feature};
use shared::AppError;

use super::records::CLOUD;
use super::sql::{Sql, SqlError, SqlValue};
use super::{store, Caller, Home};
use crate::vector_index::{encode_values, Scorer, TopK, MAX_TOP_K};

impl<S: Sql> Home<'_, S> {
    fn vector_dims(&self) -> Result<Option<u32>, SqlError> {
        Ok(self
            .sql
            .one("SELECT dims FROM vectors LIMIT 1", &[])?
            .and_then(|r| u32::try_from(r.int(0)).ok()))
    }

    fn vector_sizes(&self, ids: &[&str]) -> Result<u64, SqlError> {
        let mut total = 0;
        for id in ids {
            if let Some(r) = self
                .sql
                .one("SELECT size FROM vectors WHERE id = ?", &[(*id).into()])?
            {
                total += r.uint(0);
            }
        }
        Ok(total)
    }

    pub(super) fn upsert_vectors(
        &self,
        c: &Caller,
        op: &UpsertVectors,
    ) -> Result<Upserted, AppError> {
        check_feature(c.principal.tier, Feature::CloudStorage)?;
        if let Some(existing) = self.vector_dims().map_err(store)? {
            if existing != op.dims {
                return Err(AppError::field(
                    "vectors[0].values",
                    format!(
                        "this index holds {existing}-dimension vectors, not {}; delete them \
                         first to change",
                        op.dims
                    ),
                ));
            }
        }
        let ids: Vec<&str> = op.items.iter().map(|i| i.id.as_str()).collect();
        let replaced = self.vector_sizes(&ids).map_err(store)?;
        let adding: u64 = op.items.iter().map(|i| i.size).sum();
        self.room(
            CLOUD,
            self.cloud_limit(c.principal.tier),
            adding.saturating_sub(replaced),
        )?;
        for item in &op.items {
            let (vals, blob) = match &item.entry {
                Some(e) => (
                    SqlValue::Blob(encode_values(&e.values)),
                    SqlValue::Text(e.blob.clone()),
                ),
                None => (SqlValue::Null, SqlValue::Null),
            };
            self.sql
                .exec(
                    "INSERT INTO vectors (id, dims, size, checksum, vals, blob) \
                     VALUES (?, ?, ?, ?, ?, ?) \
                     ON CONFLICT (id) DO UPDATE SET dims = excluded.dims, size = excluded.size, \
                       checksum = excluded.checksum, vals = excluded.vals, blob = excluded.blob",
                    &[
                        item.id.as_str().into(),
                        op.dims.into(),
                        item.size.into(),
                        item.checksum.as_str().into(),
                        vals,
                        blob,
                    ],
                )
                .map_err(store)?;
        }
        let delta =
            i64::try_from(adding).unwrap_or(i64::MAX) - i64::try_from(replaced).unwrap_or(i64::MAX);
        self.add_used(CLOUD, delta).map_err(store)?;
        self.notice("vector", c.now.to_string());
        Ok(Upserted {
            upserted: op.items.len() as u64,
        })
    }

    pub(super) fn search_vectors(
        &self,
        c: &Caller,
        op: &SearchVectors,
    ) -> Result<Searched, AppError> {
        check_feature(c.principal.tier, Feature::CloudStorage)?;
        let Some(dims) = self.vector_dims().map_err(store)? else {
            return Ok(Searched {
                dims: None,
                matches: Vec::new(),
            });
        };
        if dims as usize != op.vector.len() {
            return Err(AppError::field(
                "vector",
                format!(
                    "this index holds {dims}-dimension vectors, not {}",
                    op.vector.len()
                ),
            ));
        }
        let mut matches = Vec::new();
        let k = op.top_k.min(MAX_TOP_K) as usize;
        if let (true, Some(scorer)) = (op.search && k > 0, Scorer::new(&op.vector)) {
            let mut top = TopK::new(k);
            for row in self
                .sql
                .exec("SELECT id, vals FROM vectors WHERE vals IS NOT NULL", &[])
                .map_err(store)?
            {
                if let Some(score) = scorer.score(row.blob(1)) {
                    top.offer(score, &row.text(0));
                }
            }
            for (id, score) in top.into_sorted() {
                if let Some(r) = self
                    .sql
                    .one(
                        "SELECT blob FROM vectors WHERE id = ?",
                        &[id.as_str().into()],
                    )
                    .map_err(store)?
                {
                    matches.push(VectorMatch {
                        id,
                        score,
                        blob: r.text(0),
                    });
                }
            }
        }
        Ok(Searched {
            dims: Some(dims),
            matches,
        })
    }

    pub(super) fn delete_vectors(&self, c: &Caller, op: &DeleteVectors) -> Result<Done, AppError> {
        let ids: Vec<&str> = op.ids.iter().map(String::as_str).collect();
        let freed = self.vector_sizes(&ids).map_err(store)?;
        for id in &ids {
            self.sql
                .exec("DELETE FROM vectors WHERE id = ?", &[(*id).into()])
                .map_err(store)?;
        }
        self.add_used(CLOUD, -i64::try_from(freed).unwrap_or(i64::MAX))
            .map_err(store)?;
        if freed > 0 {
            self.notice("vector", c.now.to_string());
        }
        Ok(Done {})
    }
}
