-- The last connection test of each source (POST /sources/{id}/test/), for the console's list:
-- whether it passed, the step that failed and its code, when, and how long it took. Never a
-- message: a driver's text could name a host or a user, and the list does not need it.
CREATE TABLE source_tests (
    source_id        INTEGER NOT NULL PRIMARY KEY REFERENCES sources (id),
    organization_id  INTEGER NOT NULL REFERENCES organizations (id),
    ok               INTEGER NOT NULL,
    failed_step      TEXT    NULL,
    code             TEXT    NULL,
    duration_ms      INTEGER NOT NULL,
    at               INTEGER NOT NULL
);
