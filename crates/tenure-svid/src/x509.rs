//! tenure's X.509 CA for the trust domain: a self-signed ECDSA P-256 root that issues
//! X.509-SVIDs from CSRs per the SPIFFE X.509-SVID specification (exactly one URI SAN, the
//! SPIFFE ID; `cA=false`; key usage `digitalSignature`, critical; no `keyCertSign`/`cRLSign`),
//! and signs CRLs of revoked SVIDs so that `openssl verify -crl_check` refuses them.
//!
//! A CSR is accepted only if its own signature verifies (proof of possession of the key). Its
//! subject and requested extensions are ignored: the SPIFFE ID comes from policy.

use crate::{Result, SvidError};
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{DerSignature, SigningKey, VerifyingKey};
use p256::pkcs8::EncodePublicKey;
use std::str::FromStr;
use std::time::Duration;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::der::asn1::{BitString, GeneralizedTime, Ia5String, UtcTime};
use x509_cert::der::oid::db::rfc5280::{ID_KP_CLIENT_AUTH, ID_KP_SERVER_AUTH};
use x509_cert::der::oid::db::rfc5912::{ECDSA_WITH_SHA_256, ID_EC_PUBLIC_KEY, SECP_256_R_1};
use x509_cert::der::referenced::OwnedToRef;
use x509_cert::der::{Decode, DecodePem, Encode, EncodePem, pem::LineEnding};
use x509_cert::ext::AsExtension;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName,
};
use x509_cert::name::Name;
use x509_cert::request::CertReq;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, Version};

fn cert_err(m: impl ToString) -> SvidError {
    SvidError::Certificate(m.to_string())
}

fn csr_err(m: impl Into<String>) -> SvidError {
    SvidError::Csr(m.into())
}

/// An X.509 time for Unix seconds: UTCTime through 2049, GeneralizedTime after (RFC 5280).
fn x509_time(unix: i64) -> Result<Time> {
    let d = Duration::from_secs(u64::try_from(unix).map_err(|_| cert_err("time before 1970"))?);
    if unix < 2_524_608_000 {
        Ok(Time::UtcTime(UtcTime::from_unix_duration(d).map_err(cert_err)?))
    } else {
        Ok(Time::GeneralTime(GeneralizedTime::from_unix_duration(d).map_err(cert_err)?))
    }
}

/// A random positive 128-bit serial number, as its big-endian bytes.
pub fn random_serial() -> [u8; 16] {
    let mut s: [u8; 16] = rand::random();
    // Positive and exactly 16 bytes in DER: top bit clear, next bit set.
    s[0] = (s[0] & 0x7f) | 0x40;
    s
}

fn spki(vk: &VerifyingKey) -> Result<SubjectPublicKeyInfoOwned> {
    let der = vk.to_public_key_der().map_err(cert_err)?;
    SubjectPublicKeyInfoOwned::from_der(der.as_bytes()).map_err(cert_err)
}

fn uri_san(uri: &str) -> Result<SubjectAltName> {
    Ok(SubjectAltName(vec![GeneralName::UniformResourceIdentifier(Ia5String::new(uri).map_err(cert_err)?)]))
}

/// The trust domain's CA: its key and self-signed certificate.
pub struct Ca {
    key: SigningKey,
    cert: Certificate,
}

impl Ca {
    /// A new root for `trust_domain`, valid from `not_before` to `not_after` (Unix seconds).
    pub fn generate(trust_domain: &str, not_before: i64, not_after: i64) -> Result<Self> {
        crate::spiffe::check_trust_domain(trust_domain)?;
        let key = crate::generate_key();
        let subject = Name::from_str(&format!("O=tenure,CN={trust_domain}")).map_err(cert_err)?;
        let validity = Validity { not_before: x509_time(not_before)?, not_after: x509_time(not_after)? };
        let mut b = CertificateBuilder::new(
            Profile::Root,
            SerialNumber::new(&random_serial()).map_err(cert_err)?,
            validity,
            subject,
            spki(key.verifying_key())?,
            &key,
        )
        .map_err(cert_err)?;
        b.add_extension(&uri_san(&format!("spiffe://{trust_domain}"))?).map_err(cert_err)?;
        let cert = b.build::<DerSignature>().map_err(cert_err)?;
        Ok(Self { key, cert })
    }

    /// The CA from its key and certificate (PEM), checking they belong together.
    pub fn from_pem(key_pem: &str, cert_pem: &str) -> Result<Self> {
        let key = crate::key_from_pem(key_pem)?;
        let cert = Certificate::from_pem(cert_pem).map_err(cert_err)?;
        if cert.tbs_certificate.subject_public_key_info != spki(key.verifying_key())? {
            return Err(SvidError::Key("the CA key does not match the CA certificate".into()));
        }
        Ok(Self { key, cert })
    }

    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    pub fn cert_pem(&self) -> Result<String> {
        self.cert.to_pem(LineEnding::LF).map_err(cert_err)
    }

    /// Issue an X.509-SVID for `spiffe_id` to the key of `csr_pem`, valid from `not_before` to
    /// `not_after`. Returns the certificate's DER.
    pub fn issue(
        &self,
        csr_pem: &str,
        spiffe_id: &str,
        serial: &[u8],
        not_before: i64,
        not_after: i64,
    ) -> Result<Vec<u8>> {
        let pubkey = verify_csr(csr_pem)?;
        let issuer = self.cert.tbs_certificate.subject.clone();
        let validity = Validity { not_before: x509_time(not_before)?, not_after: x509_time(not_after)? };
        let subject = Name::from_str("O=tenure").map_err(cert_err)?;
        let mut b = CertificateBuilder::new(
            Profile::Manual { issuer: Some(issuer) },
            SerialNumber::new(serial).map_err(cert_err)?,
            validity,
            subject,
            pubkey,
            &self.key,
        )
        .map_err(cert_err)?;
        b.add_extension(&BasicConstraints { ca: false, path_len_constraint: None }).map_err(cert_err)?;
        b.add_extension(&KeyUsage(KeyUsages::DigitalSignature.into())).map_err(cert_err)?;
        b.add_extension(&ExtendedKeyUsage(vec![ID_KP_SERVER_AUTH, ID_KP_CLIENT_AUTH])).map_err(cert_err)?;
        b.add_extension(&uri_san(spiffe_id)?).map_err(cert_err)?;
        let ca_spki = spki(self.key.verifying_key())?;
        b.add_extension(&AuthorityKeyIdentifier::try_from(ca_spki.owned_to_ref()).map_err(cert_err)?)
            .map_err(cert_err)?;
        let cert = b.build::<DerSignature>().map_err(cert_err)?;
        cert.to_der().map_err(cert_err)
    }

    /// A CRL (v2) listing `revoked` (serial bytes, revoked at), valid from `this_update` to
    /// `next_update`, signed by the CA. PEM.
    pub fn crl(&self, revoked: &[(Vec<u8>, i64)], this_update: i64, next_update: i64) -> Result<String> {
        let alg = AlgorithmIdentifierOwned { oid: ECDSA_WITH_SHA_256, parameters: None };
        let entries = revoked
            .iter()
            .map(|(serial, at)| {
                Ok(RevokedCert {
                    serial_number: SerialNumber::new(serial).map_err(cert_err)?,
                    revocation_date: x509_time(*at)?,
                    crl_entry_extensions: None,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let issuer = self.cert.tbs_certificate.subject.clone();
        let ca_spki = spki(self.key.verifying_key())?;
        let aki = AuthorityKeyIdentifier::try_from(ca_spki.owned_to_ref()).map_err(cert_err)?;
        let tbs = TbsCertList {
            version: Version::V2,
            signature: alg.clone(),
            issuer: issuer.clone(),
            this_update: x509_time(this_update)?,
            next_update: Some(x509_time(next_update)?),
            revoked_certificates: if entries.is_empty() { None } else { Some(entries) },
            // RFC 5280 §5.2.3: a CRL Number that grows with every CRL; `this_update`'s seconds
            // do, since each CRL is made anew from the clock.
            crl_extensions: Some(vec![
                aki.to_extension(&issuer, &[]).map_err(cert_err)?,
                x509_cert::ext::pkix::CrlNumber(
                    x509_cert::der::asn1::Uint::new(&this_update.max(0).to_be_bytes()).map_err(cert_err)?,
                )
                .to_extension(&issuer, &[])
                .map_err(cert_err)?,
            ]),
        };
        let sig: DerSignature = self.key.sign(&tbs.to_der().map_err(cert_err)?);
        let list = CertificateList {
            tbs_cert_list: tbs,
            signature_algorithm: alg,
            signature: BitString::from_bytes(sig.as_bytes()).map_err(cert_err)?,
        };
        let der = list.to_der().map_err(cert_err)?;
        x509_cert::der::pem::encode_string("X509 CRL", LineEnding::LF, &der).map_err(cert_err)
    }
}

/// A CSR (PEM) for `key`, as a workload would make one (subject `CN=workload`).
pub fn request(key: &SigningKey) -> Result<String> {
    let subject = Name::from_str("CN=workload").map_err(cert_err)?;
    let b = x509_cert::builder::RequestBuilder::new(subject, key).map_err(cert_err)?;
    let req = b.build::<DerSignature>().map_err(cert_err)?;
    req.to_pem(LineEnding::LF).map_err(cert_err)
}

/// The DER inside a PEM certificate request, whatever its line length (RFC 7468 §3: parsers
/// should accept other widths than 64, as `openssl req` and others write 76 or one long line).
fn csr_der(csr_pem: &str) -> Result<Vec<u8>> {
    use base64::Engine as _;
    let text = csr_pem.trim();
    let begin = ["-----BEGIN CERTIFICATE REQUEST-----", "-----BEGIN NEW CERTIFICATE REQUEST-----"]
        .iter()
        .find_map(|b| text.find(b).map(|at| at + b.len()))
        .ok_or_else(|| csr_err("not a PEM certificate request: no BEGIN CERTIFICATE REQUEST line"))?;
    let rest = text.get(begin..).unwrap_or_default();
    let end = rest.find("-----END").ok_or_else(|| csr_err("not a PEM certificate request: no END line"))?;
    let body: String = rest.get(..end).unwrap_or_default().chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| csr_err(format!("not a PEM certificate request: bad base64 ({e})")))
}

/// Check a CSR's own signature (ECDSA P-256 with SHA-256) and return its public key.
pub fn verify_csr(csr_pem: &str) -> Result<SubjectPublicKeyInfoOwned> {
    let req =
        CertReq::from_der(&csr_der(csr_pem)?).map_err(|e| csr_err(format!("not a PEM certificate request: {e}")))?;
    let spki = &req.info.public_key;
    let curve =
        spki.algorithm.parameters.as_ref().and_then(|p| p.decode_as::<x509_cert::der::oid::ObjectIdentifier>().ok());
    if spki.algorithm.oid != ID_EC_PUBLIC_KEY || curve != Some(SECP_256_R_1) {
        return Err(csr_err("only ECDSA P-256 keys are accepted"));
    }
    if req.algorithm.oid != ECDSA_WITH_SHA_256 {
        return Err(csr_err("the request must be signed with ecdsa-with-SHA256"));
    }
    let vk = VerifyingKey::from_sec1_bytes(spki.subject_public_key.raw_bytes())
        .map_err(|_| csr_err("the public key is not a valid P-256 point"))?;
    let sig = DerSignature::from_bytes(req.signature.raw_bytes()).map_err(|_| csr_err("malformed signature"))?;
    let signed = req.info.to_der().map_err(|e| csr_err(e.to_string()))?;
    vk.verify(&signed, &sig).map_err(|_| csr_err("its signature does not verify (no proof of possession)"))?;
    Ok(spki.clone())
}

/// Whether a certificate (DER) was signed by one of the CA certificates in `bundle_pem` (its
/// signature checked with the CA's public key; validity and names are the caller's business).
pub fn signed_by_bundle(der: &[u8], bundle_pem: &str) -> Result<bool> {
    let cert = Certificate::from_der(der).map_err(cert_err)?;
    let tbs = cert.tbs_certificate.to_der().map_err(cert_err)?;
    let Ok(sig) = DerSignature::from_bytes(cert.signature.raw_bytes()) else { return Ok(false) };
    let cas = Certificate::load_pem_chain(bundle_pem.as_bytes()).map_err(cert_err)?;
    Ok(cas.iter().any(|ca| {
        ca.tbs_certificate.subject == cert.tbs_certificate.issuer
            && VerifyingKey::from_sec1_bytes(ca.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes())
                .is_ok_and(|vk| vk.verify(&tbs, &sig).is_ok())
    }))
}

/// The URIs in a certificate's subject alternative names (for checks and tests).
pub fn uri_sans(der: &[u8]) -> Result<Vec<String>> {
    let cert = Certificate::from_der(der).map_err(cert_err)?;
    let mut out = Vec::new();
    for ext in cert.tbs_certificate.extensions.iter().flatten() {
        if ext.extn_id == <SubjectAltName as x509_cert::der::oid::AssociatedOid>::OID {
            let san = SubjectAltName::from_der(ext.extn_value.as_bytes()).map_err(cert_err)?;
            for n in san.0 {
                if let GeneralName::UniformResourceIdentifier(u) = n {
                    out.push(u.to_string());
                }
            }
        }
    }
    Ok(out)
}

/// The serial numbers a CRL (PEM) lists.
pub fn crl_serials(crl_pem: &str) -> Result<Vec<Vec<u8>>> {
    let (label, der) = x509_cert::der::pem::decode_vec(crl_pem.trim().as_bytes()).map_err(cert_err)?;
    if label != "X509 CRL" {
        return Err(cert_err(format!("expected an X509 CRL, found {label}")));
    }
    let list = CertificateList::from_der(&der).map_err(cert_err)?;
    Ok(list
        .tbs_cert_list
        .revoked_certificates
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.serial_number.as_bytes().to_vec())
        .collect())
}

/// A certificate's serial number bytes.
pub fn serial(der: &[u8]) -> Result<Vec<u8>> {
    Ok(Certificate::from_der(der).map_err(cert_err)?.tbs_certificate.serial_number.as_bytes().to_vec())
}

/// PEM of a certificate's DER.
pub fn pem(der: &[u8]) -> Result<String> {
    Certificate::from_der(der).map_err(cert_err)?.to_pem(LineEnding::LF).map_err(cert_err)
}

/// The DER of a PEM certificate.
pub fn der_of_pem(pem: &str) -> Result<Vec<u8>> {
    Certificate::from_pem(pem.trim()).map_err(cert_err)?.to_der().map_err(cert_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csr(key: &SigningKey) -> String {
        request(key).unwrap()
    }

    #[test]
    fn an_svid_has_exactly_one_uri_san_and_a_forged_csr_is_refused() {
        let ca = Ca::generate("example.org", 1_700_000_000, 1_800_000_000).unwrap();
        let key = crate::generate_key();
        let der = ca
            .issue(&csr(&key), "spiffe://example.org/service/x", &random_serial(), 1_700_000_000, 1_700_003_600)
            .unwrap();
        assert_eq!(uri_sans(&der).unwrap(), vec!["spiffe://example.org/service/x".to_owned()]);
        assert!(signed_by_bundle(&der, &ca.cert_pem().unwrap()).unwrap());
        let other_ca = Ca::generate("example.org", 1_700_000_000, 1_800_000_000).unwrap();
        assert!(!signed_by_bundle(&der, &other_ca.cert_pem().unwrap()).unwrap());
        // A CSR whose signature was made by another key than the one it names.
        let good = csr(&key);
        let mut req = CertReq::from_pem(&good).unwrap();
        let other = crate::generate_key();
        let forged_sig: DerSignature = other.sign(&req.info.to_der().unwrap());
        req.signature = BitString::from_bytes(forged_sig.as_bytes()).unwrap();
        let forged = req.to_pem(LineEnding::LF).unwrap();
        assert!(matches!(ca.issue(&forged, "spiffe://example.org/x", &random_serial(), 0, 1), Err(SvidError::Csr(_))));
        assert!(ca.issue("garbage", "spiffe://example.org/x", &random_serial(), 0, 1).is_err());
        let again = Ca::from_pem(&crate::key_to_pem(ca.key()).unwrap(), &ca.cert_pem().unwrap()).unwrap();
        assert!(Ca::from_pem(&crate::key_to_pem(&other).unwrap(), &again.cert_pem().unwrap()).is_err());
        assert!(
            ca.crl(&[(serial(&der).unwrap(), 1_700_000_100)], 1_700_000_100, 1_700_000_400)
                .unwrap()
                .contains("BEGIN X509 CRL")
        );
    }
}
