//! What the SCIM service provider says of itself (RFC 7643 §5–7): its configuration, its one
//! resource type (`User`, with the enterprise extension) and the two schemas.

use serde_json::{Value, json};

pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const SPC: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RESOURCE_TYPE: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// Most resources one list answers.
pub const MAX_RESULTS: usize = 1000;

pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": [SPC],
        "documentationUri": "https://github.com/tenure/tenure/blob/main/docs/sources.md",
        "patch": { "supported": true },
        "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
        "filter": { "supported": true, "maxResults": MAX_RESULTS },
        "changePassword": { "supported": false },
        "sort": { "supported": false },
        "etag": { "supported": true },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "A tenure API token holding the source:NAME role of the source pushing users",
            "primary": true,
        }],
        "meta": { "resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig") },
    })
}

pub fn user_resource_type(base: &str) -> Value {
    json!({
        "schemas": [RESOURCE_TYPE],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": "People (and the identities a source pushes): each becomes a tenure identity",
        "schema": super::filter::CORE_USER,
        "schemaExtensions": [{ "schema": ENTERPRISE, "required": false }],
        "meta": { "resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User") },
    })
}

fn set(o: &mut Value, k: &str, v: Value) {
    if let Some(o) = o.as_object_mut() {
        o.insert(k.to_owned(), v);
    }
}

fn attr(name: &str, kind: &str, multi: bool, required: bool, description: &str) -> Value {
    json!({
        "name": name, "type": kind, "multiValued": multi, "description": description, "required": required,
        "caseExact": false, "mutability": "readWrite", "returned": "default", "uniqueness": "none",
    })
}

fn complex(name: &str, multi: bool, description: &str, subs: Vec<Value>) -> Value {
    let mut a = attr(name, "complex", multi, false, description);
    set(&mut a, "subAttributes", Value::Array(subs));
    a
}

/// `value`, `display`, `type`, `primary` of a multi-valued attribute.
fn values_of(name: &str, description: &str, value_kind: &str, types: &[&str]) -> Value {
    let mut t = attr("type", "string", false, false, "A label for its function");
    set(&mut t, "canonicalValues", json!(types));
    complex(
        name,
        true,
        description,
        vec![
            attr("value", value_kind, false, false, "The value"),
            attr("display", "string", false, false, "A human-readable name"),
            t,
            attr("primary", "boolean", false, false, "The primary value"),
        ],
    )
}

fn user_schema(base: &str) -> Value {
    let mut user_name = attr("userName", "string", false, true, "Unique identifier for the User, used to sign in");
    set(&mut user_name, "uniqueness", json!("server"));
    let mut password = attr("password", "string", false, false, "Never returned");
    set(&mut password, "mutability", json!("writeOnly"));
    set(&mut password, "returned", json!("never"));
    let mut groups = complex(
        "groups",
        true,
        "Groups the User belongs to (read-only)",
        vec![
            attr("value", "string", false, false, "The group's id"),
            attr("display", "string", false, false, "Its name"),
        ],
    );
    set(&mut groups, "mutability", json!("readOnly"));
    let address = complex(
        "addresses",
        true,
        "Physical mailing addresses",
        vec![
            attr("formatted", "string", false, false, "The full address"),
            attr("streetAddress", "string", false, false, "Street"),
            attr("locality", "string", false, false, "City"),
            attr("region", "string", false, false, "State or region"),
            attr("postalCode", "string", false, false, "Postal code"),
            attr("country", "string", false, false, "Country"),
            {
                let mut t = attr("type", "string", false, false, "work, home or other");
                set(&mut t, "canonicalValues", json!(["work", "home", "other"]));
                t
            },
            attr("primary", "boolean", false, false, "The primary address"),
        ],
    );
    let mut profile = attr("profileUrl", "reference", false, false, "A URI of the User's profile");
    set(&mut profile, "referenceTypes", json!(["external"]));
    let attributes = vec![
        user_name,
        complex(
            "name",
            false,
            "The components of the User's name",
            vec![
                attr("formatted", "string", false, false, "The full name"),
                attr("familyName", "string", false, false, "Family name"),
                attr("givenName", "string", false, false, "Given name"),
                attr("middleName", "string", false, false, "Middle name"),
                attr("honorificPrefix", "string", false, false, "Honorific prefix"),
                attr("honorificSuffix", "string", false, false, "Honorific suffix"),
            ],
        ),
        attr("displayName", "string", false, false, "The name shown to people"),
        attr("nickName", "string", false, false, "A casual name"),
        profile,
        attr("title", "string", false, false, "The User's title"),
        attr("userType", "string", false, false, "Employee, Contractor, …"),
        attr("preferredLanguage", "string", false, false, "Preferred language"),
        attr("locale", "string", false, false, "Locale"),
        attr("timezone", "string", false, false, "Time zone"),
        attr("active", "boolean", false, false, "Whether the User may have access; false suspends or leaves"),
        password,
        values_of("emails", "Email addresses", "string", &["work", "home", "other"]),
        values_of("phoneNumbers", "Phone numbers", "string", &["work", "home", "mobile", "fax", "pager", "other"]),
        values_of(
            "ims",
            "Instant messaging addresses",
            "string",
            &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"],
        ),
        values_of("photos", "Photos", "reference", &["photo", "thumbnail"]),
        address,
        groups,
        values_of("entitlements", "Entitlements", "string", &[]),
        values_of("roles", "Roles", "string", &[]),
        values_of("x509Certificates", "Certificates", "binary", &[]),
    ];
    json!({
        "schemas": [SCHEMA],
        "id": super::filter::CORE_USER,
        "name": "User",
        "description": "User Account",
        "attributes": attributes,
        "meta": { "resourceType": "Schema", "location": format!("{base}/Schemas/{}", super::filter::CORE_USER) },
    })
}

fn enterprise_schema(base: &str) -> Value {
    let mut manager_ref = attr("$ref", "reference", false, false, "The manager's URI");
    set(&mut manager_ref, "referenceTypes", json!(["User"]));
    let mut display = attr("displayName", "string", false, false, "The manager's name");
    set(&mut display, "mutability", json!("readOnly"));
    json!({
        "schemas": [SCHEMA],
        "id": ENTERPRISE,
        "name": "EnterpriseUser",
        "description": "Enterprise User",
        "attributes": [
            attr("employeeNumber", "string", false, false, "Employee number"),
            attr("costCenter", "string", false, false, "Cost center"),
            attr("organization", "string", false, false, "Organization"),
            attr("division", "string", false, false, "Division"),
            attr("department", "string", false, false, "Department"),
            complex("manager", false, "The User's manager", vec![
                attr("value", "string", false, false, "The manager's id (a User of this source)"),
                manager_ref,
                display,
            ]),
        ],
        "meta": { "resourceType": "Schema", "location": format!("{base}/Schemas/{ENTERPRISE}") },
    })
}

pub fn schemas(base: &str) -> Vec<Value> {
    vec![user_schema(base), enterprise_schema(base)]
}

/// A list answer of `resources` (already one page of `total`).
pub fn list(resources: Vec<Value>, total: usize, start: usize) -> Value {
    json!({
        "schemas": [LIST],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}
