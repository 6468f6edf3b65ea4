-- Key broker: the simulated attester's public key per site, and each project's attestation
-- policy (JSON, parsed by the control plane; absent: the technology's default policy).

-- The Ed25519 public key of a site's SIMULATED attester (32 bytes, lowercase hex). One per
-- site; replacing it takes an admin's deletion first.
CREATE TABLE site_attestation_keys (
    site_id        TEXT PRIMARY KEY REFERENCES sites (id),
    public_key     TEXT NOT NULL CHECK (length(public_key) = 64),
    registered_at  INTEGER NOT NULL
);

-- Which enclaves may receive the project's keys: reference measurements, minimum TCB, ...
CREATE TABLE project_attestation_policies (
    project_id  TEXT PRIMARY KEY REFERENCES projects (id),
    policy      TEXT NOT NULL,
    updated_by  TEXT NOT NULL REFERENCES users (id),
    updated_at  INTEGER NOT NULL
);
