//! The quickstart bundle and feeds (`examples/quickstart/`), built into the binary so `tenure
//! demo` runs from anywhere. A test checks these are exactly the files on disk.

use tenure_policy::BundleFiles;

macro_rules! qs {
    ($p:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart/", $p))
    };
}

const POLICY: &[(&str, &[u8])] = &[
    ("policies/guardrails.cedar", qs!("policy/policies/guardrails.cedar")),
    ("policies/requests.cedar", qs!("policy/policies/requests.cedar")),
    ("policies/runtime.cedar", qs!("policy/policies/runtime.cedar")),
    ("schema/apps.cedarschema", qs!("policy/schema/apps.cedarschema")),
    ("tenure.toml", qs!("policy/tenure.toml")),
    ("templates/departments.toml", qs!("policy/templates/departments.toml")),
    ("templates/machines.toml", qs!("policy/templates/machines.toml")),
    ("templates/staff.toml", qs!("policy/templates/staff.toml")),
    ("tests/quickstart.toml", qs!("policy/tests/quickstart.toml")),
];

/// The feeds in the order the demo imports them: (source, file name, content).
pub const FEEDS: &[(&str, &str, &[u8])] = &[
    ("hr", "hr.jsonl", qs!("feeds/hr.jsonl")),
    ("vendors", "vendors.csv", qs!("feeds/vendors.csv")),
    ("service-registry", "service-registry.jsonl", qs!("feeds/service-registry.jsonl")),
];

/// Day two: a mover, an ownership transfer, a renewal and two leavers (one file, several sources).
pub const DAY_TWO: (&str, &[u8]) = ("day-two.jsonl", qs!("feeds/day-two.jsonl"));

pub fn policy_files() -> BundleFiles {
    POLICY.iter().map(|(p, c)| ((*p).to_owned(), c.to_vec())).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn embedded_bundle_is_the_example_on_disk() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart/policy");
        assert_eq!(crate::cli::read_bundle_dir(&dir).unwrap(), super::policy_files());
    }
}
