//! Transaction steps: functions of a caller's write transaction, a policy and a time, with no
//! `Engine` receiver and no IO. The flows (ingest, the leaver, access, deploy, the clock) are
//! built from them; nothing here imports a flow.

pub(crate) mod attributes;
pub(crate) mod credentials;
pub(crate) mod grants;
pub(crate) mod lifecycle;
pub(crate) mod notices;
pub(crate) mod requests;
pub(crate) mod succession;
pub(crate) mod suspension;
