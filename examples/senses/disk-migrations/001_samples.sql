-- Every measurement the disk sense takes (applied once, journaled in _migrations).
CREATE TABLE samples(at_ms INTEGER NOT NULL, path TEXT NOT NULL, used_pct REAL NOT NULL);
CREATE INDEX samples_by_time ON samples(at_ms);
