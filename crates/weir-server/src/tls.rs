//! HTTPS for both listeners, with rustls (cargo feature `tls`).
//!
//! Without the feature weir still starts on plain HTTP, but a configured certificate is an
//! error rather than silently ignored.

use std::path::Path;

use crate::ServerError;

#[cfg(feature = "tls")]
pub use tokio_rustls::TlsAcceptor;

/// Stands in for the TLS acceptor when weir is built without TLS; never constructed.
#[cfg(not(feature = "tls"))]
#[derive(Clone)]
pub enum TlsAcceptor {}

#[cfg(not(feature = "tls"))]
impl TlsAcceptor {
    pub async fn accept(&self, _stream: tokio::net::TcpStream) -> std::io::Result<tokio::net::TcpStream> {
        match *self {}
    }
}

/// Loads the certificate chain and private key (PEM).
#[cfg(feature = "tls")]
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, ServerError> {
    use std::sync::Arc;

    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls;

    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect())
        .map_err(|e| ServerError::Tls(format!("reading certificates from {}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(ServerError::Tls(format!("no certificate in {}", cert.display())));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| ServerError::Tls(format!("reading the private key from {}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServerError::Tls(format!("certificate and key do not fit: {e}")))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(not(feature = "tls"))]
pub fn acceptor(_cert: &Path, _key: &Path) -> Result<TlsAcceptor, ServerError> {
    Err(ServerError::Tls(
        "this weir was built without TLS support; rebuild with `cargo build --release --features tls`".into(),
    ))
}
