-- Every tree of the store in one table: `tree` is the tree's stable id
-- (see `tree_id` in src/store/pg_store.rs), keys and values are the same
-- bytes sled keeps. Keys compare as bytes, so prefix and range scans read
-- the primary key index in sled's order.
CREATE TABLE kv (
    tree smallint NOT NULL,
    key bytea NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (tree, key)
);
