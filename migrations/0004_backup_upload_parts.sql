-- Parts of multipart backup uploads in progress (etag for R2's complete call, size and
-- checksum as verified by the worker).
CREATE TABLE backup_upload_parts (
    upload_id   TEXT NOT NULL REFERENCES backup_uploads (id) ON DELETE CASCADE,
    part_number INTEGER NOT NULL CHECK (part_number BETWEEN 1 AND 10000),
    etag        TEXT NOT NULL,
    size_bytes  INTEGER NOT NULL CHECK (size_bytes >= 0),
    checksum    TEXT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);
