-- Organizations own API keys and sources; nothing is shared between them.
CREATE TABLE organizations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

-- Keys are stored only as a SHA-256 hash; the prefix is the first 8 characters, for people.
CREATE TABLE api_keys (
    id               TEXT    PRIMARY KEY,
    organization_id  INTEGER NOT NULL REFERENCES organizations (id),
    key_hash         BLOB    NOT NULL UNIQUE,
    prefix           TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    revoked_at       INTEGER NULL
);

-- settings: the non-secret fields as JSON; secrets: field -> {key id, ciphertext, updated at}.
-- AUTOINCREMENT so an id is never handed out twice, even after a delete.
CREATE TABLE sources (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    organization_id      INTEGER NOT NULL REFERENCES organizations (id),
    type                 TEXT    NOT NULL,
    account_name         TEXT    NOT NULL,
    settings             TEXT    NOT NULL,
    secrets              TEXT    NOT NULL,
    is_fully_configured  INTEGER NOT NULL,
    version              INTEGER NOT NULL,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    deleted_at           INTEGER NULL
);

CREATE INDEX ix_sources_live_by_org ON sources (organization_id, id) WHERE deleted_at IS NULL;
