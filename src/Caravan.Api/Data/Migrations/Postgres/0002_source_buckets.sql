-- Live sources per organization in ranges of 1,024 ids. The list route reads its count here and
-- seeks a page's range from here, instead of counting and skipping every earlier row (COUNT and
-- OFFSET are linear in the number of sources). A trigger keeps it exact whatever writes the rows;
-- concurrent creates in one organization and range queue on its row until they commit. The key
-- carries `live`, so the list reads the ranges from the index alone, however many dead versions
-- of these often-updated rows the table holds until vacuum.
CREATE TABLE source_buckets (
    organization_id  BIGINT NOT NULL,
    bucket           BIGINT NOT NULL,
    live             BIGINT NOT NULL,
    PRIMARY KEY (organization_id, bucket) INCLUDE (live)
);

INSERT INTO source_buckets (organization_id, bucket, live)
SELECT organization_id, id / 1024, COUNT(*) FROM sources WHERE deleted_at IS NULL
GROUP BY organization_id, id / 1024;

CREATE FUNCTION caravan_source_buckets() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.deleted_at IS NULL THEN
            INSERT INTO source_buckets (organization_id, bucket, live) VALUES (NEW.organization_id, NEW.id / 1024, 1)
            ON CONFLICT (organization_id, bucket) DO UPDATE SET live = source_buckets.live + 1;
        END IF;
    ELSIF TG_OP = 'UPDATE' THEN
        IF OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL THEN
            UPDATE source_buckets SET live = live - 1 WHERE organization_id = OLD.organization_id AND bucket = OLD.id / 1024;
        END IF;
    ELSIF OLD.deleted_at IS NULL THEN
        UPDATE source_buckets SET live = live - 1 WHERE organization_id = OLD.organization_id AND bucket = OLD.id / 1024;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER sources_buckets AFTER INSERT OR UPDATE OF deleted_at OR DELETE ON sources
FOR EACH ROW EXECUTE FUNCTION caravan_source_buckets();
