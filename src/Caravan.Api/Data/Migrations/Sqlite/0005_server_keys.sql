-- Keys the server holds for itself (the key of secret fingerprints), one row per name, encrypted
-- under the master key like a secret, with associated data caravan:server:<name>.
CREATE TABLE server_keys (
    name        TEXT    PRIMARY KEY,
    key_id      TEXT    NOT NULL,
    ciphertext  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
