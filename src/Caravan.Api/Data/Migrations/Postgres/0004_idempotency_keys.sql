-- Idempotency-Key of create requests (contract section 8): the first answer, kept for 24 hours.
-- request_mac is an HMAC-SHA256 of the route and the canonical body under a key derived from the
-- master key mac_key_id, never a plain hash: the body holds passwords, which a plain hash would let
-- anyone with the store guess offline. The response is what a replay answers (no secret is in it).
CREATE TABLE idempotency_keys (
    organization_id  BIGINT NOT NULL REFERENCES organizations (id),
    key              TEXT   NOT NULL,
    request_mac      BYTEA  NOT NULL,
    mac_key_id       TEXT   NOT NULL,
    response_status  INTEGER NOT NULL,
    response_body    TEXT   NOT NULL,
    source_id        BIGINT NULL,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (organization_id, key)
);

CREATE INDEX ix_idempotency_keys_created ON idempotency_keys (created_at);
