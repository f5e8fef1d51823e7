-- The catalog table sorts a blueprint's entities by title or by last update as well as by
-- identifier, paged by cursor: each order has an index that holds it, so a page deep in the
-- list reads only its own rows.
CREATE INDEX entities_by_title ON entities (blueprint, (COALESCE(title, '')), identifier);
CREATE INDEX entities_by_updated ON entities (blueprint, updated_at, identifier);
