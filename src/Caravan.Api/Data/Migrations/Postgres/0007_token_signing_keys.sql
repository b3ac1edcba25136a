-- The keys that sign STS tokens (POST /api/v1/token): one row per key, its public half as a JWK
-- (published at /api/v1/.well-known/jwks.json), its private half (PKCS#8, base64) encrypted under
-- the master key like a secret, with associated data caravan:server:token-signing:<kid>. The key
-- with no retired_at signs new tokens; the index makes it the only one, so replicas that create
-- the first key at once end up with one. A retired key stays until its last token expired.
CREATE TABLE token_signing_keys (
    kid         TEXT    PRIMARY KEY,
    public_jwk  TEXT    NOT NULL,
    key_id      TEXT    NOT NULL,
    ciphertext  TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    retired_at  BIGINT  NULL
);

CREATE UNIQUE INDEX ux_token_signing_keys_current ON token_signing_keys ((retired_at IS NULL)) WHERE retired_at IS NULL;
