//! Throwaway downstream servers, started on loopback from a temporary directory by the demo and
//! the tests: OpenLDAP's `slapd`, a PostgreSQL cluster (`initdb`/`pg_ctl`) and the third-party
//! `scim2-server` (the three together, with the variables the quickstart policy reads, in
//! `quickstart`), a relay that cuts connections on cue, throwaway CAs (`ca`) and a
//! TLS-terminating relay (`tls_proxy`) for the TLS tests, and a Samba AD domain controller
//! (`samba`) for the LDAP connector's Active Directory flavour, and receivers of the
//! notifications tenure sends (`receivers`: a webhook endpoint, an SMTP server). Each fails loudly, naming what to install, when its server is missing. A
//! crate of its own so the connectors users link carry none of it.

pub mod ca;
pub mod postgres;
pub mod proxy;
pub mod quickstart;
pub mod receivers;
pub mod samba;
pub mod scim;
pub mod slapd;
pub mod tls_proxy;
