//! TLS for the listeners (rustls with the ring provider): one certificate and key,
//! loaded at start-up, used by the HTTP listeners through `tokio-rustls` and by the
//! gRPC listener through tonic's `ServerTlsConfig`.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsConfig;
use crate::{Error, Result};

/// PEM material read once and handed to both TLS stacks.
#[derive(Clone)]
pub struct TlsMaterial {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl TlsMaterial {
    pub fn load(cfg: &TlsConfig) -> Result<TlsMaterial> {
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|source| Error::Io {
                path: p.to_path_buf(),
                source,
            })
        };
        Ok(TlsMaterial {
            cert_pem: read(&cfg.cert_file)?,
            key_pem: read(&cfg.key_file)?,
        })
    }

    /// A rustls server config for HTTP (ALPN h2 and http/1.1).
    pub fn rustls_config(&self) -> Result<Arc<rustls::ServerConfig>> {
        let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &self.cert_pem[..])
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::Tls(format!("cannot parse certificate PEM: {e}")))?;
        if certs.is_empty() {
            return Err(Error::Tls(
                "certificate file contains no PEM certificate".into(),
            ));
        }
        let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut &self.key_pem[..])
            .map_err(|e| Error::Tls(format!("cannot parse private key PEM: {e}")))?
            .ok_or_else(|| Error::Tls("key file contains no PEM private key".into()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| {
                Error::Tls(format!(
                    "certificate and key do not form a usable identity: {e}"
                ))
            })?;
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }

    /// tonic's TLS config for the gRPC listener.
    pub fn tonic_config(&self) -> tonic::transport::ServerTlsConfig {
        tonic::transport::ServerTlsConfig::new().identity(tonic::transport::Identity::from_pem(
            &self.cert_pem,
            &self.key_pem,
        ))
    }
}
