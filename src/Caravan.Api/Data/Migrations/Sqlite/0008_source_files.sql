-- FILE sources (contract 9.2). Each uploaded or imported file is one row: its name, the table
-- name it gives (stem; a workbook or SQLite file gives several tables, listed in tables once
-- converted), its size, and where it stands: uploading (bytes still arriving, no source yet for a
-- new source), pending (stored, waiting for conversion), ready or failed. The objects of a file
-- are named after its id in the file store. A conversion is claimed by one replica at a time
-- (claimed_by, claimed_until, renewed while it runs), so a job whose replica died is taken over.
CREATE TABLE source_files (
    id               TEXT    NOT NULL PRIMARY KEY,
    source_id        INTEGER  NULL REFERENCES sources (id),
    organization_id  INTEGER  NOT NULL REFERENCES organizations (id),
    filename         TEXT    NOT NULL,
    stem             TEXT    NOT NULL,
    format           TEXT    NOT NULL,
    bytes            INTEGER  NOT NULL,
    status           TEXT    NOT NULL,
    error            TEXT    NULL,
    tables           TEXT    NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    claimed_by       TEXT    NULL,
    claimed_until    INTEGER  NULL,
    created_at       INTEGER  NOT NULL,
    updated_at       INTEGER  NOT NULL
);

CREATE INDEX ix_source_files_source ON source_files (source_id);
CREATE INDEX ix_source_files_waiting ON source_files (status, claimed_until) WHERE status IN ('pending', 'uploading');

-- Each FILE source's data key (32 random bytes), from which every file's keys are derived,
-- encrypted under the master key ring like a secret (associated data caravan:server:<name>, the
-- name being file-data:<source id>); secrets rotate re-encrypts it, the files stay as they are.
CREATE TABLE file_data_keys (
    name        TEXT    NOT NULL PRIMARY KEY,
    source_id   INTEGER  NOT NULL REFERENCES sources (id),
    key_id      TEXT    NOT NULL,
    ciphertext  TEXT    NOT NULL,
    created_at  INTEGER  NOT NULL
);
