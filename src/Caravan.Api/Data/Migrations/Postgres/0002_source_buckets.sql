-- Live sources per organization in ranges of 1,024 ids. The list route reads its count here and
-- seeks a page's range from here, instead of counting and skipping every earlier row (COUNT and
-- OFFSET are linear in the number of sources). Triggers keep it exact whatever writes the rows;
-- concurrent creates in one organization and range queue on its row until they commit.
-- `live` is not indexed, so its updates are HOT and the table stays a few pages however often it
-- changes; inserts are counted once per statement, so a bulk load updates each range once.
CREATE TABLE source_buckets (
    organization_id  BIGINT NOT NULL,
    bucket           BIGINT NOT NULL,
    live             BIGINT NOT NULL,
    PRIMARY KEY (organization_id, bucket)
) WITH (fillfactor = 50);

INSERT INTO source_buckets (organization_id, bucket, live)
SELECT organization_id, id / 1024, COUNT(*) FROM sources WHERE deleted_at IS NULL
GROUP BY organization_id, id / 1024;

CREATE FUNCTION caravan_source_buckets_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO source_buckets (organization_id, bucket, live)
    SELECT organization_id, id / 1024, COUNT(*) FROM inserted WHERE deleted_at IS NULL
    GROUP BY organization_id, id / 1024
    ON CONFLICT (organization_id, bucket) DO UPDATE SET live = source_buckets.live + EXCLUDED.live;
    RETURN NULL;
END
$$;

CREATE TRIGGER sources_buckets_insert AFTER INSERT ON sources
REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION caravan_source_buckets_insert();

CREATE FUNCTION caravan_source_buckets_remove() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.deleted_at IS NULL AND (TG_OP = 'DELETE' OR NEW.deleted_at IS NOT NULL) THEN
        UPDATE source_buckets SET live = live - 1 WHERE organization_id = OLD.organization_id AND bucket = OLD.id / 1024;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER sources_buckets_remove AFTER UPDATE OF deleted_at OR DELETE ON sources
FOR EACH ROW EXECUTE FUNCTION caravan_source_buckets_remove();
