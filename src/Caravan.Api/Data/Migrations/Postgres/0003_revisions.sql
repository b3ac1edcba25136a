-- One row per change of a source (create, update, delete, secret rotation), written in the
-- transaction of the change. number counts 1, 2, 3... per source. key_id is the API key that made
-- the change, NULL for the command line. changes is a JSON object: {"old", "new"} for non-secret
-- fields, only "set", "changed" or "cleared" for secrets, never a secret value.
-- Rows of a deleted source stay, for operators; the API no longer shows them.
CREATE TABLE source_revisions (
    source_id        BIGINT NOT NULL REFERENCES sources (id),
    number           BIGINT NOT NULL,
    organization_id  BIGINT NOT NULL REFERENCES organizations (id),
    at               BIGINT NOT NULL,
    key_id           TEXT   NULL,
    action           TEXT   NOT NULL,
    changes          TEXT   NOT NULL,
    PRIMARY KEY (source_id, number)
);
