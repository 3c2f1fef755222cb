//! TLS to PostgreSQL through rustls (ring), as the rest of weir, with libpq's `sslmode`
//! meanings: `require` encrypts without checking the certificate (unless `sslrootcert` names a
//! CA, when it checks the chain as `verify-ca` does), `verify-ca` checks the chain,
//! `verify-full` the chain and the host name. The CAs are `sslrootcert`'s PEM file, else the
//! system's.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::settings::{Settings, SettingsError, TlsMode};

/// The TLS connector for `settings` (used only when the mode asks for TLS).
pub fn connector(settings: &Settings) -> Result<MakeRustlsConnect, SettingsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| SettingsError(format!("TLS set-up: {e}")))?;
    let check_chain = match settings.tls {
        TlsMode::Disable | TlsMode::Prefer | TlsMode::Require => settings.root_cert.is_some(),
        TlsMode::VerifyCa | TlsMode::VerifyFull => true,
    };
    let algorithms = provider.signature_verification_algorithms;
    let chain = if check_chain {
        let roots = Arc::new(roots(settings)?);
        if settings.tls == TlsMode::VerifyFull {
            return Ok(MakeRustlsConnect::new(builder.with_root_certificates(roots).with_no_client_auth()));
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| SettingsError(format!("TLS set-up: {e}")))?;
        Some(webpki)
    } else {
        None
    };
    let config = builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Verifier { chain, algorithms }))
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

fn roots(settings: &Settings) -> Result<RootCertStore, SettingsError> {
    let mut store = RootCertStore::empty();
    match &settings.root_cert {
        Some(path) => {
            let fail = |e: String| SettingsError(format!("sslrootcert {}: {e}", path.display()));
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| fail(e.to_string()))? {
                store.add(cert.map_err(|e| fail(e.to_string()))?).map_err(|e| fail(e.to_string()))?;
            }
            if store.is_empty() {
                return Err(fail("no certificate in it".into()));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(SettingsError(
                    "sslmode verify-ca/verify-full: no system CA certificates found; set sslrootcert=<CA file>"
                        .into(),
                ));
            }
        }
    }
    Ok(store)
}

/// What `verify-ca` and `require` check of the server: with `chain`, that its certificate chains
/// to a trusted CA, whatever name it has (`verify-ca`); without, nothing (`require` without a
/// CA, as libpq), and the connection is only encrypted. Either way the handshake's signatures
/// are checked against the certificate presented.
#[derive(Debug)]
struct Verifier {
    chain: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else { return Ok(ServerCertVerified::assertion()) };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
