-- PostgreSQL only (SQLite commits one writer at a time, in event-number order): the database's
-- own time when each event row was written. The events feed holds back behind a gap in event
-- numbers whose next event was written less than a few seconds ago by this clock (a
-- transaction still writing the missing number), independent of the instances' clocks.
ALTER TABLE events ADD COLUMN inserted_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp();
