//! Fuzzes the JSON bodies of the REST API: `extract::parse_json` into every request type, and
//! the checks handlers then run on what parsed (runtime parameters). Any bytes must parse or be
//! refused with 400 `malformed_json`, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealroom_control::extract::parse_json;
use sealroom_control::routes::{accounts, agent, artifacts, blobs, broker, comms, projects, runs};
use sealroom_types::ErrorCode;

fn one<T: serde::de::DeserializeOwned>(data: &[u8]) -> Option<T> {
    match parse_json::<T>(data) {
        Ok(v) => Some(v),
        Err(f) => {
            assert_eq!(f.code(), ErrorCode::MalformedJson);
            None
        }
    }
}

fuzz_target!(|data: &[u8]| {
    one::<accounts::LoginRequest>(data);
    one::<accounts::PasswordChange>(data);
    one::<accounts::NewTokenRequest>(data);
    one::<accounts::NewOrgRequest>(data);
    one::<accounts::NewUserRequest>(data);
    one::<accounts::DisabledRequest>(data);
    one::<accounts::NewSiteRequest>(data);
    one::<projects::NewProjectRequest>(data);
    one::<projects::MemberRequest>(data);
    one::<projects::StateRequest>(data);
    one::<projects::SettingsRequest>(data);
    one::<artifacts::NewArtifactRequest>(data);
    one::<artifacts::NewVersionRequest>(data);
    one::<runs::NewRunConfigRequest>(data);
    one::<runs::RejectRequest>(data);
    one::<runs::CancelRequest>(data);
    one::<blobs::SignRequest>(data);
    one::<comms::NewChatMessage>(data);
    one::<agent::StateReport>(data);
    one::<agent::AgentLogs>(data);
    one::<broker::SiteKeyRequest>(data);
    one::<broker::NonceRequest>(data);
    one::<broker::ReleaseRequest>(data);
    one::<broker::AttestationPolicy>(data);
    if let Some(req) = one::<runs::RunRequestBody>(data) {
        match runs::check_params(req.params.0) {
            Ok(p) => assert!(p.len() <= sealroom_types::MAX_PARAMS),
            Err(f) => assert_eq!(f.code(), ErrorCode::InvalidParameter),
        }
    }
});
