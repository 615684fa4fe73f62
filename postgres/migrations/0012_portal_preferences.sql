-- A portal link names the person's time zone and locale, and the page of
-- the UI it opens on; the session remembers whether its person chose to
-- see times in UTC (SPEC §9).
ALTER TABLE portal_links ADD COLUMN user_time_zone text NOT NULL DEFAULT '';
ALTER TABLE portal_links ADD COLUMN user_locale text NOT NULL DEFAULT '';
ALTER TABLE portal_links ADD COLUMN return_to text NOT NULL DEFAULT '';
ALTER TABLE portal_links ADD COLUMN show_utc boolean NOT NULL DEFAULT false;
