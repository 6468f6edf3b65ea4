-- Sealroom metadata schema, version 1.
-- Conventions: IDs are UUID text; times are INTEGER milliseconds since the Unix epoch (UTC);
-- flags are INTEGER 0/1; enums are their wire names (sealroom-types) guarded by CHECKs;
-- secrets are stored only as hashes or encrypted blobs.

CREATE TABLE organizations (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    name_key    TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX organizations_name_key ON organizations (name_key);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES organizations (id),
    username      TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,          -- argon2id PHC string, computed by the server
    is_admin      INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX users_username ON users (username);
CREATE INDEX users_org ON users (org_id);

CREATE TABLE sites (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations (id),
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX sites_org ON sites (org_id);

-- Session tokens, API tokens and site tokens: only the SHA-256 of the token is stored.
CREATE TABLE tokens (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('session', 'api', 'site')),
    token_hash   TEXT NOT NULL,
    user_id      TEXT REFERENCES users (id),
    site_id      TEXT REFERENCES sites (id),
    name         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    CHECK ((user_id IS NULL AND site_id IS NOT NULL AND kind = 'site')
        OR (user_id IS NOT NULL AND site_id IS NULL AND kind <> 'site'))
);
CREATE UNIQUE INDEX tokens_hash ON tokens (token_hash);
CREATE INDEX tokens_user ON tokens (user_id);

CREATE TABLE projects (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL,
    name_key             TEXT NOT NULL,
    description          TEXT NOT NULL,
    state                TEXT NOT NULL CHECK (state IN ('active', 'paused', 'deactivated')),
    technology           TEXT NOT NULL CHECK (technology IN ('simulated', 'sev-snp', 'tdx', 'azure-cvm')),
    algorithm_logs_to_ao INTEGER NOT NULL DEFAULT 0 CHECK (algorithm_logs_to_ao IN (0, 1)),
    created_by           TEXT NOT NULL REFERENCES users (id),
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);
CREATE UNIQUE INDEX projects_name_key ON projects (name_key);
CREATE INDEX projects_created ON projects (created_at, id);

CREATE TABLE project_members (
    project_id  TEXT NOT NULL REFERENCES projects (id),
    org_id      TEXT NOT NULL REFERENCES organizations (id),
    role        TEXT NOT NULL CHECK (role IN ('algorithm_owner', 'data_steward')),
    PRIMARY KEY (project_id, org_id)
);
CREATE INDEX project_members_org ON project_members (org_id, project_id);
-- Exactly one algorithm owner per project (at least one is checked by the store).
CREATE UNIQUE INDEX project_members_one_ao ON project_members (project_id) WHERE role = 'algorithm_owner';

-- Per-project, per-role RSA-4096 key pairs: the public KEK in SPKI DER, the private half only as
-- an encrypted blob from the key provider (provider + key_ref say which key wraps it).
CREATE TABLE project_keys (
    project_id        TEXT NOT NULL REFERENCES projects (id),
    role              TEXT NOT NULL CHECK (role IN ('algorithm_owner', 'data_steward')),
    public_der        BLOB NOT NULL,
    fingerprint       TEXT NOT NULL,
    file_name         TEXT NOT NULL,
    encrypted_private BLOB NOT NULL,
    provider          TEXT NOT NULL,
    key_ref           TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    PRIMARY KEY (project_id, role)
);

-- Every WCEK version's fingerprint; the bytes only for the latest per project and role.
CREATE TABLE wceks (
    id           TEXT PRIMARY KEY,
    project_id   TEXT NOT NULL REFERENCES projects (id),
    role         TEXT NOT NULL CHECK (role IN ('algorithm_owner', 'data_steward')),
    version      INTEGER NOT NULL,
    fingerprint  TEXT NOT NULL,
    cek_key_id   TEXT,
    wcek         BLOB,
    uploaded_by  TEXT NOT NULL REFERENCES users (id),
    created_at   INTEGER NOT NULL
);
CREATE UNIQUE INDEX wceks_version ON wceks (project_id, role, version);

CREATE TABLE artifacts (
    id             TEXT PRIMARY KEY,
    project_id     TEXT NOT NULL REFERENCES projects (id),
    kind           TEXT NOT NULL CHECK (kind IN ('data_specification', 'attestation_report', 'algorithm', 'validation_criteria', 'dataset')),
    owner_org_id   TEXT NOT NULL REFERENCES organizations (id),
    name           TEXT NOT NULL,
    name_key       TEXT NOT NULL,
    description    TEXT NOT NULL,
    algorithm_type TEXT CHECK (algorithm_type IN ('training', 'validation')),
    created_by     TEXT NOT NULL REFERENCES users (id),
    created_at     INTEGER NOT NULL,
    latest_version INTEGER NOT NULL DEFAULT 0,
    CHECK ((kind = 'algorithm') = (algorithm_type IS NOT NULL))
);
CREATE UNIQUE INDEX artifacts_name ON artifacts (project_id, kind, name_key);
CREATE INDEX artifacts_project ON artifacts (project_id, created_at);

-- One row per version of any kind; the kind-specific columns are NULL for other kinds.
CREATE TABLE artifact_versions (
    id                      TEXT PRIMARY KEY,
    artifact_id             TEXT NOT NULL REFERENCES artifacts (id),
    project_id              TEXT NOT NULL REFERENCES projects (id),
    kind                    TEXT NOT NULL,
    version                 INTEGER NOT NULL,
    tag                     TEXT NOT NULL,
    description             TEXT NOT NULL,
    uploaded_by             TEXT NOT NULL REFERENCES users (id),
    created_at              INTEGER NOT NULL,
    blob_key                TEXT,
    blob_size               INTEGER,
    blob_sha256             TEXT,
    file_name               TEXT,
    -- algorithm
    algorithm_type          TEXT,
    workload_digest         TEXT,
    wcek_fingerprint        TEXT,
    -- validation criteria
    criteria_json           TEXT,
    -- dataset
    dataset_url             TEXT,
    url_kind                TEXT CHECK (url_kind IN ('sealroom', 'azure_sas', 's3_presigned')),
    url_expires_at          INTEGER,
    certified_by            TEXT REFERENCES users (id),
    certified_at            INTEGER,
    data_spec_version_id    TEXT REFERENCES artifact_versions (id),
    attestation_version_id  TEXT REFERENCES artifact_versions (id),
    CHECK ((kind = 'dataset') = (dataset_url IS NOT NULL AND url_expires_at IS NOT NULL)),
    CHECK ((kind = 'validation_criteria') = (criteria_json IS NOT NULL))
);
CREATE UNIQUE INDEX artifact_versions_seq ON artifact_versions (artifact_id, version);
CREATE UNIQUE INDEX artifact_versions_tag ON artifact_versions (artifact_id, tag);
CREATE INDEX artifact_versions_project ON artifact_versions (project_id);

-- Algorithm package upload checks (manual §14.5.5.1).
CREATE TABLE upload_steps (
    version_id  TEXT NOT NULL REFERENCES artifact_versions (id),
    step        TEXT NOT NULL CHECK (step IN ('dockerfile_present', 'secrets_manifest_present', 'wcek_present', 'file_validation_succeeded')),
    status      TEXT NOT NULL CHECK (status IN ('pending', 'passed', 'failed')),
    message     TEXT,
    at          INTEGER NOT NULL,
    PRIMARY KEY (version_id, step)
);

CREATE TABLE criteria_acceptances (
    version_id  TEXT NOT NULL REFERENCES artifact_versions (id),
    org_id      TEXT NOT NULL REFERENCES organizations (id),
    user_id     TEXT NOT NULL REFERENCES users (id),
    at          INTEGER NOT NULL,
    PRIMARY KEY (version_id, org_id)
);

CREATE TABLE run_configs (
    id                    TEXT PRIMARY KEY,
    project_id            TEXT NOT NULL REFERENCES projects (id),
    name                  TEXT NOT NULL,
    description           TEXT NOT NULL,
    algorithm_version_id  TEXT NOT NULL REFERENCES artifact_versions (id),
    dataset_version_id    TEXT NOT NULL REFERENCES artifact_versions (id),
    criteria_version_id   TEXT REFERENCES artifact_versions (id),
    created_by            TEXT NOT NULL REFERENCES users (id),
    created_at            INTEGER NOT NULL
);
-- The unique algorithm-version x dataset-version pair.
CREATE UNIQUE INDEX run_configs_pair ON run_configs (algorithm_version_id, dataset_version_id);
CREATE INDEX run_configs_project ON run_configs (project_id, created_at);

CREATE TABLE runs (
    id             TEXT PRIMARY KEY,
    project_id     TEXT NOT NULL REFERENCES projects (id),
    run_config_id  TEXT NOT NULL REFERENCES run_configs (id),
    state          TEXT NOT NULL CHECK (state IN ('requested', 'initiated', 'runtime_build', 'workload_launch', 'running', 'completed', 'failed', 'cancelled', 'rejected')),
    params         TEXT NOT NULL,         -- JSON [{"name","value"}]
    vcpus          INTEGER NOT NULL,
    ram_gib        INTEGER NOT NULL,
    requested_by   TEXT NOT NULL REFERENCES users (id),
    requested_at   INTEGER NOT NULL,
    initiated_by   TEXT REFERENCES users (id),
    reason         TEXT,
    site_id        TEXT REFERENCES sites (id),
    dataset_org_id TEXT NOT NULL REFERENCES organizations (id),
    log_seq        INTEGER NOT NULL DEFAULT 0,
    updated_at     INTEGER NOT NULL
);
-- At most one open request or active run per configuration.
CREATE UNIQUE INDEX runs_one_open_per_config ON runs (run_config_id)
    WHERE state IN ('requested', 'initiated', 'runtime_build', 'workload_launch', 'running');
CREATE INDEX runs_config ON runs (run_config_id, requested_at);
CREATE INDEX runs_project ON runs (project_id, requested_at);
CREATE INDEX runs_claimable ON runs (dataset_org_id, state, site_id);

CREATE TABLE run_state_changes (
    run_id      TEXT NOT NULL REFERENCES runs (id),
    seq         INTEGER NOT NULL,
    from_state  TEXT,
    to_state    TEXT NOT NULL,
    actor       TEXT NOT NULL,
    message     TEXT,
    at          INTEGER NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE run_logs (
    run_id  TEXT NOT NULL REFERENCES runs (id),
    seq     INTEGER NOT NULL,
    stream  TEXT NOT NULL CHECK (stream IN ('stage', 'algorithm')),
    at      INTEGER NOT NULL,
    line    TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE run_outputs (
    run_id           TEXT NOT NULL REFERENCES runs (id),
    kind             TEXT NOT NULL CHECK (kind IN ('final_report', 'trained_model', 'performance_report', 'algorithm_report')),
    name             TEXT NOT NULL,
    blob_key         TEXT NOT NULL,
    blob_size        INTEGER NOT NULL,
    blob_sha256      TEXT NOT NULL,
    file_name        TEXT NOT NULL,
    passed_criteria  INTEGER CHECK (passed_criteria IN (0, 1)),
    created_at       INTEGER NOT NULL,
    PRIMARY KEY (run_id, kind, name)
);

-- Single-use nonces for key release (broker <-> agent), stored as SHA-256 hashes.
CREATE TABLE release_nonces (
    nonce_hash  TEXT PRIMARY KEY,
    run_id      TEXT NOT NULL REFERENCES runs (id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE INDEX release_nonces_run ON release_nonces (run_id);

-- The evidence and key releases each run used.
CREATE TABLE run_key_releases (
    run_id             TEXT NOT NULL REFERENCES runs (id),
    seq                INTEGER NOT NULL,
    technology         TEXT NOT NULL CHECK (technology IN ('simulated', 'sev-snp', 'tdx', 'azure-cvm')),
    evidence_sha256    TEXT NOT NULL,
    evidence_blob_key  TEXT,
    measurement        TEXT NOT NULL,
    tcb_status         TEXT NOT NULL,
    workload_digest    TEXT NOT NULL,
    roles              TEXT NOT NULL,    -- JSON list of roles whose CEKs were released
    wcek_fingerprints  TEXT NOT NULL,    -- JSON list of the WCEK versions unwrapped
    at                 INTEGER NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE notifications (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id),
    project_id  TEXT NOT NULL REFERENCES projects (id),
    run_id      TEXT REFERENCES runs (id),
    kind        TEXT NOT NULL CHECK (kind IN ('run_requested', 'run_rejected', 'run_completed', 'run_failed')),
    message     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    read_at     INTEGER
);
CREATE INDEX notifications_user ON notifications (user_id, created_at);
CREATE INDEX notifications_created ON notifications (created_at);

CREATE TABLE chat_messages (
    id             TEXT PRIMARY KEY,
    project_id     TEXT NOT NULL REFERENCES projects (id),
    author         TEXT NOT NULL REFERENCES users (id),
    author_org_id  TEXT NOT NULL REFERENCES organizations (id),
    body           TEXT NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE INDEX chat_messages_project ON chat_messages (project_id, created_at, id);

-- Append-only, hash-chained audit log. hash = SHA-256(canonical JSON of the row incl. prev_hash).
CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('success', 'denied', 'failure')),
    project_id  TEXT,
    object      TEXT,
    detail      TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
-- The chain's head: updated in the same transaction as each append, so deleting the newest rows
-- is detected too, and (on PostgreSQL) appends serialize on this row's lock.
CREATE TABLE audit_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   INTEGER NOT NULL,
    hash  TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Search over names, descriptions and version tags: one row per object in `search_docs` (the
-- same table as on PostgreSQL), indexed by an external-content FTS5 table kept in sync by
-- triggers. `body` holds normalised tokens (lowercase letters/digits separated by spaces),
-- written by the store in the same transaction as the object.
CREATE TABLE search_docs (
    id          INTEGER PRIMARY KEY,
    object_id   TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL,
    project_id  TEXT NOT NULL,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX search_docs_project ON search_docs (project_id);
CREATE VIRTUAL TABLE search_fts USING fts5 (
    body,
    content = 'search_docs',
    content_rowid = 'id',
    tokenize = 'unicode61'
);
CREATE TRIGGER search_docs_ai AFTER INSERT ON search_docs BEGIN
    INSERT INTO search_fts (rowid, body) VALUES (new.id, new.body);
END;
CREATE TRIGGER search_docs_ad AFTER DELETE ON search_docs BEGIN
    INSERT INTO search_fts (search_fts, rowid, body) VALUES ('delete', old.id, old.body);
END;
CREATE TRIGGER search_docs_au AFTER UPDATE ON search_docs BEGIN
    INSERT INTO search_fts (search_fts, rowid, body) VALUES ('delete', old.id, old.body);
    INSERT INTO search_fts (rowid, body) VALUES (new.id, new.body);
END;
