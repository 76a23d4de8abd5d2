-- A started OpenID Connect sign-in, keyed by its `state`: the PKCE verifier and nonce
-- the callback must present and find, and where to send the browser afterwards. The
-- callback deletes the row before it uses it (a state works once); rows older than ten
-- minutes are refused and swept at the next start.
CREATE TABLE oidc_flows (
    state TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    nonce TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    redirect_url TEXT NOT NULL,
    return_to TEXT,
    created_at BIGINT NOT NULL
);
