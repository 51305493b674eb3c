-- Backups: how many parts a multipart backup was uploaded in (1 for a single request), and the
-- multipart uploads in progress (cleaned up when abandoned).
ALTER TABLE backup_metadata ADD COLUMN chunk_count INTEGER NOT NULL DEFAULT 1 CHECK (chunk_count >= 1);

CREATE TABLE backup_uploads (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    r2_key       TEXT NOT NULL,
    r2_upload_id TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX backup_uploads_by_user ON backup_uploads (user_id);
CREATE INDEX backup_uploads_by_expiry ON backup_uploads (expires_at);
