-- The actions each organization has used, so that an action prefix
-- ("alert_route.*") expands to exact actions, each read in order from
-- events_org_action and merged.
CREATE TABLE org_actions (
	organization_id TEXT NOT NULL,
	action          TEXT NOT NULL,
	PRIMARY KEY (organization_id, action)
) WITHOUT ROWID;

INSERT INTO org_actions (organization_id, action)
SELECT DISTINCT organization_id, action FROM events;
