-- The last connection test of each source (POST /sources/{id}/test/), for the console's list:
-- whether it passed, the step that failed and its code, when, and how long it took. Never a
-- message: a driver's text could name a host or a user, and the list does not need it.
CREATE TABLE source_tests (
    source_id        BIGINT  NOT NULL PRIMARY KEY REFERENCES sources (id),
    organization_id  BIGINT  NOT NULL REFERENCES organizations (id),
    ok               BOOLEAN NOT NULL,
    failed_step      TEXT    NULL,
    code             TEXT    NULL,
    duration_ms      BIGINT  NOT NULL,
    at               BIGINT  NOT NULL
);
