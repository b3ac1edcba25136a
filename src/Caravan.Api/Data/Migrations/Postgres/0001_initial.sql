-- Organizations own API keys and sources; nothing is shared between them.
CREATE TABLE organizations (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT   NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

-- Keys are stored only as a SHA-256 hash; the prefix is the first 8 characters, for people.
CREATE TABLE api_keys (
    id               TEXT   PRIMARY KEY,
    organization_id  BIGINT NOT NULL REFERENCES organizations (id),
    key_hash         BYTEA  NOT NULL UNIQUE,
    prefix           TEXT   NOT NULL,
    created_at       BIGINT NOT NULL,
    revoked_at       BIGINT NULL
);

-- settings: the non-secret fields as JSON; secrets: field -> {key id, ciphertext, updated at}.
CREATE TABLE sources (
    id                   BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id      BIGINT  NOT NULL REFERENCES organizations (id),
    type                 TEXT    NOT NULL,
    account_name         TEXT    NOT NULL,
    settings             TEXT    NOT NULL,
    secrets              TEXT    NOT NULL,
    is_fully_configured  BOOLEAN NOT NULL,
    version              BIGINT  NOT NULL,
    created_at           BIGINT  NOT NULL,
    updated_at           BIGINT  NOT NULL,
    deleted_at           BIGINT  NULL
);

CREATE INDEX ix_sources_live_by_org ON sources (organization_id, id) WHERE deleted_at IS NULL;
