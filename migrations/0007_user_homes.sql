-- One home per user: everything that belongs to one user — the metadata of records, backups,
-- multipart uploads and vectors, and the usage counted from it — now lives in that user's
-- `UserHome` Durable Object (its own SQLite database), not in this global database. Nothing
-- has launched, so there is nothing to carry over.
DROP TABLE IF EXISTS backup_upload_parts;
DROP TABLE IF EXISTS backup_uploads;
DROP TABLE IF EXISTS backup_metadata;
DROP TABLE IF EXISTS storage_records;
DROP TABLE IF EXISTS vector_meta;

-- A WebSocket ticket belongs to the session that asked for it, so revoking the session closes
-- the socket it opened.
ALTER TABLE ws_tickets ADD COLUMN session_id TEXT;
