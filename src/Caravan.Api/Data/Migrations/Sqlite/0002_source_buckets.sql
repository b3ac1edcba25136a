-- Live sources per organization in ranges of 1,024 ids. The list route reads its count here and
-- seeks a page's range from here, instead of counting and skipping every earlier row (COUNT and
-- OFFSET are linear in the number of sources). Triggers keep it exact whatever writes the rows.
CREATE TABLE source_buckets (
    organization_id  INTEGER NOT NULL,
    bucket           INTEGER NOT NULL,
    live             INTEGER NOT NULL,
    PRIMARY KEY (organization_id, bucket)
) WITHOUT ROWID;

INSERT INTO source_buckets (organization_id, bucket, live)
SELECT organization_id, id / 1024, COUNT(*) FROM sources WHERE deleted_at IS NULL
GROUP BY organization_id, id / 1024;

CREATE TRIGGER sources_bucket_insert AFTER INSERT ON sources WHEN NEW.deleted_at IS NULL
BEGIN
    INSERT INTO source_buckets (organization_id, bucket, live) VALUES (NEW.organization_id, NEW.id / 1024, 1)
    ON CONFLICT (organization_id, bucket) DO UPDATE SET live = live + 1;
END;

CREATE TRIGGER sources_bucket_soft_delete AFTER UPDATE OF deleted_at ON sources
WHEN OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL
BEGIN
    UPDATE source_buckets SET live = live - 1 WHERE organization_id = OLD.organization_id AND bucket = OLD.id / 1024;
END;

CREATE TRIGGER sources_bucket_delete AFTER DELETE ON sources WHEN OLD.deleted_at IS NULL
BEGIN
    UPDATE source_buckets SET live = live - 1 WHERE organization_id = OLD.organization_id AND bucket = OLD.id / 1024;
END;
