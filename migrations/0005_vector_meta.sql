-- What D1 knows of each stored vector: ids, dimension, size and checksum — never the vector
-- or its payload (those live in the index, Vectorize or the VectorIndex Durable Object). Gives
-- each user one dimension and counts vectors towards the cloud-storage quota.
CREATE TABLE vector_meta (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    id         TEXT NOT NULL,
    dims       INTEGER NOT NULL CHECK (dims BETWEEN 1 AND 1536),
    size_bytes INTEGER NOT NULL CHECK (size_bytes >= 0),
    checksum   TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, id)
);
