-- Run once by a DBA (psql as a superuser): the role essbot connects as, and an empty database
-- it owns. essbot creates and migrates its tables itself (at start, or `essbot db migrate`);
-- from an existing SQLite store, fill it with `essbot db copy --to postgres://...` first.
CREATE ROLE essbot LOGIN PASSWORD 'change-me';
CREATE DATABASE essbot OWNER essbot ENCODING 'UTF8' TEMPLATE template0;
-- essbot's sessions, in pg_stat_activity: "essbot <host:pid:start>" (the pool) and
-- "essbot-lock <host:pid:start>" (the active instance's lock, and each standby's attempts).
