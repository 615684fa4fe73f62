-- A portal link names the person's time zone and locale, and the page of
-- the UI it opens on; the session remembers whether its person chose to
-- see times in UTC (SPEC §9).
ALTER TABLE portal_links ADD COLUMN user_time_zone TEXT NOT NULL DEFAULT '';
ALTER TABLE portal_links ADD COLUMN user_locale TEXT NOT NULL DEFAULT '';
ALTER TABLE portal_links ADD COLUMN return_to TEXT NOT NULL DEFAULT '';
ALTER TABLE portal_links ADD COLUMN show_utc INTEGER NOT NULL DEFAULT 0;
