-- The version of the plugin that published each event, stamped by the host when it
-- relays the event from the plugin's outbox.
ALTER TABLE events ADD COLUMN source_version TEXT;
