-- Search plans on Postgres come from statistics about `properties`: the planner estimates a
-- property filter (`@>` for equality, a jsonpath `@@` for order and ranges) by trying it on a
-- sample of whole documents, then either walks the (blueprint, identifier) index and stops at
-- the page's end or reads the GIN index and sorts. With the default 100 documents, a filter
-- matching 1% of entities (a two-week window over four years) finds no document in the sample
-- a third of the time, is taken for a rare one, and is planned as a scan and sort of every
-- entity. 1,000 documents tell 0.5% from rare.
ALTER TABLE entities ALTER COLUMN properties SET STATISTICS 1000;

-- GIN indexes queue new entries in a pending list that every search through them reads in
-- full until it is merged (at 4 MB by default: about 12 ms a search after a bulk load). A
-- short list keeps that read small, and its merge cheap, at a little cost on writes.
ALTER INDEX entities_properties SET (gin_pending_list_limit = 256);
ALTER INDEX entities_team SET (gin_pending_list_limit = 256);
