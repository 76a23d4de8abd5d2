-- The SHA-256 of the host cookie that ties a started sign-in to the browser that started
-- it; the callback must come with the same cookie (against login CSRF). Flows started
-- before this column existed have '' and are refused: they expire within ten minutes.
ALTER TABLE oidc_flows ADD COLUMN browser TEXT NOT NULL DEFAULT '';
