-- Housekeeping on the cron (shared/src/housekeeping.rs): resumable cursors of the jobs that
-- walk something large (the accounts, each R2 bucket), which discarded plugin packages were
-- deleted already, and the indexes the bounded purges select by.
CREATE TABLE housekeeping (
    job        TEXT PRIMARY KEY,                      -- homes | r2:records | r2:backups | r2:plugins
    cursor     TEXT,                                  -- where the next run resumes; NULL: the start
    updated_at INTEGER NOT NULL
);

ALTER TABLE plugin_versions ADD COLUMN package_purged_at INTEGER;
CREATE INDEX plugin_versions_discarded ON plugin_versions (decided_at)
    WHERE status IN ('rejected', 'superseded') AND package_purged_at IS NULL;
CREATE INDEX plugin_versions_by_package ON plugin_versions (package_key);
CREATE INDEX refresh_families_revoked ON refresh_families (revoked_at)
    WHERE revoked_at IS NOT NULL;
